"""Per learned topic: how much news, how many stories, and how it leans, over a stretch of time.

``agent monitor topics`` and the report's topic plot read the topic the topic classifier gave each
item's headline (stored with its scores). A story's copies (:mod:`agent.monitor.stories`) count once
among ``stories`` and every copy among ``items``; ``mean_sentiment`` is the mean of the items'
overall score, P(positive) − P(negative), so syndicated copies weigh as often as they were
published. Items scored without a topic model are counted apart (``without_topic``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from agent.monitor.alerts import _epoch, _iso, parse_duration, parse_since
from agent.monitor.store import MonitorStore


@dataclass(frozen=True)
class TopicVolume:
    """One learned topic over the chosen stretch of time."""

    topic: str
    items: int
    stories: int
    negative_items: int
    mean_sentiment: float
    mean_probability: float  # the topic model's mean confidence in this label


@dataclass(frozen=True)
class TopicSummary:
    """Topics by volume (most items first), and the stretch of time they cover."""

    since: str | None
    until: str | None
    items: int
    without_topic: int
    topics: tuple[TopicVolume, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "topics": [asdict(t) for t in self.topics]}


def window_start(store: MonitorStore, *, since: str | None = None, window: str | None = None) -> str | None:
    """The first event time to count: ``since`` (a time, or a duration back from now), or ``window``
    back from the newest stored item (so an archive's last week reads as it did then); None: all."""
    if since and window:
        raise ValueError("give --since or --window, not both")
    if since:
        return parse_since(since)
    if window:
        seconds = check_window(window)
        newest = store.db.execute("SELECT MAX(event_time) FROM items").fetchone()[0]
        if newest is None:
            return None
        return _iso(_epoch(newest) - seconds)
    return None


def check_window(window: str) -> int:
    """``--window`` in seconds; a ValueError naming the option when it is not a duration."""
    try:
        return parse_duration(window)
    except ValueError as exc:
        raise ValueError(f"--window: {exc}") from None


def topic_summary(store: MonitorStore, *, since: str | None = None, window: str | None = None) -> TopicSummary:
    """Per-topic volume (items, stories) and mean sentiment from :func:`window_start` on.

    Raises:
        ValueError: A bad ``since`` or ``window``, or both given.
    """
    start = window_start(store, since=since, window=window)
    where, params = ("WHERE i.event_time >= ?", [start]) if start else ("", [])
    rows = store.rows(
        "SELECT s.topic AS topic, COUNT(*) AS items, COUNT(DISTINCT COALESCE(i.story, i.id)) AS stories, "
        "SUM(s.label = 'negative') AS negative_items, AVG(s.score) AS mean_sentiment, "
        "AVG(s.topic_probability) AS mean_probability, MIN(i.event_time) AS first, MAX(i.event_time) AS last "
        f"FROM items i JOIN scores s ON s.item_id = i.id {where} GROUP BY s.topic", params)
    topics = [TopicVolume(r["topic"], int(r["items"]), int(r["stories"]), int(r["negative_items"] or 0),
                          round(float(r["mean_sentiment"]), 4), round(float(r["mean_probability"]), 4))
              for r in rows if r["topic"] is not None]
    topics.sort(key=lambda t: (-t.items, t.topic))
    without = sum(int(r["items"]) for r in rows if r["topic"] is None)
    last = max((r["last"] for r in rows), default=None)
    return TopicSummary(start, last, sum(int(r["items"]) for r in rows), without, tuple(topics))


def format_topics(summary: TopicSummary) -> str:
    """The table ``agent monitor topics`` prints."""
    span = f"from {summary.since}" if summary.since else "all stored items"
    lines = [f"{summary.items} items ({span}), {summary.without_topic} without a topic"]
    if not summary.items and summary.since:  # topics may well be stored, just not in this stretch
        lines.append(f"no items stored from {summary.since} on: give an earlier --since or a longer --window")
    elif not summary.items:
        lines.append("no items stored yet: score some feeds with 'agent monitor score' first")
    elif not summary.topics:
        lines.append("no learned topics stored: score with a topic model (--topic-model) to fill them")
    if not summary.topics:
        return "\n".join(lines)
    lines.append(f"{'topic':<30} {'items':>6} {'stories':>7} {'negative':>8} {'sentiment':>9} {'p(topic)':>8}")
    for t in summary.topics:
        lines.append(f"{t.topic[:30]:<30} {t.items:>6} {t.stories:>7} {t.negative_items:>8} "
                     f"{t.mean_sentiment:>+9.3f} {t.mean_probability:>8.3f}")
    return "\n".join(lines)
