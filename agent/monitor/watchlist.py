"""The companies and topics a risk team watches, and finding them in text.

A watch-list file is JSON, YAML or CSV::

    {"companies": [{"name": "Ally Financial", "ticker": "ALLY", "aliases": ["Ally Bank"]}],
     "topics": {"layoffs": ["layoff*", "job cuts"]}}

(a bare JSON/YAML list is read as the companies; a CSV has columns ``name,ticker,aliases`` with
aliases separated by ``;`` or ``|``). Names, aliases and ``$TICKER`` cashtags match
case-insensitively on word boundaries; a bare ticker matches only in capitals (``ALLY``), because
lower-case tickers are ordinary words (``ally``, ``on``, ``it``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Topics a risk team asks about when no watch-list names its own; ``*`` ends a prefix.
DEFAULT_TOPICS: dict[str, tuple[str, ...]] = {
    "bankruptcy": ("bankrupt*", "insolven*", "chapter 11", "default*", "liquidat*"),
    "downgrade": ("downgrad*", "cuts to sell", "cut to sell", "price target cut", "outlook cut", "pulls outlook"),
    "earnings": ("earnings", "quarterly results", "profit warning", "guidance", "revenue miss*", "misses estimates"),
    "fraud": ("fraud*", "accounting scandal", "embezzl*", "money laundering", "whistleblower"),
    "layoffs": ("layoff*", "lay off*", "job cuts", "cut jobs", "cuts jobs", "cutting jobs", "redundanc*"),
    "litigation": ("lawsuit*", "sued", "sues", "class action", "litigation", "settlement"),
    "regulation": ("regulator*", "fined", "fine", "penalt*", "probe", "investigation", "sanction*", "sec charges"),
    "mergers": ("merger*", "acquisition*", "acquire*", "takeover*", "buyout*"),
}
_SPLIT_ALIASES = re.compile(r"[;|]")


class WatchlistError(ValueError):
    """A watch-list file cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class Company:
    """A watched company: its display name, optional ticker and other names it goes by."""

    name: str
    ticker: str = ""
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise WatchlistError("a company needs a name")
        if self.ticker and not re.fullmatch(r"[A-Za-z0-9.\-]{1,10}", self.ticker):
            raise WatchlistError(f"{self.name}: ticker {self.ticker!r} is not a ticker (1-10 letters, digits, '.', '-')")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ticker": self.ticker, "aliases": list(self.aliases)}


@dataclass(frozen=True)
class Mention:
    """A company or topic found in a text, with where it was found."""

    kind: str  # "company" or "topic"
    key: str  # company name (watch-list name, or the tagger's text) or topic name
    text: str
    start: int
    end: int
    method: str  # "watchlist", "tagger" or "keyword"
    ticker: str = ""
    score: float = 1.0
    field: str = "title"  # where in the item: "title" or "body"


@dataclass(frozen=True)
class Watchlist:
    """Companies and topics, compiled into one case-insensitive matcher each."""

    companies: tuple[Company, ...] = ()
    topics: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_TOPICS))

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for company in self.companies:
            for name in (company.name, *company.aliases):
                other = seen.setdefault(name.casefold(), company.name)
                if other != company.name:
                    raise WatchlistError(f"name {name!r} belongs to both {other!r} and {company.name!r}")
        for topic, words in self.topics.items():
            if not topic.strip() or not words or not all(isinstance(w, str) and w.strip(" *") for w in words):
                raise WatchlistError(f"topic {topic!r} needs a list of non-empty keywords")
        object.__setattr__(self, "_names", _compile(
            (name, c.name) for c in self.companies for name in (c.name, *c.aliases)))
        object.__setattr__(self, "_cashtags", {c.ticker.casefold(): c for c in self.companies if c.ticker})
        object.__setattr__(self, "_tickers", {c.ticker.upper(): c for c in self.companies if len(c.ticker) > 1})
        object.__setattr__(self, "_topics", _compile((w, t) for t, words in self.topics.items() for w in words))

    def to_dict(self) -> dict[str, Any]:
        return {"companies": [c.to_dict() for c in self.companies], "topics": {k: list(v) for k, v in self.topics.items()}}

    @classmethod
    def from_dict(cls, data: Any) -> Watchlist:
        if isinstance(data, list):
            data = {"companies": data}
        if not isinstance(data, dict):
            raise WatchlistError("a watch-list is an object with 'companies' (and optionally 'topics') or a list of companies")
        unknown = set(data) - {"companies", "topics"}
        if unknown:
            raise WatchlistError(f"unknown watch-list keys {sorted(unknown)}; expected companies, topics")
        companies = []
        for number, entry in enumerate(data.get("companies") or [], start=1):
            if isinstance(entry, str):
                entry = {"name": entry}
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise WatchlistError(f"company {number} needs a 'name' string")
            aliases = entry.get("aliases") or []
            if isinstance(aliases, str):
                aliases = _SPLIT_ALIASES.split(aliases)
            extra = set(entry) - {"name", "ticker", "aliases"}
            if extra:
                raise WatchlistError(f"company {number} ({entry['name']}): unknown keys {sorted(extra)}")
            companies.append(Company(entry["name"].strip(), str(entry.get("ticker") or "").strip().lstrip("$"),
                                     tuple(a.strip() for a in aliases if str(a).strip())))
        topics = data.get("topics")
        if topics is None:
            topics = dict(DEFAULT_TOPICS)
        elif not isinstance(topics, dict):
            raise WatchlistError("'topics' must map each topic to a list of keywords")
        return cls(tuple(companies), {str(k): tuple(v) if isinstance(v, list) else v for k, v in topics.items()})

    def find(self, text: str) -> list[Mention]:
        """Companies and topics named in ``text``, in order of appearance."""
        found: list[Mention] = []
        if self.companies:
            for match in self._names.finditer(text):  # type: ignore[attr-defined]
                name = self._names_lookup(match.group(0))
                found.append(Mention("company", name, match.group(0), match.start(), match.end(), "watchlist",
                                     self.company(name).ticker))
            for match in re.finditer(r"(?<![\w$])\$([A-Za-z][A-Za-z0-9.\-]{0,9})\b", text):
                company = self._cashtags.get(match.group(1).casefold())  # type: ignore[attr-defined]
                if company is not None:
                    found.append(Mention("company", company.name, match.group(0), match.start(), match.end(),
                                         "watchlist", company.ticker))
            for match in re.finditer(r"(?<![\w$])([A-Z][A-Z0-9.\-]{1,9})\b", text):
                company = self._tickers.get(match.group(1))  # type: ignore[attr-defined]
                if company is not None:
                    found.append(Mention("company", company.name, match.group(0), match.start(), match.end(),
                                         "watchlist", company.ticker))
            # A ticker inside a matched name ("ALLY" in "ALLY FINANCIAL") is the same mention.
            kept: list[Mention] = []
            for mention in found:
                if not any(k.start < mention.end and mention.start < k.end for k in kept):
                    kept.append(mention)
            found = kept
        if self.topics:
            for match in self._topics.finditer(text):  # type: ignore[attr-defined]
                found.append(Mention("topic", self._topic_lookup(match.group(0)), match.group(0), match.start(),
                                     match.end(), "keyword"))
        return sorted(found, key=lambda m: (m.start, m.kind, m.key))

    def company(self, name: str) -> Company:
        """The watched company called ``name`` (or one of its aliases), case-insensitively."""
        folded = _fold(name)
        for company in self.companies:
            if folded in (_fold(n) for n in (company.name, *company.aliases)):
                return company
        raise KeyError(name)

    def canonical(self, text: str) -> str | None:
        """The watched company whose name or alias is ``text`` (or ``$TICKER``), else None."""
        cleaned = re.sub(r"['’]s$", "", text.strip()).strip()
        if cleaned.startswith("$"):
            company = self._cashtags.get(cleaned[1:].casefold())  # type: ignore[attr-defined]
            return company.name if company else None
        try:
            return self.company(cleaned).name
        except KeyError:
            return None

    def _names_lookup(self, matched: str) -> str:
        return self.company(matched).name

    def _topic_lookup(self, matched: str) -> str:
        folded = _fold(matched)
        for topic, words in self.topics.items():
            for word in words:
                w = _fold(word)
                if (w.endswith("*") and folded.startswith(w[:-1])) or folded == w:
                    return topic
        return matched  # unreachable: every match comes from some keyword


def load_watchlist(path: str | Path | None) -> Watchlist:
    """Read a JSON, YAML or CSV watch-list (None: no companies, the default topics)."""
    if path is None:
        return Watchlist()
    path = Path(path)
    if not path.is_file():
        raise WatchlistError(f"watch-list {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise WatchlistError(f"cannot read watch-list {path}: {exc}") from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return _from_csv(text)
        if suffix in (".yaml", ".yml"):
            import yaml

            try:
                return Watchlist.from_dict(yaml.safe_load(text))
            except yaml.YAMLError as exc:
                raise WatchlistError(f"not valid YAML: {str(exc).splitlines()[0]}") from exc
        if suffix == ".json":
            try:
                return Watchlist.from_dict(json.loads(text))
            except json.JSONDecodeError as exc:
                raise WatchlistError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    except WatchlistError as exc:
        raise WatchlistError(f"watch-list {path}: {exc}") from exc
    raise WatchlistError(f"watch-list {path}: use a .json, .yaml/.yml or .csv file")


def _from_csv(text: str) -> Watchlist:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "name" not in (rows[0].keys() if rows else ()):
        raise WatchlistError("a CSV watch-list needs a header with a 'name' column (and optionally ticker, aliases)")
    return Watchlist.from_dict({"companies": [
        {"name": r["name"] or "", "ticker": r.get("ticker") or "", "aliases": r.get("aliases") or ""} for r in rows
    ]})


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _compile(pairs: Iterable[tuple[str, str]]) -> re.Pattern[str]:
    """One alternation of every phrase, longest first, on word boundaries, case-insensitive."""
    phrases: list[str] = []
    for phrase, _ in pairs:
        phrase = phrase.strip()
        prefix = phrase.endswith("*")
        body = r"\s+".join(re.escape(part) for part in phrase.rstrip("*").split())
        phrases.append(body + (r"\w*" if prefix else ""))
    if not phrases:
        return re.compile(r"(?!x)x")  # matches nothing
    phrases.sort(key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(phrases) + r")(?!\w)", re.IGNORECASE)


def merge_mentions(mentions: Sequence[Mention]) -> list[Mention]:
    """One mention per (kind, key) and character span, the first found wins."""
    seen: set[tuple[str, str, int, int]] = set()
    out = []
    for m in mentions:
        marker = (m.kind, m.key, m.start, m.end)
        if marker not in seen:
            seen.add(marker)
            out.append(m)
    return out
