"""Alert rules: a surge of negative news about a company or a topic, against its own baseline.

A rule watches names of up to three kinds: ``company`` (watch-list companies, or with
``scope="all"`` also names only the tagger found), ``topic`` (the user's keyword watch topics)
and ``learned_topic`` (the topic classifier's label of each headline, e.g. ``M&A | Investments``;
``learned_topics`` narrows a rule to some of them). Each name is evaluated on its own.

For each company (or topic) a rule looks at a rolling ``window`` ending at each negative item's
time and compares it with the ``baseline`` period just before the window:

* ``metric="share"``: the share of negative items. Baseline share p0 = (neg_b + 1) / (n_b + 2)
  (a uniform prior, so a name without history needs a clear majority); the statistic is the
  binomial z-score (neg − n·p0) / √(n·p0·(1 − p0)), or with ``method="ratio"`` (neg / n) / p0.
* ``metric="count"``: the count of negative items. Expected count λ = (neg_b + 1) · window /
  baseline; the statistic is the Poisson z-score (neg − λ) / √λ, or the ratio neg / λ.

What is counted is stories by default (``count="stories"``): near-duplicate items (wire copies,
``UPDATE 1-`` re-issues, the same body under another source; :mod:`agent.monitor.stories`) are one
story, counted once in a window however many copies it has there, and negative when at least half
of its copies in the window are. ``count="items"`` counts every copy, as before.

The rule fires when the statistic reaches ``threshold`` with at least ``min_count`` negative and
``min_volume`` items in the window, once the name has at least one window of history before the
window (until then there is no baseline to surge against; a shorter history than ``baseline``
is used as it is). Firings closer than ``cooldown`` (default: the window) form
one episode, and an episode raises one alert: its first firing, with the negative stories (or
items) of that window as evidence, each story by its first copy there (those added while the
episode lasts are appended, up to 100).

Evaluation is incremental: after each committed batch, only names mentioned by items not yet
evaluated are looked at, over the time span those items can affect. The result depends only on
the stored items, so a resumed run or another engine raises the same alerts.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.monitor.items import format_time
from agent.monitor.store import LEARNED_TOPIC, MonitorStore, now_iso
from agent.monitor.stories import COUNTS, stories_of

METRICS = ("share", "count")
METHODS = ("zscore", "ratio")
SCOPES = ("watchlist", "all")
KINDS = ("company", "topic", LEARNED_TOPIC)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_EVIDENCE = 100
MAX_DURATION = 36_500 * 86400  # 100 years: longer spans only overflow date arithmetic
_TIME = re.compile(r"^(\d{1,4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_duration(text: str) -> int:
    """``90s``, ``30m``, ``6h``, ``7d``, ``2w`` -> seconds (at most 100 years)."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"durations look like 30m, 6h, 7d or 2w; got {text!r}")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not seconds <= MAX_DURATION:  # also catches inf from a number with hundreds of digits
        raise ValueError(f"durations are at most 36500d (100 years), got {str(text)[:40]!r}")
    if int(seconds) <= 0:
        raise ValueError(f"duration must be > 0, got {text!r}")
    return int(seconds)


@dataclass(frozen=True)
class AlertRule:
    """A rolling-window surge rule (see the module docstring).

    Attributes:
        name: Rule name, stored with each alert.
        kinds: What it watches: ``company``, ``topic`` (keyword watch topics) and/or
            ``learned_topic`` (the topic model's label of each headline).
        metric: ``share`` or ``count`` of negative items.
        method: ``zscore`` or ``ratio`` against the baseline.
        window: Rolling window (``6h``).
        baseline: Period before the window that sets the normal level (``7d``).
        threshold: Statistic needed to fire (z-score or ratio).
        min_count: Negative items needed in the window.
        min_volume: Items needed in the window.
        cooldown: Quiet time that ends an episode (default: the window).
        scope: ``watchlist``: companies of the watch-list only; ``all``: also names only the
            entity tagger found.
        count: ``stories`` (near-duplicates count once) or ``items`` (every copy counts).
        learned_topics: Only these learned topics (exact labels); empty: every learned topic.
            Needs ``learned_topic`` among the kinds.
    """

    name: str = "negative-surge"
    kinds: tuple[str, ...] = ("company", "topic")
    metric: str = "share"
    method: str = "zscore"
    window: str = "6h"
    baseline: str = "7d"
    threshold: float = 3.0
    min_count: int = 5
    min_volume: int = 5
    cooldown: str | None = None
    scope: str = "watchlist"
    count: str = "stories"
    learned_topics: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a rule needs a name")
        kinds = [self.kinds] if isinstance(self.kinds, str) else self.kinds
        object.__setattr__(self, "kinds", tuple(kinds))
        if not self.kinds or set(self.kinds) - set(KINDS):
            raise ValueError(f"kinds must be some of {', '.join(KINDS)}, got {list(self.kinds)}")
        topics = [self.learned_topics] if isinstance(self.learned_topics, str) else self.learned_topics
        object.__setattr__(self, "learned_topics", tuple(topics))
        if any(not isinstance(t, str) or not t.strip() for t in self.learned_topics):
            raise ValueError(f"learned_topics must be topic labels (strings), got {list(self.learned_topics)}")
        if self.learned_topics and LEARNED_TOPIC not in self.kinds:
            raise ValueError(f"rule {self.name!r} names learned_topics: add '{LEARNED_TOPIC}' to its kinds")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if self.count not in COUNTS:
            raise ValueError(f"count must be one of {', '.join(COUNTS)}, got {self.count!r}")
        for name in ("window", "baseline") + (("cooldown",) if self.cooldown else ()):
            parse_duration(getattr(self, name))
        if not self.threshold > 0:
            raise ValueError(f"threshold must be > 0, got {self.threshold}")
        if self.min_count < 1 or self.min_volume < 1:
            raise ValueError(f"min_count and min_volume must be >= 1, got {self.min_count} and {self.min_volume}")

    @property
    def seconds(self) -> tuple[int, int, int]:
        """(window, baseline, cooldown) in seconds."""
        window = parse_duration(self.window)
        return window, parse_duration(self.baseline), parse_duration(self.cooldown) if self.cooldown else window

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kinds"] = list(self.kinds)
        data["learned_topics"] = list(self.learned_topics)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertRule:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown rule keys {sorted(unknown)}; known: {', '.join(cls.__dataclass_fields__)}")
        return cls(**data)


@dataclass(frozen=True)
class Alert:
    """One raised alert (an episode of one rule for one company, keyword topic or learned topic)."""

    id: int
    rule: str
    kind: str
    key: str
    start: str
    end: str
    raised_at: str
    window_count: int
    negative_count: int
    share: float
    baseline: float
    statistic: float
    peak: float
    evidence: tuple[str, ...]
    unit: str = "items"  # what window_count and negative_count count: stories or items

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["evidence"] = list(self.evidence)
        return data

    def describe(self) -> str:
        """One line for a terminal or a chat message."""
        return (f"ALERT {self.kind} {self.key!r}: {self.negative_count}/{self.window_count} negative {self.unit} "
                f"(share {self.share:.0%}, baseline {self.baseline:.2f}, {self.rule} statistic {self.statistic:.1f}) "
                f"from {self.start}")


@dataclass
class _Episode:
    start: int  # epoch seconds of the first firing
    end: int
    stats: dict[str, float]
    peak: float
    evidence: list[str]
    units: set[str]  # the stories (or items) in the evidence


def load_rules(path: str | None) -> list[AlertRule]:
    """Rules from a JSON or YAML file holding one rule object or a list of them."""
    from pathlib import Path

    if path is None:
        return [AlertRule()]
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"rules file {file} does not exist")
    text = file.read_text(encoding="utf-8")
    try:
        if file.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # JSON and YAML raise different types; both mean "cannot parse"
        raise ValueError(f"rules file {file} does not parse: {str(exc).splitlines()[0]}") from exc
    data = data if isinstance(data, list) else [data]
    try:
        rules = [AlertRule.from_dict(r) for r in data]
    except TypeError as exc:
        raise ValueError(f"rules file {file}: each rule must be an object") from exc
    if len({r.name for r in rules}) != len(rules):
        raise ValueError(f"rules file {file}: rule names must be unique")
    return rules


def check_learned_topics(rules: Sequence[AlertRule], labels: Sequence[str]) -> None:
    """Refuse a rule whose ``learned_topics`` names a label the topic model never gives: it
    would watch nothing, silently.

    Raises:
        ValueError: One line naming the rule, the unknown label and the closest label (or all of them).
    """
    from difflib import get_close_matches

    by_folded = {label.casefold(): label for label in labels}
    for rule in rules:
        for topic in rule.learned_topics:
            if topic in labels:
                continue
            close = get_close_matches(topic.casefold(), list(by_folded), n=1, cutoff=0.6)
            hint = f"did you mean {by_folded[close[0]]!r}?" if close else f"the labels are: {', '.join(labels)}"
            raise ValueError(f"rule {rule.name!r}: {topic!r} is not a label of the topic model; {hint}")


def evaluate(store: MonitorStore, rules: Sequence[AlertRule], watched: set[str]) -> list[Alert]:
    """Evaluate ``rules`` for names mentioned by not-yet-evaluated items; store and return new alerts.

    Args:
        store: The monitor database.
        rules: Alert rules.
        watched: Company names of the watch-list (the ``watchlist`` scope).

    Returns:
        Alerts raised now (episodes already alerted are extended, not raised again).
    """
    pending = store.rows(
        "SELECT e.kind, e.key, MIN(i.event_time) AS since FROM items i JOIN labels e ON e.item_id = i.id "
        "WHERE i.evaluated = 0 GROUP BY e.kind, e.key ORDER BY e.kind, e.key")
    raised: list[Alert] = []
    with store.transaction() as db:
        for rule in rules:
            for row in pending:
                if row["kind"] not in rule.kinds:
                    continue
                if row["kind"] == "company" and rule.scope == "watchlist" and row["key"] not in watched:
                    continue
                if row["kind"] == LEARNED_TOPIC and rule.learned_topics and row["key"] not in rule.learned_topics:
                    continue
                raised += _evaluate_key(db, rule, row["kind"], row["key"], _epoch(row["since"]))
        db.execute("UPDATE items SET evaluated = 1 WHERE evaluated = 0")
    return raised


class _Tally:
    """Distinct units (stories, or items) in a stretch of rows, and how many of them are negative."""

    def __init__(self) -> None:
        self.copies: dict[str, int] = {}
        self.negatives: dict[str, int] = {}
        self.units = self.negative = 0

    def is_negative(self, unit: str) -> bool:
        neg = self.negatives.get(unit, 0)
        return neg > 0 and 2 * neg >= self.copies.get(unit, 0)  # at least half of its copies

    def change(self, unit: str, negative: bool, step: int) -> None:
        before = self.is_negative(unit)
        copies = self.copies.get(unit, 0) + step
        self.units += (copies > 0) - (copies - step > 0)
        if copies:
            self.copies[unit] = copies
            self.negatives[unit] = self.negatives.get(unit, 0) + negative * step
        else:
            self.copies.pop(unit, None)
            self.negatives.pop(unit, None)
        self.negative += self.is_negative(unit) - before


def _evaluate_key(db: Any, rule: AlertRule, kind: str, key: str, since: int) -> list[Alert]:
    window, baseline, cooldown = rule.seconds
    lo = since - window - baseline - cooldown
    unit = "COALESCE(i.story, i.id)" if rule.count == "stories" else "i.id"
    rows = db.execute(
        f"SELECT DISTINCT i.id, i.event_time, s.label, {unit} AS unit FROM items i JOIN labels e ON e.item_id = i.id "
        "JOIN scores s ON s.item_id = i.id WHERE e.kind = ? AND e.key = ? AND i.event_time >= ? "
        "ORDER BY i.event_time, i.id", (kind, key, _iso(lo))).fetchall()
    first = db.execute("SELECT MIN(i.event_time) FROM items i JOIN labels e ON e.item_id = i.id "
                       "WHERE e.kind = ? AND e.key = ?", (kind, key)).fetchone()[0]
    first_seen = _epoch(first) if first else since
    times = [_epoch(r["event_time"]) for r in rows]
    negative = [r["label"] == "negative" for r in rows]
    units = [r["unit"] for r in rows]
    # Both stretches only move forward as t grows: [b_lo, w_lo) is the baseline, [w_lo, hi) the window.
    in_window, in_baseline = _Tally(), _Tally()
    b_lo = w_lo = hi = 0
    episodes: list[_Episode] = []
    for j, t in enumerate(times):
        if not negative[j] or t < since - cooldown:
            continue
        while hi < len(times) and times[hi] <= t:
            in_window.change(units[hi], negative[hi], 1)
            hi += 1
        while w_lo < hi and times[w_lo] <= t - window:
            in_window.change(units[w_lo], negative[w_lo], -1)
            in_baseline.change(units[w_lo], negative[w_lo], 1)
            w_lo += 1
        while b_lo < w_lo and times[b_lo] <= t - window - baseline:
            in_baseline.change(units[b_lo], negative[b_lo], -1)
            b_lo += 1
        n, neg = in_window.units, in_window.negative
        n_b, neg_b = in_baseline.units, in_baseline.negative
        # A name seen for less than one window before this one has no baseline yet to surge against.
        history = min(baseline, t - window - first_seen)
        if neg < rule.min_count or n < rule.min_volume or history < window:
            continue
        statistic, level = _statistic(rule, n, neg, n_b, neg_b, window, history)
        if statistic < rule.threshold:
            continue
        shown = set(episodes[-1].units) if episodes and t - episodes[-1].end <= cooldown else set()
        ids = []
        for k in range(w_lo, hi):  # each negative story once, by its first copy in the window
            if units[k] not in shown and negative[k] and in_window.is_negative(units[k]):
                shown.add(units[k])
                ids.append(rows[k]["id"])
        stats = {"window_count": n, "negative_count": neg, "share": neg / n, "baseline": level, "statistic": statistic}
        if episodes and t - episodes[-1].end <= cooldown:
            episode = episodes[-1]
            episode.end, episode.peak = t, max(episode.peak, statistic)
            episode.evidence += ids
            episode.units = shown
        else:
            episodes.append(_Episode(t, t, stats, statistic, ids, shown))
    return [a for a in (_store_episode(db, rule, kind, key, e, cooldown) for e in episodes) if a is not None]


def _statistic(rule: AlertRule, n: int, neg: int, n_b: int, neg_b: int, window: int, baseline: int) -> tuple[float, float]:
    """The rule's statistic and the baseline level it compares against (share or expected count).

    ``baseline`` is the length of history the baseline counts cover (at most the rule's baseline)."""
    if rule.metric == "share":
        p0 = (neg_b + 1) / (n_b + 2)
        if rule.method == "ratio":
            return (neg / n) / p0, p0
        return (neg - n * p0) / math.sqrt(n * p0 * (1 - p0)), p0
    expected = (neg_b + 1) * window / baseline
    if rule.method == "ratio":
        return neg / expected, expected
    return (neg - expected) / math.sqrt(expected), expected


def _store_episode(db: Any, rule: AlertRule, kind: str, key: str, episode: _Episode, cooldown: int) -> Alert | None:
    """Insert a new alert, or extend the stored alert of the same episode (then return None)."""
    start, end = _iso(episode.start), _iso(episode.end)
    existing = db.execute(
        'SELECT id, start, "end", peak, evidence FROM alerts WHERE rule = ? AND kind = ? AND key = ? '
        'AND start <= ? AND "end" >= ? ORDER BY start LIMIT 1',
        (rule.name, kind, key, _iso(episode.end + cooldown), _iso(episode.start - cooldown))).fetchone()
    if existing is not None:
        evidence = json.loads(existing["evidence"])
        evidence += [i for i in episode.evidence if i not in evidence]
        db.execute('UPDATE alerts SET "end" = MAX("end", ?), peak = MAX(peak, ?), evidence = ? WHERE id = ?',
                   (end, episode.peak, json.dumps(evidence[:MAX_EVIDENCE]), existing["id"]))
        return None
    s = episode.stats
    evidence = episode.evidence[:MAX_EVIDENCE]
    cur = db.execute(
        'INSERT INTO alerts (rule, kind, key, start, "end", raised_at, window_count, negative_count, share, baseline, '
        'statistic, peak, evidence, unit) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)',
        (rule.name, kind, key, start, end, now_iso(), s["window_count"], s["negative_count"], round(s["share"], 4),
         round(s["baseline"], 4), round(s["statistic"], 4), round(episode.peak, 4), json.dumps(evidence), rule.count))
    return Alert(int(cur.lastrowid), rule.name, kind, key, start, end, now_iso(), int(s["window_count"]),
                 int(s["negative_count"]), round(s["share"], 4), round(s["baseline"], 4), round(s["statistic"], 4),
                 round(episode.peak, 4), tuple(evidence), rule.count)


def list_alerts(store: MonitorStore, *, since: str | None = None, key: str | None = None) -> list[Alert]:
    """Stored alerts, oldest first; ``since`` is an ISO time or a duration back from now (``24h``)."""
    sql, params = "SELECT * FROM alerts WHERE 1 = 1", []
    if since:
        sql += ' AND "end" >= ?'
        params.append(parse_since(since))
    if key:
        sql += " AND key = ? COLLATE NOCASE"
        params.append(key)
    rows = store.rows(sql + " ORDER BY start, id", params)
    return [Alert(**{**r, "evidence": tuple(json.loads(r["evidence"]))}) for r in rows]


def parse_since(text: str) -> str:
    """``--since`` as an ISO UTC time: a duration back from now (``24h``, ``7d``) or a date/time."""
    from agent.monitor.items import parse_time

    if _DURATION.match(text):
        try:
            return _iso(int(datetime.now(UTC).timestamp()) - parse_duration(text))
        except ValueError as exc:
            raise ValueError(f"--since: {exc}") from None
    try:
        return parse_time(text)
    except ValueError:
        raise ValueError(f"--since takes a duration (24h, 7d) or a date/time (2026-01-31T09:00), got {text!r}") from None


def _epoch(iso: str) -> int:
    """Seconds since 1970 of a stored time; also reads years stored unpadded by older versions."""
    match = _TIME.match(iso)
    if not match:
        raise ValueError(f"stored time {iso!r} is not YYYY-MM-DDTHH:MM:SSZ")
    return int((datetime(*map(int, match.groups()), tzinfo=UTC) - _EPOCH).total_seconds())


def _iso(epoch: int) -> str:
    """The stored form of a time (four-digit year); clamped to years 1-9999."""
    try:
        return format_time(_EPOCH + timedelta(seconds=epoch))
    except OverflowError:
        return "0001-01-01T00:00:00Z" if epoch < 0 else "9999-12-31T23:59:59Z"
