import sqlite3

import pytest

from agent.monitor.feeds import Cursor, FeedItem, Malformed
from agent.monitor.scoring import ItemScore, Sentiment
from agent.monitor.store import MonitorStore, StoreError
from agent.monitor.watchlist import Mention


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
        assert (again.inserted, again.duplicates, again.rejected) == (0, 1, 0)


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
