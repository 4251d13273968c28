import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agent.monitor.engine import MonitorConfig, run_monitor
from agent.monitor.feeds import Cursor, FeedItem, Malformed
from agent.monitor.scoring import ItemScore, Sentiment
from agent.monitor.store import MonitorStore, StoreError
from agent.monitor.watchlist import Mention, Watchlist

DATA = Path(__file__).parent / "data"


def scored(item_id, label="negative"):
    s = Sentiment.from_probs({label: 1.0})
    item = FeedItem(item_id, "feed.jsonl", 1, "2026-01-01T00:00:00Z", "src", f"title {item_id}")
    return item, ItemScore(item_id, s, s, mentions=(Mention("company", "Acme", "Acme", 0, 4, "watchlist"),))


def test_a_batch_is_stored_with_scores_entities_rejects_and_cursor(tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_text("x" * 100)
    with MonitorStore.open(tmp_path / "m.db") as store:
        result = store.write_batch([scored("a"), scored("b"), scored("a")],
                                   [Malformed(str(feed), 3, "invalid JSON", "x")], {str(feed): ("jsonl", Cursor(50, 3))})
        assert (result.inserted, result.duplicates, result.rejected) == (2, 1, 1)
        assert store.counts()["items"] == 2 and store.counts()["scores"] == 2 and store.counts()["entities"] == 2
        assert store.cursor(str(feed), "jsonl") == Cursor(50, 3)
        assert store.cursor(str(feed), "csv") == Cursor()  # read as another format: from the top
        again = store.write_batch([scored("a")], [Malformed(str(feed), 3, "invalid JSON", "x")], {})
        assert (again.inserted, again.duplicates, again.rejected) == (0, 1, 1)  # every reject is kept


def test_a_rewritten_feed_is_read_again_from_the_top(tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_text("a" * 100)
    with MonitorStore.open(tmp_path / "m.db") as store:
        store.write_batch([], [], {str(feed): ("jsonl", Cursor(100, 1))})
        feed.write_text("a" * 100 + "appended")
        assert store.cursor(str(feed), "jsonl") == Cursor(100, 1)
        feed.write_text("b" * 120)
        assert store.cursor(str(feed), "jsonl") == Cursor()


def test_a_failed_transaction_leaves_nothing_behind(tmp_path):
    with MonitorStore.open(tmp_path / "m.db") as store:
        with pytest.raises(RuntimeError):
            with store.transaction() as db:
                db.execute("INSERT INTO meta VALUES ('x', 'y')")
                raise RuntimeError("crash")
        assert store.get_meta("x") is None


def test_files_that_are_not_monitor_databases_are_refused(tmp_path):
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="is not a monitor database"):
        MonitorStore.open(tmp_path / "junk.db")
    other = sqlite3.connect(tmp_path / "other.db")
    other.execute("CREATE TABLE customers (id)")
    other.commit()
    other.close()
    with pytest.raises(StoreError, match="SQLite database of something else"):
        MonitorStore.open(tmp_path / "other.db")
    with pytest.raises(StoreError, match="does not exist"):
        MonitorStore.open(tmp_path / "missing.db", create=False)
    with pytest.raises(StoreError, match="is a folder"):
        MonitorStore.open(tmp_path)
    with pytest.raises(StoreError, match="folder .* does not exist"):
        MonitorStore.open(tmp_path / "no" / "m.db")


def test_every_reject_is_kept_even_at_the_same_position(tmp_path):
    with MonitorStore.open(tmp_path / "m.db") as store:
        first = store.write_batch([], [Malformed("-", 2, "invalid JSON", "x")], {})
        second = store.write_batch([], [Malformed("-", 2, "no title or body", "{}")], {})  # a later stdin run
        assert (first.rejected, second.rejected) == (1, 1)
        assert [r["reason"] for r in store.rows("SELECT reason FROM rejects ORDER BY id")] == ["invalid JSON", "no title or body"]


def test_an_existing_empty_file_is_refused_and_left_untouched(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    for create in (True, False):
        with pytest.raises(StoreError, match="empty.db is an empty file, not a qagent monitor database"):
            MonitorStore.open(empty, create=create)
    assert empty.read_bytes() == b""
    with MonitorStore.open(tmp_path / "new.db") as store:  # a file that does not exist yet is created
        assert store.counts()["items"] == 0


def gone_pid():
    """The id of a process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_runs_row_is_marked_interrupted_when_the_next_run_starts(tmp_path):
    with MonitorStore.open(tmp_path / "m.db") as store:
        killed = store.start_run("local", ["f.jsonl"])
        alive = store.start_run("local", ["f.jsonl"])  # this very process: still running
        store.db.execute("UPDATE runs SET pid = ? WHERE id = ?", (gone_pid(), killed))
        store.start_run("local", ["f.jsonl"])
        status = {r["id"]: r["status"] for r in store.rows("SELECT id, status FROM runs")}
        assert (status[killed], status[alive]) == ("interrupted", "running")
        assert store.rows("SELECT finished_at FROM runs WHERE id = ?", (killed,))[0]["finished_at"] is None  # unknown


def load_v1(path):
    """A database written by qagent before schema 2 (global ids, unpadded old dates, one reject per position)."""
    connection = sqlite3.connect(path)
    connection.executescript((DATA / "monitor-v1.sql").read_text())
    connection.close()
    return path


def test_a_schema_1_database_is_migrated_in_place(tmp_path):
    db = load_v1(tmp_path / "v1.db")
    feed = "/data/feeds/wire.jsonl"
    with MonitorStore.open(db) as store:
        assert store.get_meta("schema_version") == "4"
        ids = {r["id"] for r in store.rows("SELECT id FROM items")}
        assert f"{feed}#a0" in ids and f"{feed}#old-1" in ids and "a0" not in ids
        assert "sha256:ee9e1ccfa8d3f1c8cc9418b9f5d5d1d5" in ids  # content ids stay global
        for table in ("scores", "entities"):  # every row still points at its item
            assert not store.rows(f"SELECT item_id FROM {table} WHERE item_id NOT IN (SELECT id FROM items)")
        evidence = json.loads(store.rows("SELECT evidence FROM alerts")[0]["evidence"])
        assert evidence == [f"{feed}#s{k}" for k in range(6)]
        old = store.rows("SELECT published, event_time FROM items WHERE id = ?", (f"{feed}#old-1",))[0]
        assert old == {"published": "0999-01-01T00:00:00Z", "event_time": "0999-01-01T00:00:00Z"}
        assert store.counts()["rejects"] == 2
        store.write_batch([], [Malformed("-", 2, "no title or body", "{}")], {})
        assert store.counts()["rejects"] == 3
        # The old run left 'running' by a killed process is closed by the next run; alerts evaluate again.
        watch = Watchlist.from_dict({"companies": [{"name": "Acme"}]})
        run_monitor(MonitorConfig(feeds=(str(write_empty(tmp_path)),)), store, watch, scorer=lambda: None)
        assert [r["status"] for r in store.rows("SELECT status FROM runs ORDER BY id")] == [
            "finished", "interrupted", "finished"]
        assert store.rows("SELECT COUNT(*) AS n FROM items WHERE evaluated = 0")[0]["n"] == 0


def write_empty(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    return path
