import io
import json
import shutil

import pytest

from agent.monitor.engine import MonitorConfig, run_monitor
from agent.monitor.pipeline import chunks
from agent.monitor.sample import SURGE_COMPANY, sample_watchlist, write_sample
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


def test_standard_input_items_are_keyed_by_content_across_runs(tmp_path, monkeypatch, keyword_scorer):
    scorer = keyword_scorer(WATCH)

    def from_stdin(store, *titles):
        lines = "".join(json.dumps({"id": "1", "title": t, "published": "2026-01-01T10:00:00Z"}) + "\n" for t in titles)
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(lines.encode())))
        return run_monitor(MonitorConfig(feeds=("-",)), store, WATCH, scorer=scorer)

    with MonitorStore.open(tmp_path / "m.db") as store:
        first = from_stdin(store, "Acme falls")
        other = from_stdin(store, "Acme rises")  # line 1, id "1" again: another story all the same
        same = from_stdin(store, "Acme rises", "Acme rises")
        assert [(r["scored"], r["duplicates"]) for r in (first, other, same)] == [(1, 0), (1, 0), (0, 2)]
        assert sorted(r["title"] for r in store.rows("SELECT title FROM items")) == ["Acme falls", "Acme rises"]


def test_an_unreadable_feed_fails_alone_and_alerts_are_still_evaluated(tmp_path, keyword_scorer):
    write_sample(tmp_path / "feeds")
    (tmp_path / "feeds" / "a-broken.xml").write_text("<rss><channel><item><title>cut off")  # read before news.jsonl
    watchlist = Watchlist.from_dict(sample_watchlist())
    with MonitorStore.open(tmp_path / "m.db") as store:
        summary = run_monitor(MonitorConfig(feeds=(str(tmp_path / "feeds"),)), store, watchlist,
                              scorer=keyword_scorer(watchlist))
    assert [f["feed"] for f in summary["failed_feeds"]] == [str((tmp_path / "feeds" / "a-broken.xml").resolve())]
    assert "is not well-formed XML" in summary["failed_feeds"][0]["error"]
    assert summary["scored"] == 168 and SURGE_COMPANY in [a["key"] for a in summary["raised"]]


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
