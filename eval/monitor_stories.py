"""Stories, not copies: does grouping near-duplicates stop syndication from raising alerts?

A generated feed (seeded) of two days of coverage of three watched companies, each item its own
story with a body of its own, then:

* **syndication**: the control company's single negative story re-published 25 times within
  three hours by other outlets, with small edits (``UPDATE 1-`` / ``REFILE-`` prefixes,
  re-punctuation, a word changed, dropped or added, a sign-off added to the body);
* **surge**: eight distinct negative stories about another company within three hours, each
  syndicated one to three times.

It is scored by a scorer that knows each story's tone (so only the counting is measured, not the
sentiment model) through :func:`agent.monitor.engine.run_monitor`, the code path of
``agent monitor score``, once with ``count="stories"`` and once with ``count="items"``.

The clustering itself is measured on labelled pairs: an item and an edited copy (same story),
an item and a different story about the same company (different stories), and the hard case of
two stories from the same template about the same company with other numbers or names ("to cut
2,000 jobs" / "to cut 350 jobs"), reported apart.

Run with ``python -m eval.monitor_stories [--pairs 500] [--seed 0] [--seeds 5] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CONTROL, SURGE, OTHER = "Contoso Group", "Northwind Bank", "Fabrikam Capital"
START = datetime(2026, 3, 2, tzinfo=UTC)
SOURCES = ("Reuters", "Bloomberg", "AP", "Dow Jones", "MarketWatch", "Yahoo Finance", "CNBC", "Financial Times",
           "Seeking Alpha", "Benzinga", "The Street", "Investing.com", "Business Insider", "Morningstar",
           "RTT News", "Proactive", "Zacks", "Barron's", "Motley Fool", "Nasdaq.com", "FX Street", "Kiplinger",
           "City A.M.", "Evening Standard", "Sky News")
CITIES = ("Leeds", "Manchester", "Dublin", "Frankfurt", "Lisbon", "Warsaw", "Austin", "Toronto", "Madrid", "Oslo")
PEOPLE = ("Maria Lopez", "James Chen", "Aisha Patel", "Tom Becker", "Sofia Rossi", "Liam Murphy", "Yuki Tanaka")
# Each template is its own kind of event; {n}, {city}, {person} vary between stories of one kind.
TEMPLATES = {
    "negative": (
        "{c} slashes full-year outlook, warns of heavy losses",
        "{c} to cut {n} jobs as profits collapse",
        "{c} shares sink after regulator opens probe into sales practices",
        "Moody's downgrades {c} debt to junk",
        "{c} hit with record fine over money laundering failures",
        "{c} misses quarterly estimates as bad loans pile up",
        "{c} chief executive {person} quits amid accounting scandal",
        "{c} suspends dividend after capital shortfall",
        "Customers sue {c} over IT outage that froze accounts",
        "{c} writes down {n} million on commercial property loans",
    ),
    "neutral": (
        "{c} to hold annual shareholder meeting in {city}",
        "{c} names {person} head of retail banking",
        "{c} opens new branch in {city}",
        "{c} to report quarterly results next week",
        "{c} publishes annual sustainability report",
        "{c} appoints {person} as chief risk officer",
        "{c} moves {n} staff to new {city} headquarters",
        "{c} sets date for investor day",
        "{c} updates terms for savings accounts",
        "{c} extends sponsorship of the {city} marathon",
    ),
    "positive": (
        "{c} beats earnings estimates and raises dividend",
        "{c} shares jump after strong quarterly profit",
        "{c} upgraded to buy at Morgan Stanley",
        "{c} wins major contract with government",
        "{c} announces share buyback of {n} million",
        "{c} posts record deposits in second quarter",
    ),
}
FILLER = (
    "The announcement came {when}, according to a statement from the company.",
    "Analysts at {bank} said the move had been expected by some investors.",
    "The bank employs about {n} people across {k} countries.",
    "Its shares have moved {p} percent since the start of the year.",
    "A spokesperson for the group declined to comment further on {when}.",
    "{person}, who joined the bank in {year}, will brief investors on the details.",
    "The group reported revenue of {n} million in its most recent quarter.",
    "Rival lenders in {city} have faced similar pressures this year.",
    "Trading volume was {k} times the daily average by midday.",
    "{bank} cut its price target on the stock to {p} pounds last month.",
    "The board met {when} to approve the plan, two people familiar with the matter said.",
    "Unions representing staff in {city} said they had not been consulted.",
    "The lender's capital ratio stood at {p}.{k} percent at the end of June.",
    "Credit default swaps on its bonds widened by {k} basis points.",
    "It is the {k}th such announcement by a European bank since {year}.",
    "{person} told reporters in {city} that more details would follow.",
)
WHEN = ("on Monday", "on Tuesday", "late on Wednesday", "early on Thursday", "on Friday morning")
BANKS = ("Jefferies", "Barclays", "UBS", "Citi", "Berenberg", "Numis", "Keefe Bruyette")
PREFIXES = ("UPDATE 1-", "UPDATE 2-", "REFILE-", "CORRECTED-", "BRIEF-", "RPT-", "EXCLUSIVE-")
SWAPS = (("to cut", "will cut"), ("to hold", "will hold"), ("shares", "stock"), ("after", "following"),
         ("quits", "resigns"), ("sinks", "slides"), ("sink", "slide"), ("warns", "cautions"), ("opens", "launches"),
         ("jump", "surge"), ("names", "appoints"), ("record", "record-breaking"))
SIGN_OFFS = ("Reporting by {person}; editing by {person2}.", "(Additional reporting by {person})",
             "This story was produced by an automated system.", "Copyright 2026. All rights reserved.")


@dataclass(frozen=True)
class Story:
    """One news story: its tone, headline, body and the company it is about."""

    tone: str
    title: str
    body: str
    company: str
    kind: int  # which template


class StoryMaker:
    """Distinct stories and edited copies of them, from one seeded random generator."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def _slots(self) -> dict[str, Any]:
        r = self.rng
        person, person2 = r.sample(PEOPLE, 2)
        return {"n": f"{r.randrange(2, 95) * 50:,}", "city": r.choice(CITIES), "person": person, "person2": person2,
                "when": r.choice(WHEN), "bank": r.choice(BANKS), "k": r.randrange(3, 40), "p": r.randrange(2, 40),
                "year": r.randrange(1995, 2024)}

    def story(self, company: str, tone: str, kind: int | None = None) -> Story:
        templates = TEMPLATES[tone]
        kind = self.rng.randrange(len(templates)) if kind is None else kind
        slots = self._slots()
        title = templates[kind].format(c=company, **slots)
        sentences = [templates[kind].format(c=company, **slots) + "."]
        sentences += [f.format(**self._slots()) for f in self.rng.sample(FILLER, 3)]
        return Story(tone, title, " ".join(sentences), company, kind)

    def copy(self, story: Story) -> Story:
        """An edited copy: one or two headline edits, maybe a changed body ending."""
        r, title, body = self.rng, story.title, story.body
        for edit in r.sample(("prefix", "punctuation", "word", "case", "attribution"), r.choice((1, 2))):
            if edit == "prefix":
                title = r.choice(PREFIXES) + title
            elif edit == "punctuation":
                title = title.replace(",", " -") if "," in title else title + "."
                title = title.replace("'", "’")
            elif edit == "word":
                swaps = [(a, b) for a, b in SWAPS if a in title]
                if swaps:
                    a, b = r.choice(swaps)
                    title = title.replace(a, b, 1)
                else:
                    words = title.split()
                    del words[r.randrange(1, len(words))]  # a dropped word (never the first)
                    title = " ".join(words)
            elif edit == "case":
                title = title.title()
            else:
                title = f"{title} - {r.choice(('sources', 'report', 'filing', 'statement'))}"
        ending = r.random()
        if ending < 0.4:
            body = f"{body} {r.choice(SIGN_OFFS).format(**self._slots())}"
        elif ending < 0.6:
            body = body.rsplit(". ", 1)[0] + "."
        return Story(story.tone, title, body, story.company, story.kind)


def scenario_feed(seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, str], int]:
    """The feed's records in time order, each headline's tone (for the scorer), and how many
    distinct stories the records tell."""
    maker = StoryMaker(seed)
    rng = maker.rng
    records: list[dict[str, Any]] = []
    tones: dict[str, str] = {}
    originals: set[str] = set()

    def emit(story: Story, at: datetime, source: str, copy: bool = False) -> None:
        if not copy:
            originals.add(story.body)
        records.append({"id": f"n{len(records):05d}", "published": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "source": source, "title": story.title, "body": story.body})
        tones[story.title] = story.tone

    def coverage(company: str, every_min: int, negative_share: float, offset: int) -> None:
        for k in range(48 * 60 // every_min):  # two quiet days: each item a story of its own
            roll = rng.random()
            tone = "negative" if roll < negative_share else ("neutral" if roll < 0.7 else "positive")
            emit(maker.story(company, tone), START + timedelta(minutes=every_min * k + offset), rng.choice(SOURCES))

    coverage(CONTROL, 60, 0.15, 7)
    coverage(SURGE, 120, 0.15, 13)
    coverage(OTHER, 90, 0.2, 29)
    day3 = START + timedelta(hours=48)
    for k in range(12):  # the companies' ordinary news goes on while it all happens
        emit(maker.story(CONTROL, rng.choice(("neutral", "positive"))), day3 + timedelta(minutes=30 * k + 11), rng.choice(SOURCES))
        emit(maker.story(SURGE, rng.choice(("neutral", "positive"))), day3 + timedelta(minutes=30 * k + 17), rng.choice(SOURCES))
    original = maker.story(CONTROL, "negative", kind=1)  # "to cut N jobs"
    emit(original, day3 + timedelta(minutes=5), SOURCES[0])
    for k in range(24):  # 25 publications of one story
        emit(maker.copy(original), day3 + timedelta(minutes=12 + 7 * k), SOURCES[1 + k], copy=True)
    for k, kind in enumerate(rng.sample(range(len(TEMPLATES["negative"])), 8)):  # eight different bad stories
        story = maker.story(SURGE, "negative", kind=kind)
        at = day3 + timedelta(minutes=20 * k + 3)
        emit(story, at, rng.choice(SOURCES))
        for c in range(rng.randrange(0, 3)):
            emit(maker.copy(story), at + timedelta(minutes=4 + 3 * c), rng.choice(SOURCES), copy=True)
    records.sort(key=lambda r: (r["published"], r["id"]))
    return records, tones, len(originals)


class ToneScorer:
    """Scores each headline with its story's known tone; mentions from the watch-list."""

    def __init__(self, tones: dict[str, str], watchlist: Any) -> None:
        self.tones, self.watchlist = tones, watchlist

    def score(self, items: Sequence[Any]) -> list[Any]:
        from agent.monitor.scoring import ItemScore, Sentiment

        probs = {"negative": {"negative": 0.9, "neutral": 0.1}, "neutral": {"neutral": 0.9, "positive": 0.1},
                 "positive": {"positive": 0.9, "neutral": 0.1}}
        out = []
        for item in items:
            sentiment = Sentiment.from_probs(probs[self.tones[item.title]])
            out.append(ItemScore(item.id, sentiment, sentiment, mentions=tuple(self.watchlist.find(item.title))))
        return out


def run_scenario(count: str, seed: int = 0, folder: Path | None = None) -> dict[str, Any]:
    """Score the scenario feed with ``count`` (stories or items); the alerts raised per company."""
    from agent.monitor.alerts import AlertRule, list_alerts
    from agent.monitor.engine import MonitorConfig, run_monitor
    from agent.monitor.store import MonitorStore
    from agent.monitor.stories import stories_of
    from agent.monitor.watchlist import Watchlist

    folder = Path(folder or tempfile.mkdtemp(prefix="stories-"))
    records, tones, true_stories = scenario_feed(seed)
    feed = folder / "feed.jsonl"
    feed.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    watchlist = Watchlist.from_dict({"companies": [{"name": n} for n in (CONTROL, SURGE, OTHER)]})
    config = MonitorConfig(feeds=(str(feed),), rules=(AlertRule(count=count, kinds=("company",)),))
    with MonitorStore.open(folder / f"{count}.db") as store:
        run_monitor(config, store, watchlist, scorer=ToneScorer(tones, watchlist))
        alerts = [{"company": a.key, "negative": a.negative_count, "window": a.window_count, "unit": a.unit,
                   "statistic": a.statistic, "stories": stories_of(store.db, list(a.evidence))}
                  for a in list_alerts(store)]
        stored = store.counts()
    return {"count": count, "items": stored["items"], "stories": stored["stories"], "true_stories": true_stories,
            "alerts": alerts,
            "alerted": sorted({a["company"] for a in alerts})}


def labelled_pairs(n: int, seed: int = 0) -> list[tuple[Story, Story, str]]:
    """``n`` pairs of each label: ``copy``, ``different`` (another kind of story about the same
    company) and ``same-template`` (same kind, other numbers/names)."""
    maker = StoryMaker(seed + 1)
    pairs: list[tuple[Story, Story, str]] = []
    for _ in range(n):
        company = maker.rng.choice((CONTROL, SURGE, OTHER))
        tone = maker.rng.choice(("negative", "negative", "neutral", "positive"))
        story = maker.story(company, tone)
        pairs.append((story, maker.copy(story), "copy"))
        other_kind = maker.rng.choice([k for k in range(len(TEMPLATES[tone])) if k != story.kind])
        pairs.append((story, maker.story(company, tone, kind=other_kind), "different"))
        pairs.append((story, maker.story(company, tone, kind=story.kind), "same-template"))
    return pairs


def cluster_pairs(pairs: list[tuple[Story, Story, str]], config: Any = None) -> dict[str, Any]:
    """Precision and recall of "same story" on the pairs (the hard ones reported apart)."""
    from agent.monitor.stories import Signature, StoryConfig, StoryIndex

    config = config or StoryConfig()
    merged: dict[str, list[bool]] = {"copy": [], "different": [], "same-template": []}
    for a, b, label in pairs:
        index = StoryIndex(config)
        index.add("a", "a", Signature.of(a.title, a.body, config), frozenset({a.company}))
        found = index.match(Signature.of(b.title, b.body, config), 0, frozenset({b.company}))
        merged[label].append(found is not None)
    tp = sum(merged["copy"])
    fp = sum(merged["different"])
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / len(merged["copy"])
    hard_fp = sum(merged["same-template"])
    return {"pairs": {k: len(v) for k, v in merged.items()}, "precision": round(precision, 4),
            "recall": round(recall, 4), "f1": round(2 * precision * recall / (precision + recall), 4) if tp else 0.0,
            "false_merges_same_template": round(hard_fp / len(merged["same-template"]), 4),
            "precision_with_same_template": round(tp / (tp + fp + hard_fp), 4) if tp + fp + hard_fp else 1.0}


def evaluate(pairs: int = 500, seed: int = 0, seeds: int = 5) -> dict[str, Any]:
    """Both scenario runs on ``seed`` (in detail) and on ``seeds`` feeds from it (how many alerted
    on each company), and the pair figures."""
    runs = {c: [run_scenario(c, seed + k) for k in range(seeds)] for c in ("stories", "items")}
    alerted = {c: {name: sum(name in r["alerted"] for r in rs) for name in (CONTROL, SURGE, OTHER)}
               for c, rs in runs.items()}
    return {"seed": seed, "seeds": seeds, "scenario": {c: rs[0] for c, rs in runs.items()}, "alerted": alerted,
            "clustering": cluster_pairs(labelled_pairs(pairs, seed))}


def format_result(result: dict[str, Any]) -> str:
    lines = []
    for count, run in result["scenario"].items():
        lines.append(f"--count {count}: {run['items']} items in {run['stories']} stories ({run['true_stories']} "
                     "generated); alerts on "
                     f"{', '.join(run['alerted']) or 'nobody'}")
        for a in run["alerts"]:
            copies = sum(s["copies"] for s in a["stories"])
            lines.append(f"  {a['company']}: {a['negative']}/{a['window']} negative {a['unit']}, statistic "
                         f"{a['statistic']:.1f}; evidence {len(a['stories'])} stories ({copies} copies)")
    for count, per in result["alerted"].items():
        lines.append(f"--count {count} over {result['seeds']} feeds: alerted on "
                     + ", ".join(f"{name} {n}/{result['seeds']}" for name, n in per.items()))
    c = result["clustering"]
    lines.append(f"pairs {c['pairs']}: precision {c['precision']:.3f}, recall {c['recall']:.3f}, F1 {c['f1']:.3f}; "
                 f"same-template stories merged {c['false_merges_same_template']:.1%} "
                 f"(precision {c['precision_with_same_template']:.3f} counting them)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m eval.monitor_stories", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=500, help="labelled pairs of each kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=5, help="scenario feeds (seed, seed+1, …)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error(f"--pairs must be >= 1, got {args.pairs}")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    result = evaluate(args.pairs, args.seed, args.seeds)
    print(json.dumps(result, indent=2) if args.json else format_result(result))


if __name__ == "__main__":
    main()
