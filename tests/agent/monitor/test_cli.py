import json

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.monitor import ray_engine
from agent.monitor.engine import MonitorConfig, run_monitor
from agent.monitor.sample import SURGE_COMPANY, sample_watchlist, write_sample
from agent.monitor.store import MonitorStore
from agent.monitor.watchlist import Watchlist

runner = CliRunner()


@pytest.fixture()
def scored_db(tmp_path, keyword_scorer):
    """A database holding the sample feed, scored by the keyword scorer (no model needed)."""
    sample = write_sample(tmp_path / "sample")
    watchlist = Watchlist.from_dict(sample_watchlist())
    db = tmp_path / "m.db"
    with MonitorStore.open(db) as store:
        run_monitor(MonitorConfig(feeds=(sample["feed"],)), store, watchlist, scorer=keyword_scorer(watchlist))
    return db, sample


def one_line_error(result, text):
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: ") and text in result.output


def test_missing_feed_is_one_line_and_creates_no_database(tmp_path):
    result = runner.invoke(app, ["monitor", "score", str(tmp_path / "nope.jsonl"), "--db", str(tmp_path / "m.db")])
    one_line_error(result, "does not exist")
    assert not (tmp_path / "m.db").exists()


def test_unreadable_database_and_bad_watchlist_are_one_line(tmp_path):
    feed = tmp_path / "f.jsonl"
    feed.write_text('{"title": "x"}\n')
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 200)
    before = junk.read_bytes()
    one_line_error(runner.invoke(app, ["monitor", "score", str(feed), "--db", str(junk)]), "not a monitor database")
    assert junk.read_bytes() == before
    bad = tmp_path / "watch.json"
    bad.write_text('{"companies": [{"ticker": "X"}]}')
    one_line_error(runner.invoke(app, ["monitor", "score", str(feed), "--db", str(tmp_path / "m.db"), "--watchlist", str(bad)]),
                   "company 1 needs a 'name'")
    one_line_error(runner.invoke(app, ["monitor", "alerts", "--db", str(tmp_path / "none.db")]), "does not exist")


def test_an_empty_file_is_not_taken_for_a_database(tmp_path):
    empty = tmp_path / "empty.db"
    empty.touch()
    for command in (["status"], ["alerts"], ["report", "--out", str(tmp_path / "r")]):
        one_line_error(runner.invoke(app, ["monitor", *command, "--db", str(empty)]), "is an empty file, not a qagent monitor database")
    feed = tmp_path / "f.jsonl"
    feed.write_text('{"title": "x"}\n')
    one_line_error(runner.invoke(app, ["monitor", "score", str(feed), "--db", str(empty)]), "is an empty file")
    assert empty.read_bytes() == b""


def test_an_overlong_since_is_a_one_line_usage_error(scored_db):
    db, _ = scored_db
    for since in ("99999999d", "9" * 400 + "w"):
        result = runner.invoke(app, ["monitor", "alerts", "--db", str(db), "--since", since])
        one_line_error(result, "--since")
        assert "unexpected" not in result.output


def test_malformed_xml_fails_in_one_line_and_keeps_what_was_stored(scored_db, tmp_path):
    db, sample = scored_db
    broken = tmp_path / "sample" / "zz-broken.xml"
    broken.write_text("<rss><channel><item><title>cut off")
    with MonitorStore.open(db) as store:
        before = store.counts()
    result = runner.invoke(app, ["monitor", "score", str(tmp_path / "sample"), "--db", str(db), "--json"])
    one_line_error(result, "zz-broken.xml is not well-formed XML")
    with MonitorStore.open(db) as store:
        after = store.counts()
        assert store.rows("SELECT status FROM runs ORDER BY id DESC LIMIT 1")[0]["status"] == "failed"
    assert {k: after[k] for k in ("items", "scores", "entities", "alerts")} == {k: before[k] for k in ("items", "scores", "entities", "alerts")}


def test_ray_engine_without_ray_says_how_to_install(tmp_path, monkeypatch):
    feed = tmp_path / "f.jsonl"
    feed.write_text('{"title": "x"}\n')
    monkeypatch.setattr(ray_engine, "ray_available", lambda: False)
    result = runner.invoke(app, ["monitor", "score", str(feed), "--db", str(tmp_path / "m.db"), "--engine", "ray"])
    one_line_error(result, "pip install 'qagent[ray]'")


def test_alerts_report_and_status_read_the_database(scored_db, tmp_path):
    db, _ = scored_db
    listed = runner.invoke(app, ["monitor", "alerts", "--db", str(db), "--json"])
    assert listed.exit_code == 0, listed.output
    alerts = json.loads(listed.stdout)
    assert [a["key"] for a in alerts if a["kind"] == "company"] == [SURGE_COMPANY]
    table = runner.invoke(app, ["monitor", "alerts", "--db", str(db), "--since", "2026-01-07T00:00:00"])
    assert SURGE_COMPANY in table.output
    future = runner.invoke(app, ["monitor", "alerts", "--db", str(db), "--since", "2030-01-01"])
    assert future.output.strip() == "no alerts"
    out = tmp_path / "report"
    report = runner.invoke(app, ["monitor", "report", "--db", str(db), "--out", str(out), "--json"])
    assert report.exit_code == 0, report.output
    written = json.loads(report.stdout)
    assert written["companies"] == ["Northwind Bank", "Contoso Group"]
    assert (out / "sentiment.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (out / "alerts.csv").read_text().splitlines()
    assert rows[0].startswith("id,rule,kind,key") and len(rows) == 1 + len(alerts)
    status = runner.invoke(app, ["monitor", "status", "--db", str(db), "--json"])
    info = json.loads(status.stdout)
    assert info["counts"]["items"] == 168 and info["counts"]["rejects"] == 2
    assert {r["reason"].split(" (")[0] for r in info["rejects"]} == {"invalid JSON", "unreadable published time 'last Tuesday'"}
    assert info["duplicates"] == {"same_feed": 0, "other_feed": 0}
    again = runner.invoke(app, ["monitor", "score", str(tmp_path / "sample" / "news.jsonl"), "--db", str(db), "--json"])
    assert again.exit_code == 0, again.output
    copy = tmp_path / "copy.jsonl"  # the same stories under another path: a feed of its own
    copy.write_bytes((tmp_path / "sample" / "news.jsonl").read_bytes())
    assert runner.invoke(app, ["monitor", "score", str(copy), "--db", str(db)]).exit_code == 0
    text = runner.invoke(app, ["monitor", "status", "--db", str(db)]).output
    assert "duplicates skipped: 84 (84 the same content as another feed's item)" in text


def test_sample_command_writes_a_feed_and_watchlist(tmp_path):
    result = runner.invoke(app, ["monitor", "sample", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0 and "168 items" in result.output
    assert json.loads((tmp_path / "s" / "watchlist.json").read_text())["companies"][0]["name"] == SURGE_COMPANY


def test_a_run_without_watchlist_keeps_the_databases_watchlist(scored_db):
    db, sample = scored_db
    result = runner.invoke(app, ["monitor", "score", sample["feed"], "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["read"] == 0  # everything was stored already: the cursor is at the end
    with MonitorStore.open(db) as store:
        assert [c["name"] for c in json.loads(store.get_meta("watchlist"))["companies"]] == [SURGE_COMPANY, "Contoso Group"]
