"""``agent monitor watch`` against a real HTTP server on 127.0.0.1 (no other host is contacted)."""

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.monitor.fetch import FetchConfig
from agent.monitor.pipeline import MonitorConfig
from agent.monitor.sources import list_sources
from agent.monitor.store import MonitorStore
from agent.monitor.watch import WatchConfig, Watcher
from agent.monitor.watchlist import Watchlist

runner = CliRunner()
WATCHLIST = Watchlist.from_dict({"companies": [{"name": "Northwind Bank", "ticker": "NWB"}]})
REPO = Path(__file__).resolve().parents[3]


def jsonl(*titles):
    return "".join(json.dumps({"id": t, "title": t, "published": "2026-01-05T10:00:00Z"}) + "\n" for t in titles).encode()


def rss(*titles):
    items = "".join(f"<item><guid>{t}</guid><title>{t}</title><pubDate>Mon, 05 Jan 2026 10:00:00 GMT</pubDate></item>"
                    for t in titles)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{items}</channel></rss>'.encode()


class Server:
    """Routes (path -> response) the tests change between polls; every request is recorded."""

    def __init__(self):
        self.routes: dict[str, dict] = {}
        self.requests: list[tuple[str, dict]] = []
        self.started = threading.Event()  # set when a slow response has begun
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path, {"status": 404, "body": b"no such feed"})
                if "location" in route:
                    self.send_response(302)
                    self.send_header("Location", route["location"])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = route.get("body", b"")
                etag = route.get("etag", True) and f'"{hashlib.sha256(body).hexdigest()[:12]}"'
                modified = route.get("last_modified")
                if (etag and self.headers.get("If-None-Match") == etag) or \
                        (modified and self.headers.get("If-Modified-Since") == modified):
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(route.get("status", 200))
                if etag:
                    self.send_header("ETag", etag)
                if modified:
                    self.send_header("Last-Modified", modified)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if route.get("delay"):
                    server.started.set()
                    time.sleep(route["delay"])
                try:
                    self.wfile.write(body)
                except OSError:  # the client gave up (timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path):
        return self.base + path


@pytest.fixture()
def server():
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture()
def make_watcher(tmp_path, keyword_scorer):
    made = []

    def make(*sources, db=None, every=60.0, timeout=5.0, max_bytes=1 << 20, clock=time.time):
        store = MonitorStore.open(db or tmp_path / "m.db")
        config = WatchConfig(tuple(sources), every=every, max_backoff=3600.0,
                             fetch=FetchConfig(timeout=timeout, max_bytes=max_bytes))
        watcher = Watcher(config, MonitorConfig(feeds=tuple(sources)), store, WATCHLIST,
                          scorer=keyword_scorer(WATCHLIST), log=lambda line: None, clock=clock, rng=random.Random(0))
        made.append((watcher, store))
        return watcher

    yield make
    for watcher, store in made:
        watcher.close()
        store.close()


def titles(db):
    with MonitorStore.open(db, create=False) as store:
        return sorted(r["title"] for r in store.rows("SELECT title FROM items"))


def state(db, source):
    with MonitorStore.open(db, create=False) as store:
        return next(s for s in list_sources(store) if s["source"] == source)


def test_a_growing_feed_is_read_again_only_when_changed_and_nothing_is_stored_twice(server, make_watcher, tmp_path):
    server.routes["/news.jsonl"] = {"body": jsonl("a", "b")}
    server.routes["/wire.rss"] = {"body": rss("r1")}
    news, wire = server.url("/news.jsonl"), server.url("/wire.rss")
    watcher = make_watcher(news, wire)
    assert [watcher.poll(s).stored for s in (news, wire)] == [2, 1]
    assert watcher.poll(news).status == "not modified"  # the server answered 304 to our ETag
    assert server.requests[-1][1]["If-None-Match"] == f'"{hashlib.sha256(jsonl("a", "b")).hexdigest()[:12]}"'
    server.routes["/news.jsonl"] = {"body": jsonl("a", "b", "c")}
    server.routes["/wire.rss"] = {"body": rss("r2", "r1")}  # RSS puts the newest first
    assert [watcher.poll(s).stored for s in (news, wire)] == [1, 1]
    assert titles(tmp_path / "m.db") == ["a", "b", "c", "r1", "r2"]
    row = state(tmp_path / "m.db", news)
    assert (row["items"], row["polls"], row["failures"], row["last_error"]) == (3, 3, 0, "")
    assert row["etag"] and row["last_success"] == row["last_poll"]


def test_last_modified_is_sent_back_when_there_is_no_etag(server, make_watcher):
    stamp = "Mon, 05 Jan 2026 10:00:00 GMT"
    server.routes["/wire.rss"] = {"body": rss("r1"), "etag": False, "last_modified": stamp}
    watcher = make_watcher(server.url("/wire.rss"))
    assert watcher.poll(server.url("/wire.rss")).stored == 1
    assert watcher.poll(server.url("/wire.rss")).status == "not modified"
    assert server.requests[-1][1]["If-Modified-Since"] == stamp and "If-None-Match" not in server.requests[-1][1]


def test_an_http_error_backs_off_alone_while_the_other_source_goes_on(server, make_watcher, tmp_path):
    server.routes["/down.rss"] = {"status": 500, "body": b"oops", "etag": False}
    server.routes["/news.jsonl"] = {"body": jsonl("a")}
    down, news = server.url("/down.rss"), server.url("/news.jsonl")
    now = [1_000_000.0]
    watcher = make_watcher(down, news, every=60.0, clock=lambda: now[0])
    assert watcher.run(once=True) == {"polls": 2, "failed": 1, "stored": 1}
    waits = []
    for _ in range(3):
        result = watcher.poll(down)
        assert result.status == "failed" and "HTTP 500" in result.error
        waits.append(result.next_poll - now[0])
    # every x 2^failures, jittered by at most 20%: failures 2, 3, 4 -> about 240, 480, 960 s
    assert all(0.8 * 60 * 2 ** n <= w <= 1.2 * 60 * 2 ** n for w, n in zip(waits, (2, 3, 4), strict=True))
    row = state(tmp_path / "m.db", down)
    assert row["failures"] == 4 and "HTTP 500" in row["last_error"] and row["items"] == 0
    assert state(tmp_path / "m.db", news)["items"] == 1
    server.routes["/down.rss"] = {"body": rss("back")}
    assert watcher.poll(down).stored == 1
    assert state(tmp_path / "m.db", down)["failures"] == 0


def test_a_failing_source_is_not_polled_before_its_backoff_ends(server, make_watcher):
    server.routes["/down.rss"] = {"status": 500, "body": b"", "etag": False}
    server.routes["/news.jsonl"] = {"body": jsonl("a")}
    down, news = server.url("/down.rss"), server.url("/news.jsonl")
    watcher = make_watcher(down, news, every=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()
    time.sleep(1.0)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    polls = [path for path, _ in server.requests]
    # the healthy source is polled every 50 ms; the failing one after 0.1, 0.2, 0.4 s ... (about 4 times in 1 s)
    assert polls.count("/news.jsonl") > 2 * polls.count("/down.rss") >= 4


@pytest.mark.parametrize(("route", "error"), [
    ({"body": jsonl("x"), "delay": 3.0}, "no complete answer within 0.5 s"),
    ({"body": jsonl(*(f"t{i}" for i in range(200)))}, "over the 1,000-byte limit (--max-bytes); refused"),
    ({"body": b"<rss><channel><item><title>cut off"}, "is not well-formed XML"),
    ({"location": "ftp://127.0.0.1/news.jsonl"}, "only http and https URLs are fetched, not ftp"),
    ({"location": "/loop"}, "more than 5 redirects"),
])
def test_a_bad_answer_is_one_clear_error_and_stores_nothing(server, make_watcher, tmp_path, route, error):
    server.routes["/bad.rss"] = route
    server.routes["/loop"] = {"location": "/bad.rss"}
    server.routes["/news.jsonl"] = {"body": jsonl("fine")}
    bad, news = server.url("/bad.rss"), server.url("/news.jsonl")
    watcher = make_watcher(bad, news, timeout=0.5, max_bytes=1000)
    started = time.monotonic()
    assert watcher.run(once=True) == {"polls": 2, "failed": 1, "stored": 1}
    assert time.monotonic() - started < 2.5  # the slow server is not waited for
    row = state(tmp_path / "m.db", bad)
    assert error in row["last_error"] and "\n" not in row["last_error"] and row["items"] == 0
    assert row["etag"] is None  # a body that failed is fetched again next time
    assert titles(tmp_path / "m.db") == ["fine"]


def test_a_redirect_to_another_http_path_is_followed(server, make_watcher, tmp_path):
    server.routes["/old.rss"] = {"location": "/new/feed.rss"}
    server.routes["/new/feed.rss"] = {"body": rss("moved")}
    watcher = make_watcher(server.url("/old.rss"))
    assert watcher.poll(server.url("/old.rss")).stored == 1
    assert [p for p, _ in server.requests] == ["/old.rss", "/new/feed.rss"]
    assert titles(tmp_path / "m.db") == ["moved"]


def test_local_files_are_watched_too(make_watcher, tmp_path):
    feed = tmp_path / "feeds" / "local.jsonl"
    feed.parent.mkdir()
    feed.write_bytes(jsonl("one"))
    watcher = make_watcher(str(feed.parent))
    assert watcher.poll(str(feed.parent)).stored == 1
    assert watcher.poll(str(feed.parent)).status == "not modified"
    with feed.open("ab") as handle:
        handle.write(jsonl("two"))
    assert watcher.poll(str(feed.parent)).stored == 1
    assert titles(tmp_path / "m.db") == ["one", "two"]


def test_a_bad_file_in_a_watched_folder_fails_alone(make_watcher, tmp_path):
    folder = tmp_path / "feeds"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(jsonl("one"))
    (folder / "b-broken.xml").write_bytes(b"<rss><channel><item><title>cut off")
    (folder / "c-empty.rss").write_bytes(b"")
    (folder / "d.rss").write_bytes(rss("two"))
    watcher = make_watcher(str(folder))
    logged = []
    watcher.log = logged.append
    result = watcher.poll(str(folder))
    assert (result.status, result.stored) == ("read", 2)
    assert titles(tmp_path / "m.db") == ["one", "two"]
    skipped = [line for line in logged if "skipped" in line]
    assert len(skipped) == 2 and "b-broken.xml is not well-formed XML" in skipped[0] and "c-empty.rss" in skipped[1]
    assert state(tmp_path / "m.db", str(folder))["failures"] == 0
    assert watcher.poll(str(folder)).status == "not modified"  # not read (and failed) again until it changes


def test_an_unreadable_url_body_is_named_by_its_url(server, make_watcher, tmp_path):
    server.routes["/bad.rss"] = {"body": b"<rss><channel><item><title>cut off"}
    bad = server.url("/bad.rss")
    result = make_watcher(bad).poll(bad)
    assert result.status == "failed" and result.error.startswith(f"{bad} is not well-formed XML")
    assert ".watch" not in result.error  # not the cache file the body was saved to


def test_items_stored_before_a_source_fails_are_counted(tmp_path, keyword_scorer):
    class FailsSecond:
        def __init__(self):
            self.scorer, self.calls = keyword_scorer(WATCHLIST), 0

        def score(self, items):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("scorer crashed")
            return self.scorer.score(items)

    feed = tmp_path / "news.jsonl"
    feed.write_bytes(jsonl("one", "two"))
    with MonitorStore.open(tmp_path / "m.db") as store, \
            Watcher(WatchConfig((str(feed),)), MonitorConfig(feeds=(str(feed),), batch_size=1), store, WATCHLIST,
                    scorer=FailsSecond(), log=lambda line: None) as watcher:
        assert watcher.run(once=True) == {"polls": 1, "failed": 1, "stored": 1}
    assert state(tmp_path / "m.db", str(feed))["items"] == 1 and titles(tmp_path / "m.db") == ["one"]


def test_sources_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="only http and https URLs are watched, not ftp"):
        WatchConfig(("ftp://127.0.0.1/feed.rss",))
    with pytest.raises(ValueError, match="does not exist"):
        WatchConfig((str(tmp_path / "missing.jsonl"),))
    with pytest.raises(ValueError, match="every must be > 0"):
        WatchConfig(("http://127.0.0.1/x",), every=0)


def seed(db, url, body_titles, keyword_scorer, server, path):
    """Store the feed's items with the keyword scorer, so a later CLI run has nothing new to score
    (and loads no model); the route then drops its ETag so the CLI reads the body again."""
    server.routes[path] = {"body": jsonl(*body_titles)}
    with MonitorStore.open(db) as store, Watcher(WatchConfig((url,)), MonitorConfig(feeds=(url,)), store, WATCHLIST,
                                                 scorer=keyword_scorer(WATCHLIST), log=lambda line: None) as w:
        assert w.poll(url).stored == len(body_titles)
        store.db.execute("UPDATE watch_sources SET etag = NULL")
    server.routes[path]["etag"] = False


def test_once_through_the_cli_and_status(server, tmp_path, keyword_scorer):
    db = tmp_path / "m.db"
    news, down = server.url("/news.jsonl"), server.url("/down.rss")
    seed(db, news, ["a", "b"], keyword_scorer, server, "/news.jsonl")
    server.routes["/down.rss"] = {"status": 503, "body": b"", "etag": False}
    result = runner.invoke(app, ["monitor", "watch", news, down, "--db", str(db), "--once"])
    assert result.exit_code == 1, result.output  # --once says a source failed
    assert f"{news}: 0 new item(s) stored" in result.output
    assert f"{down}: {down}: HTTP 503 Service Unavailable (failure 1 in a row" in result.output
    assert "2 poll(s), 1 failed, 0 new item(s) stored" in result.output
    assert "Traceback" not in result.output
    status = runner.invoke(app, ["monitor", "status", "--db", str(db)])
    assert status.exit_code == 0
    assert f"source {news}: last poll 20" in status.output and "2 item(s) stored, ok" in status.output
    assert f"source {down}: last poll" in status.output and "failing 1x: " in status.output
    info = json.loads(runner.invoke(app, ["monitor", "status", "--db", str(db), "--json"]).output)
    assert {s["source"]: (s["items"], s["failures"]) for s in info["sources"]} == {news: (2, 0), down: (0, 1)}
    assert titles(db) == ["a", "b"]
    bad = runner.invoke(app, ["monitor", "watch", "file:///etc/passwd", "--db", str(db), "--once"])
    assert bad.exit_code == 1 and bad.output.startswith("error: ") and "only http and https" in bad.output


def test_sigterm_finishes_the_poll_in_hand_and_exits_0(server, tmp_path, keyword_scorer):
    db = tmp_path / "m.db"
    news = server.url("/news.jsonl")
    seed(db, news, ["a"], keyword_scorer, server, "/news.jsonl")
    server.routes["/news.jsonl"]["delay"] = 1.5
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "agent", "monitor", "watch", news, "--db", str(db), "--every", "1h"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert server.started.wait(60), proc.stderr.read() if proc.poll() is not None else "no request"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "SIGTERM: stopping after the poll in hand" in err and "Traceback" not in err
    assert f"{news}: 0 new item(s) stored" in err  # the slow answer in hand was read to the end
    row = state(db, news)
    assert row["polls"] == 2 and row["failures"] == 0


@pytest.mark.slow
def test_once_through_the_cli_scores_with_the_shipped_models(server, tmp_path):
    server.routes["/wire.rss"] = {"body": rss("Northwind Bank shares plunge after fraud probe", "Northwind Bank opens branch")}
    db = tmp_path / "m.db"
    result = runner.invoke(app, ["monitor", "watch", server.url("/wire.rss"), "--db", str(db), "--once", "--no-body"])
    assert result.exit_code == 0, result.output
    assert "2 new item(s) stored" in result.output
    with MonitorStore.open(db, create=False) as store:
        labels = dict(store.db.execute("SELECT i.title, s.label FROM items i JOIN scores s ON s.item_id = i.id").fetchall())
    assert labels["Northwind Bank shares plunge after fraud probe"] == "negative"
