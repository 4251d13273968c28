"""Bring an older monitor database up to the current schema, in place, one transaction a step.

Schema 1 → 2:

* ids the feeds gave become feed-scoped (``FEED#ID``) in ``items``, ``scores``, ``entities`` and
  the alerts' evidence; content ids (``sha256:``) stay as they are;
* published and event times stored with an unpadded year (before 1000) get four digits, so the
  strings sort as the times do;
* ``rejects`` keeps every reject (a row id instead of the (feed, position) key);
* ``runs`` records the process of each run (pid, host, start time), so a killed run's row can be
  closed by the next run.

Schema 2 → 3 (stories, :mod:`agent.monitor.stories`):

* ``items`` gains ``story``; the new ``stories`` table holds each story's size, and ``minhashes``
  each item's signatures;
* the items already stored are clustered here, oldest first, exactly as new items are, so an old
  database's syndicated copies count once like new ones;
* ``alerts`` gains ``unit``: the alerts already raised counted items and say so.

Schema 3 → 4 (learned topics):

* ``scores`` gains ``topic`` and ``topic_probability``; items scored before stay NULL (no topic
  model read them; scoring them again would change their stored sentiment's provenance);
* the ``labels`` view lists entity mentions and learned topics for the alert rules.

Each step is one transaction; a database interrupted between steps continues from where it stopped.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

_REJECTS_V2 = """
CREATE TABLE rejects (
    id INTEGER PRIMARY KEY AUTOINCREMENT, feed TEXT NOT NULL, position INTEGER NOT NULL, reason TEXT NOT NULL,
    raw TEXT NOT NULL, seen_at TEXT NOT NULL)"""
_PADDED = "substr('0000' || {col}, -20)"  # '999-01-01T00:00:00Z' -> '0999-01-01T00:00:00Z'
_UNPADDED = "{col} GLOB '[0-9]*-[0-9][0-9]-[0-9][0-9]T*' AND length({col}) < 20"


def migrate(connection: sqlite3.Connection, version: str) -> None:
    """Migrate from schema ``version`` to the current one (4), a step at a time."""
    if version not in ("1", "2", "3"):
        raise ValueError(f"cannot migrate monitor schema {version}")
    if version == "1":
        connection.execute("PRAGMA foreign_keys=OFF")  # no effect inside a transaction: set before BEGIN
        try:
            _step(connection, "1", _to_2)
        finally:
            connection.execute("PRAGMA foreign_keys=ON")
    if version in ("1", "2"):
        _step(connection, "2", _to_3)
    _step(connection, "3", _to_4)


def _step(connection: sqlite3.Connection, version: str, body: Callable[[sqlite3.Connection], None]) -> None:
    """Run ``body`` on a database of schema ``version`` in one transaction, and record the next version."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] != version:  # another process migrated it while this one waited
            connection.execute("ROLLBACK")
            return
        body(connection)
        connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(int(version) + 1),))
        broken = connection.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise sqlite3.IntegrityError(f"{len(broken)} rows lost their item while migrating")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _to_3(connection: sqlite3.Connection) -> None:
    from agent.monitor.stories import StoryIndex, companies_of

    connection.execute("ALTER TABLE items ADD COLUMN story TEXT")
    connection.execute("CREATE INDEX IF NOT EXISTS items_story ON items(story)")
    connection.execute("CREATE TABLE IF NOT EXISTS stories (id TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                       "first_time TEXT NOT NULL, title TEXT NOT NULL)")
    connection.execute("CREATE TABLE IF NOT EXISTS minhashes (item_id TEXT PRIMARY KEY REFERENCES items(id), "
                       "title BLOB, body BLOB)")
    connection.execute("ALTER TABLE alerts ADD COLUMN unit TEXT NOT NULL DEFAULT 'items'")
    index, companies = StoryIndex(), companies_of(connection)
    for key, title, body, event_time in connection.execute(
            "SELECT id, title, body, event_time FROM items ORDER BY event_time, id").fetchall():
        index.assign(connection, key, title, body, event_time, companies.get(key, frozenset()))


def _to_4(connection: sqlite3.Connection) -> None:
    # Written out as schema 4 had it (not imported from the store), so this step stays what it was.
    connection.execute("ALTER TABLE scores ADD COLUMN topic TEXT")
    connection.execute("ALTER TABLE scores ADD COLUMN topic_probability REAL")
    connection.execute("CREATE INDEX IF NOT EXISTS scores_topic ON scores(topic) WHERE topic IS NOT NULL")
    connection.execute("CREATE VIEW IF NOT EXISTS labels (item_id, kind, key) AS "
                       "SELECT item_id, kind, key FROM entities "
                       "UNION ALL SELECT item_id, 'learned_topic', topic FROM scores WHERE topic IS NOT NULL")


def _to_2(connection: sqlite3.Connection) -> None:
    """Foreign keys are off (see :func:`migrate`) while ids are rewritten: every table's ids change
    together, in one transaction."""
    _scope_ids(connection)
    for col in ("published", "event_time"):
        connection.execute(f"UPDATE items SET {col} = {_PADDED.format(col=col)} WHERE {_UNPADDED.format(col=col)}")
    connection.execute("ALTER TABLE rejects RENAME TO rejects_v1")
    connection.execute(_REJECTS_V2)
    connection.execute("INSERT INTO rejects (feed, position, reason, raw, seen_at) "
                       "SELECT feed, position, reason, raw, seen_at FROM rejects_v1 ORDER BY seen_at, feed, position")
    connection.execute("DROP TABLE rejects_v1")
    connection.execute("CREATE INDEX IF NOT EXISTS rejects_feed ON rejects(feed, position)")
    for column in ("pid INTEGER", "host TEXT", "proc_start TEXT"):
        connection.execute(f"ALTER TABLE runs ADD COLUMN {column}")


def _scope_ids(connection: sqlite3.Connection) -> None:
    scoped = "feed || '#' || id"
    renamed = dict(connection.execute(f"SELECT id, {scoped} FROM items WHERE id NOT LIKE 'sha256:%'").fetchall())
    if not renamed:
        return
    for table in ("scores", "entities"):
        connection.execute(f"UPDATE {table} SET item_id = (SELECT {scoped} FROM items WHERE items.id = {table}.item_id) "
                           "WHERE item_id NOT LIKE 'sha256:%'")
    connection.execute(f"UPDATE items SET id = {scoped} WHERE id NOT LIKE 'sha256:%'")
    for alert_id, evidence in connection.execute("SELECT id, evidence FROM alerts").fetchall():
        ids = json.loads(evidence)
        connection.execute("UPDATE alerts SET evidence = ? WHERE id = ?",
                           (json.dumps([renamed.get(i, i) for i in ids]), alert_id))
