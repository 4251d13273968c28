"""The monitor's SQLite database: items, scores, entities, feed cursors, rejects, alerts, runs.

Each item's scores row holds its sentiment and its learned topic (label and probability; NULL
when no topic model scored it). The ``labels`` view lists what alert rules count per name: every
entity row (``company`` and keyword ``topic`` mentions) and each item's learned topic as kind
``learned_topic``.

One file, written in transactions: a batch's items, their scores and entities, the lines it
skipped and the feeds' new cursors commit together or not at all. A run killed at any moment
leaves the database at the end of its last committed batch; the next run reads each feed from
its cursor, and item keys (:attr:`~agent.monitor.feeds.FeedItem.key`: ``FEED#ID``, or the content
hash) are primary keys, so nothing is lost and nothing is stored twice. The next run also marks
the killed run's row ``interrupted``.

A new database is built under a temporary name and linked into place, so the path either does not
exist or holds a whole monitor database; an existing file that is not one (empty, another app's)
is refused, never written into. Databases of schemas 1 to 3 are migrated in place (:mod:`agent.monitor.migrate`).

Every new item joins a story (:mod:`agent.monitor.stories`: its near-duplicates) in the same
transaction that writes it; the LSH index behind that is rebuilt from the stored signatures the
first time a store writes.

WAL journaling lets readers (``agent monitor alerts``, the web UI) look while a run writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.monitor.items import STDIN, Cursor, FeedItem, Malformed, format_time, stable_id
from agent.monitor.liveness import process_gone, this_process
from agent.monitor.scoring import LABELS, ItemScore
from agent.monitor.stories import StoryConfig, StoryIndex

SCHEMA_VERSION = 4
LEARNED_TOPIC = "learned_topic"  # the kind of a learned topic in the labels view and in alerts
# What alert rules count per (kind, key): entity mentions, and each scored item's learned topic.
LABELS_VIEW = f"""
CREATE VIEW IF NOT EXISTS labels (item_id, kind, key) AS
    SELECT item_id, kind, key FROM entities
    UNION ALL SELECT item_id, '{LEARNED_TOPIC}', topic FROM scores WHERE topic IS NOT NULL;"""
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY, content_hash TEXT NOT NULL, feed TEXT NOT NULL, position INTEGER NOT NULL,
    published TEXT, event_time TEXT NOT NULL, source TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
    url TEXT NOT NULL, ingested_at TEXT NOT NULL, evaluated INTEGER NOT NULL DEFAULT 0, story TEXT);
CREATE INDEX IF NOT EXISTS items_time ON items(event_time);
CREATE INDEX IF NOT EXISTS items_story ON items(story);
CREATE TABLE IF NOT EXISTS stories (id TEXT PRIMARY KEY, size INTEGER NOT NULL, first_time TEXT NOT NULL, title TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS minhashes (item_id TEXT PRIMARY KEY REFERENCES items(id), title BLOB, body BLOB);
CREATE INDEX IF NOT EXISTS items_pending ON items(evaluated) WHERE evaluated = 0;
CREATE TABLE IF NOT EXISTS scores (
    item_id TEXT PRIMARY KEY REFERENCES items(id),
    label TEXT NOT NULL, score REAL NOT NULL, p_negative REAL NOT NULL, p_neutral REAL NOT NULL, p_positive REAL NOT NULL,
    headline_label TEXT NOT NULL, headline_score REAL NOT NULL,
    headline_negative REAL NOT NULL, headline_neutral REAL NOT NULL, headline_positive REAL NOT NULL,
    body_label TEXT, body_score REAL, body_negative REAL, body_neutral REAL, body_positive REAL,
    body_sentences INTEGER NOT NULL, topic TEXT, topic_probability REAL);
CREATE INDEX IF NOT EXISTS scores_topic ON scores(topic) WHERE topic IS NOT NULL;
CREATE TABLE IF NOT EXISTS entities (
    item_id TEXT NOT NULL REFERENCES items(id), kind TEXT NOT NULL, key TEXT NOT NULL, ticker TEXT NOT NULL,
    method TEXT NOT NULL, field TEXT NOT NULL, text TEXT NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    score REAL NOT NULL, PRIMARY KEY (item_id, kind, key, field, start, "end"));
CREATE INDEX IF NOT EXISTS entities_key ON entities(kind, key);
CREATE TABLE IF NOT EXISTS cursors (
    feed TEXT PRIMARY KEY, format TEXT NOT NULL, "offset" INTEGER NOT NULL, position INTEGER NOT NULL, fingerprint TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY AUTOINCREMENT, feed TEXT NOT NULL, position INTEGER NOT NULL, reason TEXT NOT NULL,
    raw TEXT NOT NULL, seen_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rejects_feed ON rejects(feed, position);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, rule TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
    start TEXT NOT NULL, "end" TEXT NOT NULL, raised_at TEXT NOT NULL, window_count INTEGER NOT NULL,
    negative_count INTEGER NOT NULL, share REAL NOT NULL, baseline REAL NOT NULL, statistic REAL NOT NULL,
    peak REAL NOT NULL, evidence TEXT NOT NULL, unit TEXT NOT NULL DEFAULT 'items', UNIQUE (rule, kind, key, start));
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, alert_id INTEGER NOT NULL REFERENCES alerts(id), channel TEXT NOT NULL,
    target TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT NOT NULL, at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT, engine TEXT NOT NULL,
    feeds TEXT NOT NULL, status TEXT NOT NULL, counts TEXT NOT NULL DEFAULT '{}', pid INTEGER, host TEXT,
    proc_start TEXT);
""" + LABELS_VIEW
_FINGERPRINT_BYTES = 4096


class StoreError(RuntimeError):
    """The database cannot be opened or is not a monitor database."""


def now_iso() -> str:
    return format_time(datetime.now(UTC))


@dataclass(frozen=True)
class BatchResult:
    """What one committed batch added."""

    inserted: int
    duplicates: int
    rejected: int
    inserted_ids: tuple[str, ...] = ()  # item keys


class MonitorStore:
    """A monitor database. Open with :meth:`open`; use as a context manager to close it."""

    def __init__(self, connection: sqlite3.Connection, path: Path, stories: StoryConfig | None = None) -> None:
        self.db = connection
        self.path = path
        self.story_config = stories or StoryConfig()
        self._stories: StoryIndex | None = None  # built from the database at the first write

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True) -> MonitorStore:
        """Open (or, with ``create``, make) the database at ``path``; migrate an older schema.

        Raises:
            StoreError: It is missing (``create=False``), a folder, an empty file, not SQLite,
                another app's database, or from a newer qagent.
        """
        path = Path(path)
        if path.is_dir():
            raise StoreError(f"database {path} is a folder; give a file path such as {path / 'monitor.db'}")
        if not path.exists():
            if not create:
                raise StoreError(f"database {path} does not exist; create it with 'agent monitor score FEED --db {path}'")
            if not path.parent.is_dir():
                raise StoreError(f"cannot create database {path}: folder {path.parent} does not exist")
            _create(path)
        elif path.is_file() and path.stat().st_size == 0 and not _has_wal(path):
            raise StoreError(f"{path} is an empty file, not a qagent monitor database; remove it or give another --db")
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) below.
        try:
            connection = sqlite3.connect(str(path), isolation_level=None, timeout=30.0, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        connection.row_factory = sqlite3.Row
        try:
            tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise StoreError(f"{path} is not a monitor database ({exc})") from exc
        store = cls(connection, path)
        if not tables:
            connection.close()
            raise StoreError(f"{path} is an empty SQLite database, not a qagent monitor database; remove it or give another --db")
        if "meta" not in tables:
            connection.close()
            raise StoreError(f"{path} is a SQLite database of something else (tables: {', '.join(sorted(tables)[:5])})")
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")  # with WAL: safe against a killed process
            connection.execute("PRAGMA foreign_keys=ON")
            version = store.get_meta("schema_version")
            if version in ("1", "2", "3"):
                from agent.monitor.migrate import migrate

                migrate(connection, version)
                version = store.get_meta("schema_version")
        except sqlite3.OperationalError as exc:
            connection.close()
            raise StoreError(f"cannot write database {path}: {exc}") from exc
        if version != str(SCHEMA_VERSION):
            connection.close()
            raise StoreError(f"{path} has monitor schema version {version}; this qagent reads version {SCHEMA_VERSION}")
        return store

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> MonitorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything inside commits together or is rolled back."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                            (key, value if isinstance(value, str) else json.dumps(value, sort_keys=True)))

    # -- cursors ------------------------------------------------------------------------------
    def cursor(self, feed: str, fmt: str) -> Cursor:
        """Where to resume ``feed`` (read as ``fmt``): its saved cursor, or the top when the file
        changed under it or was read as another format."""
        if feed == STDIN:
            return Cursor()
        row = self.db.execute('SELECT format, "offset", position, fingerprint FROM cursors WHERE feed = ?',
                              (feed,)).fetchone()
        if row is None or row["format"] != fmt:
            return Cursor()
        if fingerprint(feed, fmt, row["offset"]) != row["fingerprint"]:
            return Cursor()  # replaced or rewritten: read it again; ids keep the items unique
        return Cursor(row["offset"], row["position"])

    # -- writing ------------------------------------------------------------------------------
    def known_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of the item keys ``ids`` are already stored."""
        return set(self.feeds_of(ids))

    def feeds_of(self, ids: Sequence[str]) -> dict[str, str]:
        """Stored item key -> the feed it was first read from, for those of ``ids`` already stored."""
        found: dict[str, str] = {}
        ids = list(ids)
        for lo in range(0, len(ids), 500):  # SQLite caps bound parameters per statement
            chunk = ids[lo : lo + 500]
            marks = ",".join("?" * len(chunk))
            found.update((r[0], r[1]) for r in self.db.execute(f"SELECT id, feed FROM items WHERE id IN ({marks})", chunk))
        return found

    def write_batch(
        self,
        scored: Sequence[tuple[FeedItem, ItemScore]],
        malformed: Sequence[Malformed],
        cursors: dict[str, tuple[str, Cursor]],
    ) -> BatchResult:
        """Store a batch of scored items, its rejects and the feeds' new cursors in one transaction.

        Args:
            scored: Items with their scores; item keys already stored are counted as duplicates.
            malformed: Lines or entries skipped in this batch (every one is kept).
            cursors: Feed -> (format, cursor just after the batch's last record of that feed).
        """
        now = now_iso()
        inserted: list[str] = []
        if self._stories is None:
            self._stories = StoryIndex.load(self.db, self.story_config)
        try:
            with self.transaction() as db:
                self._write(db, scored, malformed, cursors, now, inserted)
        except BaseException:
            self._stories = None  # it may hold items just rolled back: rebuild from the database
            raise
        return BatchResult(len(inserted), len(scored) - len(inserted), len(malformed), tuple(inserted))

    def _write(self, db: sqlite3.Connection, scored: Sequence[tuple[FeedItem, ItemScore]], malformed: Sequence[Malformed],
               cursors: dict[str, tuple[str, Cursor]], now: str, inserted: list[str]) -> None:
        assert self._stories is not None
        self._stories.refresh(db)  # items another process stored since
        for item, score in scored:
            key = item.key
            cur = db.execute(
                "INSERT OR IGNORE INTO items (id, content_hash, feed, position, published, event_time, source, "
                "title, body, url, ingested_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (key, stable_id(item.source, item.title, item.published, item.body), item.feed,
                 item.position, item.published, item.published or now, item.source, item.title, item.body,
                 item.url, now),
            )
            if cur.rowcount == 0:
                continue
            inserted.append(key)
            self._stories.assign(db, key, item.title, item.body, item.published or now,
                                 frozenset(m.key for m in score.mentions if m.kind == "company"))
            db.execute("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", _score_row(key, score))
            db.executemany(
                'INSERT OR IGNORE INTO entities VALUES (?,?,?,?,?,?,?,?,?,?)',
                [(key, m.kind, m.key, m.ticker, m.method, m.field, m.text, m.start, m.end, m.score)
                 for m in score.mentions],
            )
        db.executemany("INSERT INTO rejects (feed, position, reason, raw, seen_at) VALUES (?,?,?,?,?)",
                       [(bad.feed, bad.position, bad.reason, bad.raw, now) for bad in malformed])
        for feed, (fmt, cursor) in cursors.items():
            if feed == STDIN:
                continue
            db.execute('INSERT OR REPLACE INTO cursors VALUES (?,?,?,?,?,?)',
                       (feed, fmt, cursor.offset, cursor.position, fingerprint(feed, fmt, cursor.offset), now))

    # -- runs ---------------------------------------------------------------------------------
    def start_run(self, engine: str, feeds: Sequence[str]) -> int:
        """Record a new run of this process; first mark ``interrupted`` the runs still ``running``
        whose process is gone (killed before it could say how it ended)."""
        pid, host, started = this_process()
        with self.transaction() as db:
            for row in db.execute("SELECT id, pid, host, proc_start FROM runs WHERE status = 'running'").fetchall():
                if process_gone(row["pid"], row["host"], row["proc_start"]):
                    db.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (row["id"],))
            cur = db.execute("INSERT INTO runs (started_at, engine, feeds, status, pid, host, proc_start) "
                             "VALUES (?,?,?,?,?,?,?)",
                             (now_iso(), engine, json.dumps(list(feeds)), "running", pid, host, started))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, status: str, counts: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET finished_at = ?, status = ?, counts = ? WHERE id = ?",
                       (now_iso(), status, json.dumps(counts), run_id))

    # -- reading ------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Rows per table (what a user checks after a run)."""
        tables = ("items", "stories", "scores", "entities", "cursors", "rejects", "alerts", "notifications", "runs")
        return {t: int(self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in tables}

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute(sql, params)]

    def duplicates(self) -> dict[str, int]:
        """Items skipped as already stored, over all runs: the same feed's id again (``same_feed``),
        or a content id another feed's item holds (``other_feed``: content dedup spans feeds)."""
        total = other = 0
        for (counts,) in self.db.execute("SELECT counts FROM runs"):
            data = json.loads(counts or "{}")
            total += int(data.get("duplicates", 0))
            other += int(data.get("duplicates_other_feed", 0))
        return {"same_feed": total - other, "other_feed": other}


def fingerprint(feed: str, fmt: str, offset: int) -> str:
    """sha256 of the feed's first ``min(offset, 4 KiB)`` bytes (XML and JSON arrays: of the whole
    file, whose cursor counts entries). Appending to a JSONL/CSV file keeps it; rewriting it does not."""
    path = Path(feed)
    try:
        with path.open("rb") as handle:
            if fmt in ("xml", "json"):
                data = handle.read()
            else:
                if path.stat().st_size < offset:
                    return "truncated"
                data = handle.read(min(offset, _FINGERPRINT_BYTES))
    except OSError:
        return "missing"
    return hashlib.sha256(data).hexdigest()[:16]


def _create(path: Path) -> None:
    """Build a new database under a temporary name and link it into place, so ``path`` is never
    an empty or half-made file (a run killed while creating it leaves only the temporary file)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.creating")
    temporary.unlink(missing_ok=True)
    try:
        connection = sqlite3.connect(str(temporary), isolation_level=None)
        try:
            connection.executescript(f"BEGIN; {_SCHEMA} INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;")
        finally:
            connection.close()
        try:
            os.link(temporary, path)  # fails if another process made the file meanwhile: theirs is kept
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not path.exists():
                os.replace(temporary, path)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot create database {path}: {exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)


def _has_wal(path: Path) -> bool:
    wal = path.with_name(path.name + "-wal")
    return wal.is_file() and wal.stat().st_size > 0


def _score_row(key: str, score: ItemScore) -> tuple[Any, ...]:
    o, h, b = score.overall, score.headline, score.body
    body = (b.label, b.score, *(b.probs[k] for k in LABELS)) if b else (None,) * 5
    topic = (score.topic.label, score.topic.probability) if score.topic else (None, None)
    return (key, o.label, o.score, *(o.probs[k] for k in LABELS),
            h.label, h.score, *(h.probs[k] for k in LABELS), *body, score.body_sentences, *topic)
