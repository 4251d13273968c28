import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.monitor import ray_engine
from agent.monitor.engine import MonitorConfig, run_monitor
from agent.monitor.sample import SURGE_COMPANY, sample_watchlist, write_sample
from agent.monitor.store import MonitorStore
from agent.monitor.watchlist import Watchlist

runner = CliRunner()
REPO = Path(__file__).resolve().parents[3]


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


def test_a_malformed_or_empty_xml_file_fails_alone(scored_db, tmp_path):
    db, sample = scored_db
    (tmp_path / "sample" / "a-broken.xml").write_text("<rss><channel><item><title>cut off")
    (tmp_path / "sample" / "b-empty.rss").write_text("")
    result = runner.invoke(app, ["monitor", "score", str(tmp_path / "sample"), "--db", str(db), "--json"])
    assert result.exit_code == 1, result.output
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and all(e.startswith("error: ") and "the other feeds were read" in e for e in errors)
    assert "a-broken.xml is not well-formed XML" in errors[0] and "b-empty.rss is empty: no RSS or Atom document" in errors[1]
    summary = json.loads(result.stdout)  # the feeds after the bad ones were read, and the run finished
    assert [Path(f["feed"]).name for f in summary["failed_feeds"]] == ["a-broken.xml", "b-empty.rss"]
    assert summary["feeds"] == 3 and "Traceback" not in result.output
    with MonitorStore.open(db) as store:
        assert store.rows("SELECT status FROM runs ORDER BY id DESC LIMIT 1")[0]["status"] == "finished"
    text = runner.invoke(app, ["monitor", "score", str(tmp_path / "sample"), "--db", str(db)])
    assert "from 3 feed(s) (2 not readable)" in text.stdout and text.exit_code == 1
    alone = runner.invoke(app, ["monitor", "score", str(tmp_path / "sample" / "a-broken.xml"), "--db", str(db), "--json"])
    one_line_error(alone, "a-broken.xml is not well-formed XML")  # nothing could be read: the run failed


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


def stored_rules(db):
    with MonitorStore.open(db) as store:
        return [(r["name"], r["threshold"]) for r in json.loads(store.get_meta("rules"))]


def test_a_run_without_rule_options_keeps_the_databases_rules(scored_db, tmp_path):
    db, sample = scored_db
    score = ["monitor", "score", sample["feed"], "--db", str(db)]
    assert runner.invoke(app, [*score, "--threshold", "2.5"]).exit_code == 0
    assert stored_rules(db) == [("negative-surge", 2.5)]
    assert runner.invoke(app, score).exit_code == 0  # a scheduled run: nothing said about rules
    assert stored_rules(db) == [("negative-surge", 2.5)]
    rules = tmp_path / "rules.json"
    rules.write_text('{"name": "strict", "threshold": 4}')
    assert runner.invoke(app, [*score, "--rules", str(rules)]).exit_code == 0
    assert runner.invoke(app, score).exit_code == 0
    assert stored_rules(db) == [("strict", 4.0)]


@pytest.mark.parametrize("topic, hint", [("earning", "did you mean 'Earnings'?"),
                                         ("Weather", "the labels are: Earnings, M&A | Investments")])
def test_a_mistyped_learned_topic_is_refused_in_one_line(scored_db, tmp_path, topic, hint):
    db, sample = scored_db
    model = tmp_path / "topics"  # a topic checkpoint's files as far as the check reads them
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "labels.json").write_text('["Earnings", "M&A | Investments"]')
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"name": "deals", "kinds": ["learned_topic"], "learned_topics": [topic]}))
    for command in ("score", "watch"):
        result = runner.invoke(app, ["monitor", command, sample["feed"], "--db", str(db), "--rules", str(rules),
                                     "--topic-model", str(model), *(["--once"] if command == "watch" else [])])
        one_line_error(result, f"rule 'deals': {topic!r} is not a label of the topic model; {hint}")


def test_report_company_is_matched_without_regard_to_case(scored_db, tmp_path):
    db, _ = scored_db
    result = runner.invoke(app, ["monitor", "report", "--db", str(db), "--out", str(tmp_path / "r"), "--json",
                                 "--company", "northwind BANK", "--company", "Nobody Inc"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["companies"] == ["Northwind Bank", "Nobody Inc"]


def test_an_out_folder_that_is_a_file_is_one_line(scored_db, tmp_path):
    db, _ = scored_db
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    for out in (taken, taken / "report"):
        one_line_error(runner.invoke(app, ["monitor", "report", "--db", str(db), "--out", str(out)]),
                       f"{taken} is a file, not a folder; give a folder")
        one_line_error(runner.invoke(app, ["monitor", "sample", "--out", str(out)]), f"{taken} is a file, not a folder")
    assert taken.read_text() == "keep me"


def test_topics_of_an_empty_stretch_say_there_are_no_items_then(scored_db):
    db, _ = scored_db
    result = runner.invoke(app, ["monitor", "topics", "--db", str(db), "--since", "2030-01-01"])
    assert result.exit_code == 0, result.output
    assert "no items stored from 2030-01-01T00:00:00Z on: give an earlier --since" in result.output
    assert "no learned topics" not in result.output


@pytest.mark.parametrize("command", ["score", "watch"])
def test_negative_threads_are_refused_as_the_help_says(scored_db, command):
    db, sample = scored_db
    result = runner.invoke(app, ["monitor", command, sample["feed"], "--db", str(db), "--threads", "-3"])
    one_line_error(result, "--threads must be 0 (one thread per core) or a number of threads, got -3")


def test_status_into_a_pipe_closed_early_ends_quietly(scored_db):
    db, _ = scored_db
    with MonitorStore.open(db) as store, store.transaction() as con:  # far more status lines than a pipe buffers
        con.executemany('INSERT INTO cursors VALUES (?, ?, ?, ?, ?, ?)',
                        [(f"/feeds/{n:05d}-{'x' * 80}.jsonl", "jsonl", 0, 0, "", "2026-01-01T00:00:00Z") for n in range(3000)])
    with subprocess.Popen([sys.executable, "-m", "agent", "monitor", "status", "--db", str(db)], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        first = proc.stdout.readline()  # as `head -1` does: one line, then the pipe is closed
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(60) == 0, err
    assert first.startswith(b"items=") and err == ""


def test_truncated_alert_evidence_says_how_much_more_there_is(scored_db, tmp_path):
    db, _ = scored_db
    (alert,) = [a for a in json.loads(runner.invoke(app, ["monitor", "alerts", "--db", str(db), "--json"]).stdout)
                if a["key"] == SURGE_COMPANY]
    assert len(alert["stories"]) == 8  # more than the table lists
    table = runner.invoke(app, ["monitor", "alerts", "--db", str(db), "--company", SURGE_COMPANY]).output
    assert "… and 3 more stories (--json lists them all)" in table
    assert runner.invoke(app, ["monitor", "report", "--db", str(db), "--out", str(tmp_path / "r")]).exit_code == 0
    with (tmp_path / "r" / "alerts.csv").open(newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["key"] == SURGE_COMPANY)
    assert len(row["evidence_titles"].split(" | ")) == 3
    assert int(row["evidence_titles_omitted"]) == int(row["evidence_count"]) - 3 > 0
