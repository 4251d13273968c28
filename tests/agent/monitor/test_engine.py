import json
import shutil

import pytest

from agent.monitor.engine import MonitorConfig, run_monitor
from agent.monitor.pipeline import chunks
from agent.monitor.feeds import Cursor, Feed
from agent.monitor.store import MonitorStore
from agent.monitor.watchlist import Watchlist

WATCH = Watchlist.from_dict({"companies": [{"name": "Acme", "ticker": "ACME"}]})


def write_feed(path, n, start=0):
    lines = [json.dumps({"id": f"i{k}", "title": f"Acme item {k}", "published": f"2026-01-01T{k % 24:02d}:00:00Z"})
             for k in range(start, start + n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_chunks_are_cut_per_batch_with_the_cursor_after_their_last_record(tmp_path):
    feed = write_feed(tmp_path / "f.jsonl", 10)
    with Feed(str(feed)) as opened:
        cut = list(chunks(opened, Cursor(), 4))
    assert [len(c.items) for c in cut] == [4, 4, 2]
    assert cut[-1].cursor.offset == feed.stat().st_size and cut[1].cursor.position == 8


def test_resume_appended_lines_and_duplicates_across_files(tmp_path, keyword_scorer):
    feed = write_feed(tmp_path / "f.jsonl", 10)
    scorer = keyword_scorer(WATCH)
    with MonitorStore.open(tmp_path / "m.db") as store:
        first = run_monitor(MonitorConfig(feeds=(str(feed),), batch_size=4), store, WATCH, scorer=scorer)
        assert (first["read"], first["scored"], first["duplicates"]) == (10, 10, 0)
        again = run_monitor(MonitorConfig(feeds=(str(feed),)), store, WATCH, scorer=scorer)
        assert (again["read"], again["scored"]) == (0, 0)  # the cursor is at the end
        with feed.open("a") as handle:
            handle.write(json.dumps({"id": "new", "title": "Acme new"}) + "\n")
        appended = run_monitor(MonitorConfig(feeds=(str(feed),)), store, WATCH, scorer=scorer)
        assert (appended["read"], appended["scored"]) == (1, 1)
        copy = shutil.copy(feed, tmp_path / "copy.jsonl")
        other = run_monitor(MonitorConfig(feeds=(str(copy),)), store, WATCH, scorer=scorer)
        assert (other["read"], other["scored"], other["duplicates"]) == (11, 11, 0)  # ids belong to their feed
        bare = tmp_path / "bare.jsonl"  # items without ids get content ids, the same in every feed
        bare.write_text("".join(json.dumps({"title": f"Acme bare {k}"}) + "\n" for k in range(5)))
        run_monitor(MonitorConfig(feeds=(str(bare),)), store, WATCH, scorer=scorer)
        calls = len(scorer.calls)
        dup = run_monitor(MonitorConfig(feeds=(shutil.copy(bare, tmp_path / "bare-copy.jsonl"),)), store, WATCH, scorer=scorer)
        assert (dup["read"], dup["scored"], dup["duplicates"], dup["duplicates_other_feed"]) == (5, 0, 5, 5)
        assert len(scorer.calls) == calls  # known items are not scored again
        assert store.counts()["items"] == 27


def test_limit_stops_early_and_the_next_run_goes_on(tmp_path, keyword_scorer):
    feed = write_feed(tmp_path / "f.jsonl", 10)
    scorer = keyword_scorer(WATCH)
    with MonitorStore.open(tmp_path / "m.db") as store:
        part = run_monitor(MonitorConfig(feeds=(str(feed),), batch_size=4, limit=6), store, WATCH, scorer=scorer)
        rest = run_monitor(MonitorConfig(feeds=(str(feed),), batch_size=4), store, WATCH, scorer=scorer)
        assert (part["scored"], rest["scored"]) == (6, 4)


def test_a_run_with_nothing_new_loads_no_model(tmp_path, keyword_scorer):
    feed = write_feed(tmp_path / "f.jsonl", 3)
    with MonitorStore.open(tmp_path / "m.db") as store:
        run_monitor(MonitorConfig(feeds=(str(feed),)), store, WATCH, scorer=keyword_scorer(WATCH))

        def refuse():
            raise AssertionError("no model should load")

        summary = run_monitor(MonitorConfig(feeds=(str(feed),)), store, WATCH, scorer=refuse)
        assert summary["scored"] == 0


@pytest.mark.parametrize("options, message", [
    ({"batch_size": 0}, "batch_size"), ({"engine": "spark"}, "engine must be"), ({"feeds": ()}, "at least one feed"),
    ({"engine": "ray", "limit": 3}, "local engine only"),
])
def test_bad_run_settings(options, message):
    with pytest.raises(ValueError, match=message):
        MonitorConfig(**{"feeds": ("x.jsonl",), **options})
