"""What ``agent monitor watch`` remembers about each source, in the monitor database.

One row per source (a URL or a local path, as given): when it was last polled and last read
successfully, its last error, the ETag and Last-Modified to send back (for a local source: its
files' sizes and modification times), consecutive failures, when it is next due, and how many
items it has stored. The table is the watcher's own (``CREATE TABLE IF NOT EXISTS``), beside the
store's tables; ``agent monitor status`` reads it when it is there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from agent.monitor.items import format_time
from agent.monitor.store import MonitorStore

TABLE = "watch_sources"
_SCHEMA = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    source TEXT PRIMARY KEY, kind TEXT NOT NULL, etag TEXT, last_modified TEXT, last_poll TEXT,
    last_success TEXT, last_error TEXT NOT NULL DEFAULT '', failures INTEGER NOT NULL DEFAULT 0,
    next_poll TEXT, items INTEGER NOT NULL DEFAULT 0, polls INTEGER NOT NULL DEFAULT 0)"""


@dataclass
class SourceState:
    """One source's row (times as ``YYYY-MM-DDTHH:MM:SSZ``, None before the first poll)."""

    source: str
    kind: str  # "url" or "path"
    etag: str | None = None
    last_modified: str | None = None
    last_poll: str | None = None
    last_success: str | None = None
    last_error: str = ""
    failures: int = 0
    next_poll: str | None = None
    items: int = 0
    polls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ensure_table(store: MonitorStore) -> None:
    """Create the table if this database has none yet."""
    with store.transaction() as db:
        db.execute(_SCHEMA)


def load_state(store: MonitorStore, source: str, kind: str) -> SourceState:
    """The saved state of ``source``, or a fresh one."""
    row = store.db.execute(f"SELECT * FROM {TABLE} WHERE source = ?", (source,)).fetchone()
    return SourceState(**dict(row)) if row else SourceState(source, kind)


def save_state(store: MonitorStore, state: SourceState) -> None:
    data = state.to_dict()
    names = ", ".join(data)
    with store.transaction() as db:
        db.execute(f"INSERT OR REPLACE INTO {TABLE} ({names}) VALUES ({', '.join('?' * len(data))})",
                   tuple(data.values()))


def list_sources(store: MonitorStore) -> list[dict[str, Any]]:
    """Every watched source's state (none when nothing was ever watched into this database)."""
    exists = store.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone()
    return store.rows(f"SELECT * FROM {TABLE} ORDER BY source") if exists else []


def iso(epoch: float) -> str:
    return format_time(datetime.fromtimestamp(epoch, UTC))


def epoch(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
