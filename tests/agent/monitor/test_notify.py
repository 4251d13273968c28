import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from agent.monitor.alerts import Alert
from agent.monitor.notify import WebhookConfig, notify, safe_url
from agent.monitor.store import MonitorStore

ALERT = Alert(1, "negative-surge", "company", "Acme", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z",
              "2026-01-01T01:00:00Z", 10, 8, 0.8, 0.2, 4.5, 4.5, ("a", "b"))


@pytest.fixture()
def receiver():
    """A webhook receiver on 127.0.0.1 that answers the scripted status codes in turn."""
    state = {"codes": [], "bodies": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            state["bodies"].append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            code = state["codes"].pop(0) if state["codes"] else 200
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook?token=secret", state
    server.shutdown()
    server.server_close()


def stored(tmp_path):
    store = MonitorStore.open(tmp_path / "m.db")
    with store.transaction() as db:
        db.execute("INSERT INTO alerts (id, rule, kind, key, start, \"end\", raised_at, window_count, negative_count, "
                   "share, baseline, statistic, peak, evidence) VALUES (1,'r','company','Acme','s','e','x',1,1,1,1,1,1,'[]')")
    return store


def test_webhook_retries_server_errors_then_delivers(tmp_path, receiver):
    url, state = receiver
    state["codes"] = [500, 503]
    store = stored(tmp_path)
    counts = notify(store, [ALERT], webhook=WebhookConfig(url, attempts=3, backoff=0.0))
    assert counts == {"sent": 1, "failed": 0}
    assert len(state["bodies"]) == 3 and state["bodies"][0]["key"] == "Acme" and state["bodies"][0]["evidence"] == ["a", "b"]
    row = store.rows("SELECT status, attempts, target FROM notifications")[0]
    assert row == {"status": "sent", "attempts": 3, "target": safe_url(url)}
    assert "secret" not in row["target"]


def test_undeliverable_alerts_are_recorded_not_fatal(tmp_path, receiver):
    url, state = receiver
    state["codes"] = [400]
    store = stored(tmp_path)
    lines = []
    assert notify(store, [ALERT], webhook=WebhookConfig(url, backoff=0.0), stdout=lines.append) == {"sent": 0, "failed": 1}
    assert len(state["bodies"]) == 1  # a 4xx answer is not retried
    assert lines == [ALERT.describe()]
    closed = WebhookConfig("http://127.0.0.1:9/hook", attempts=2, backoff=0.0, timeout=2.0)
    assert notify(store, [ALERT], webhook=closed) == {"sent": 0, "failed": 1}
    rows = store.rows("SELECT status, attempts, error FROM notifications ORDER BY id")
    assert [(r["status"], r["attempts"]) for r in rows] == [("failed", 1), ("failed", 2)]
    assert rows[0]["error"] == "HTTP 400" and rows[1]["error"]


def test_webhook_urls_are_checked():
    with pytest.raises(ValueError, match="http:// or https://"):
        WebhookConfig("ftp://example.com/x")


def test_a_run_posts_each_new_alert_to_the_webhook(tmp_path, receiver, keyword_scorer):
    from agent.monitor.engine import MonitorConfig, run_monitor
    from agent.monitor.sample import SURGE_COMPANY, sample_watchlist, write_sample
    from agent.monitor.watchlist import Watchlist

    url, state = receiver
    sample = write_sample(tmp_path / "sample")
    watchlist = Watchlist.from_dict(sample_watchlist())
    lines = []
    config = MonitorConfig(feeds=(sample["feed"],), webhook=WebhookConfig(url, backoff=0.0), stdout_alerts=True)
    with MonitorStore.open(tmp_path / "m.db") as store:
        summary = run_monitor(config, store, watchlist, scorer=keyword_scorer(watchlist), echo=lines.append)
    assert summary["webhook_sent"] == summary["alerts"] == len(state["bodies"]) == len(lines) >= 1
    assert SURGE_COMPANY in [b["key"] for b in state["bodies"]]
    assert all(b["type"] == "qagent.monitor.alert" and b["text"].startswith("ALERT ") for b in state["bodies"])
