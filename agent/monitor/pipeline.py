"""What both monitor engines share: the run's settings, chunks of a feed, and the writer that
stores each scored chunk in one transaction and raises the alerts.

The local engine (:mod:`agent.monitor.engine`) scores chunks in this process; the Ray engine
(:mod:`agent.monitor.ray_engine`) scores the very same chunks on Ray workers. Chunks are cut per
feed, every ``batch_size`` items, so both engines commit the same batches with the same cursors
and raise the same alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.monitor.alerts import Alert, AlertRule, evaluate
from agent.monitor.feeds import Cursor, Feed, FeedItem, FeedLimits, FieldMap, Malformed
from agent.monitor.notify import WebhookConfig, notify
from agent.monitor.scoring import ItemScore, ScoringConfig
from agent.monitor.store import MonitorStore
from agent.monitor.watchlist import Watchlist

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class MonitorConfig:
    """One ``agent monitor score`` run.

    Attributes:
        feeds: Feed files, folders or ``-`` (standard input).
        fmt: ``auto`` (by suffix, then by content), ``jsonl``, ``json``, ``csv`` or ``xml``.
        fields: Which keys hold id, published, source, title, body, url.
        limits: Size caps and the published-time window; records outside them are rejected.
        batch_size: Items per scoring batch and per transaction.
        alert_every: Evaluate the alert rules after about this many new items (and at the end).
        engine: ``local`` or ``ray``.
        workers: Ray scoring workers (each loads the models once).
        ray_address: Ray cluster to join (None: start a local Ray).
        scoring: How items are scored.
        rules: Alert rules.
        webhook: POST new alerts here.
        stdout_alerts: Print one line per new alert.
        limit: Stop after this many records (None: read everything).
    """

    feeds: tuple[str, ...]
    fmt: str = "auto"
    fields: FieldMap = field(default_factory=FieldMap)
    limits: FeedLimits = field(default_factory=FeedLimits)
    batch_size: int = 64
    alert_every: int = 1024
    engine: str = "local"
    workers: int = 2
    ray_address: str | None = None
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    rules: tuple[AlertRule, ...] = (AlertRule(),)
    webhook: WebhookConfig | None = None
    stdout_alerts: bool = False
    limit: int | None = None

    def __post_init__(self) -> None:
        if not self.feeds:
            raise ValueError("give at least one feed (a file, a folder, or - for standard input)")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.alert_every < 1:
            raise ValueError(f"alert_every must be >= 1, got {self.alert_every}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.limit is not None and self.engine == "ray":
            raise ValueError("--limit works with the local engine only")
        object.__setattr__(self, "rules", tuple(self.rules))


@dataclass
class Chunk:
    """Consecutive records of one feed: up to ``batch_size`` items and the malformed lines among them."""

    feed: str
    format: str
    items: list[FeedItem]
    malformed: list[Malformed]
    cursor: Cursor
    read: int

    def to_dict(self) -> dict[str, Any]:
        return {"feed": self.feed, "format": self.format, "items": [i.to_dict() for i in self.items],
                "malformed": [vars(m) for m in self.malformed], "cursor": [self.cursor.offset, self.cursor.position],
                "read": self.read}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(data["feed"], data["format"], [FeedItem.from_dict(i) for i in data["items"]],
                   [Malformed(**m) for m in data["malformed"]], Cursor(*data["cursor"]), int(data["read"]))


def chunks(feed: Feed, start: Cursor, batch_size: int, limit: int | None = None) -> Iterator[Chunk]:
    """Cut a feed's records (from cursor ``start``) into chunks of ``batch_size`` items.

    ``limit`` stops after that many records (items and malformed lines alike).
    """
    items: list[FeedItem] = []
    bad: list[Malformed] = []
    cursor, read, total = start, 0, 0
    for record in feed.records(start):
        read += 1
        total += 1
        cursor = record.cursor
        if isinstance(record.entry, Malformed):
            bad.append(record.entry)
        else:
            items.append(record.entry)
        stop = limit is not None and total >= limit
        if len(items) >= batch_size or stop:
            yield Chunk(feed.name, feed.format, items, bad, cursor, read)
            items, bad, read = [], [], 0
        if stop:
            return
    if read:
        yield Chunk(feed.name, feed.format, items, bad, cursor, read)


class Writer:
    """Commits scored chunks, keeps the run's counts, evaluates alerts and sends notifications."""

    def __init__(self, store: MonitorStore, config: MonitorConfig, watchlist: Watchlist,
                 on_progress: Callable[[int, dict[str, int]], None] | None = None,
                 echo: Callable[[str], None] | None = None) -> None:
        self.store, self.config = store, config
        self.watched = {c.name for c in watchlist.companies}
        self.counts = {"read": 0, "scored": 0, "duplicates": 0, "duplicates_other_feed": 0, "skipped": 0,
                       "alerts": 0, "webhook_sent": 0, "webhook_failed": 0}
        self.alerts: list[Alert] = []
        self.reasons: dict[str, int] = {}
        self.failed: dict[str, str] = {}  # feed -> why it could not be read at all
        self._since_alerts = 0
        self._on_progress = on_progress
        self._echo = echo

    def commit(self, chunk: Chunk, scores: Sequence[ItemScore]) -> None:
        """Store one chunk (items already known were left out of ``scores`` or are ignored)."""
        # A chunk holds one feed's items, so the scorer's item ids (the feed's own) map back to them.
        by_id = {s.item_id: s for s in scores}
        pairs = [(item, by_id[item.id]) for item in chunk.items if item.id in by_id]
        result = self.store.write_batch(pairs, chunk.malformed, {chunk.feed: (chunk.format, chunk.cursor)})
        self.counts["read"] += chunk.read
        self.counts["scored"] += result.inserted
        self.counts["duplicates"] += len(chunk.items) - result.inserted
        # Content ids span feeds on purpose (the same wire story in two feeds is one item): count those apart.
        inserted = set(result.inserted_ids)
        shared = [i.key for i in chunk.items if i.content_id and i.key not in inserted]
        if shared:
            first_feed = self.store.feeds_of(shared)
            self.counts["duplicates_other_feed"] += sum(first_feed.get(k, chunk.feed) != chunk.feed for k in shared)
        self.counts["skipped"] += len(chunk.malformed)
        for bad in chunk.malformed:
            reason = bad.reason.split(" (")[0].split(" '")[0]  # "invalid JSON", not each column number
            self.reasons[reason] = self.reasons.get(reason, 0) + 1
        self._since_alerts += result.inserted
        if self._since_alerts >= self.config.alert_every:
            self.run_alerts()
        if self._on_progress is not None:
            self._on_progress(chunk.read, self.counts)

    def fail(self, feed: str, error: Exception) -> None:
        """Note a feed that cannot be read at all (XML that does not parse, an empty file); the
        run goes on with the other feeds, and what that feed stored before is kept."""
        self.failed[feed] = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__

    def run_alerts(self) -> None:
        """Evaluate the rules on what is stored but not yet evaluated; notify what is new."""
        self._since_alerts = 0
        raised = evaluate(self.store, self.config.rules, self.watched)
        if not raised:
            return
        self.alerts += raised
        self.counts["alerts"] += len(raised)
        sent = notify(self.store, raised, webhook=self.config.webhook,
                      stdout=self._echo if self.config.stdout_alerts else None)
        self.counts["webhook_sent"] += sent["sent"]
        self.counts["webhook_failed"] += sent["failed"]
