"""A generated news feed with known content, for trying the monitor and for its tests.

Two and a half days of headlines (with short bodies) about two watched companies:

* ``Contoso Group`` (the control): steady coverage, two items an hour, half of them negative the
  whole time: plenty of negative news, but no change against its own baseline;
* ``Northwind Bank``: an item every two hours, one in six negative, then a burst of eight
  negative items within three hours on the third day: the surge an alert must catch, once;

plus market news naming no watched company, and two malformed lines. Everything is seeded and
deterministic, written as JSONL with a matching watch-list.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SURGE_COMPANY = "Northwind Bank"
CONTROL_COMPANY = "Contoso Group"
START = datetime(2026, 1, 5, tzinfo=UTC)
HOURS = 60
SURGE_AT = 48  # hours after START
NEGATIVE = (
    "{c} slashes outlook and warns of heavy losses",
    "{c} downgraded to sell as losses mount",
    "{c} to cut 2,000 jobs as profits collapse",
    "{c} misses estimates, shares sink 12%",
    "{c} cut to underperform at Jefferies",
    "Moody's downgrades {c} debt to junk",
    "{c} stock falls to lowest level in a decade",
    "{c} hit with record fine over money laundering failures",
)
NEUTRAL = (
    "{c} to hold annual shareholder meeting on Tuesday",
    "{c} names new head of retail banking",
    "{c} opens new branch in Leeds",
    "{c} to report quarterly results next week",
    "{c} publishes annual sustainability report",
    "{c} appoints new chief risk officer",
    "{c} moves its London staff to a new headquarters",
    "{c} launches a mobile app for small businesses",
    "{c} chairman to step down at the end of the year",
    "{c} completes sale of its insurance unit",
    "{c} extends sponsorship of the city marathon",
    "{c} updates terms for savings accounts",
    "{c} hires former regulator as compliance adviser",
    "{c} sets date for its investor day",
    "{c} trims mortgage rates for first-time buyers",
)
POSITIVE = (
    "{c} beats earnings estimates and raises dividend",
    "{c} shares jump after strong quarterly profit",
    "{c} upgraded to buy at Morgan Stanley",
    "{c} wins major contract with government",
    "{c} raises full-year guidance on strong lending",
    "{c} named best digital bank of the year",
    "{c} posts record deposits in the second quarter",
    "{c} credit rating lifted by S&P",
    "{c} announces share buyback of 500 million",
    "{c} customer satisfaction hits a ten-year high",
)
MARKET = (
    "European stocks close higher as inflation cools",
    "Oil prices steady ahead of OPEC meeting",
    "Treasury yields edge lower after jobs data",
    "Gold holds near record as dollar weakens",
)
BODY = {
    "negative": "The shares fell sharply in early trading. Investors fear further losses ahead.",
    "neutral": "A spokesperson confirmed the details on Monday.",
    "positive": "The shares rose in early trading. Analysts welcomed the news.",
}


def sample_watchlist() -> dict[str, Any]:
    """The watch-list matching :func:`sample_items`."""
    return {"companies": [
        {"name": SURGE_COMPANY, "ticker": "NWB", "aliases": ["Northwind"]},
        {"name": CONTROL_COMPANY, "ticker": "CTSO", "aliases": ["Contoso"]},
    ]}


def sample_items() -> list[dict[str, Any]]:
    """The feed's records in time order (some with ids, some without: those get content ids)."""
    items: list[tuple[datetime, str, str, str]] = []  # time, headline, tone, company
    used: dict[tuple[str, str], int] = {}

    def add(at: datetime, company: str, tone: str, n: int | None = None) -> None:
        # Each company's normal coverage takes its headlines in turn, so a headline comes back only
        # days later: repeated within hours it would be one syndicated story, not new news.
        templates = {"negative": NEGATIVE, "neutral": NEUTRAL, "positive": POSITIVE}[tone]
        if n is None:
            n = used[company, tone] = used.get((company, tone), -1) + 1
        items.append((at, templates[n % len(templates)].format(c=company), tone, company))

    for n in range(HOURS * 2):  # the control: every 30 minutes, every other item negative
        tone = "negative" if n % 2 == 0 else ("neutral" if n % 4 == 1 else "positive")
        add(START + timedelta(minutes=30 * n + 7), CONTROL_COMPANY, tone)
    for n in range(HOURS // 2):  # the surge company's normal coverage: one in six negative
        tone = "negative" if n % 6 == 3 else ("neutral" if n % 2 == 0 else "positive")
        add(START + timedelta(hours=2 * n, minutes=13), SURGE_COMPANY, tone)
    for n in range(8):  # the surge: eight negative items in under three hours
        add(START + timedelta(hours=SURGE_AT, minutes=20 * n + 5), SURGE_COMPANY, "negative", n)
    for n in range(HOURS // 6):
        items.append((START + timedelta(hours=6 * n, minutes=41), MARKET[n % len(MARKET)], "neutral", ""))
    items.sort(key=lambda row: (row[0], row[1]))
    records = []
    for n, (at, headline, tone, company) in enumerate(items):
        if company == SURGE_COMPANY and n % 3 == 0:
            headline = f"$NWB: {headline}"  # cashtags count as mentions too
        record = {"published": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "source": "Sample Wire" if n % 2 else "Demo News",
                  "title": headline, "body": BODY[tone]}
        if n % 2:
            record["id"] = f"sample-{n:04d}"
        records.append(record)
    return records


def write_sample(out: str | Path) -> dict[str, str]:
    """Write ``news.jsonl`` (with two malformed lines) and ``watchlist.json`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r) for r in sample_items()]
    lines.insert(10, '{"title": "a line cut short by a crash')
    lines.insert(50, json.dumps({"title": "Bank stocks rally", "published": "last Tuesday"}))
    feed = out / "news.jsonl"
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    watchlist = out / "watchlist.json"
    watchlist.write_text(json.dumps(sample_watchlist(), indent=2) + "\n", encoding="utf-8")
    return {"feed": str(feed), "watchlist": str(watchlist), "items": str(len(lines) - 2), "malformed": "2"}
