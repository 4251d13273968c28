"""Learned topics in the monitor: stored per item, summed per topic, alerted on, plotted, listed."""

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.monitor.alerts import AlertRule, list_alerts, load_rules
from agent.monitor.engine import MonitorConfig, run_monitor
from agent.monitor.feeds import FeedItem
from agent.monitor.report import write_report
from agent.monitor.sample import SURGE_COMPANY, sample_watchlist, write_sample
from agent.monitor.scoring import ItemScore, Sentiment, Topic
from agent.monitor.store import MonitorStore
from agent.monitor.topics import topic_summary
from agent.monitor.watchlist import Watchlist

DATA = Path(__file__).parent / "data"
runner = CliRunner()
NEGATIVE, NEUTRAL = Sentiment.from_probs({"negative": 1.0}), Sentiment.from_probs({"neutral": 1.0})


def item(n, title, published, body=""):
    return FeedItem(feed="f.jsonl", position=n, id=f"i{n}", published=published, source="Wire", title=title, body=body)


def scored(n, title, published, sentiment, topic):
    return item(n, title, published), ItemScore(f"i{n}", sentiment, sentiment, topic=topic)


@pytest.fixture()
def sample_db(tmp_path, topic_scorer):
    """The sample feed scored with learned topics (Financials for the surge company, Markets else)."""
    sample = write_sample(tmp_path / "sample")
    watchlist = Watchlist.from_dict(sample_watchlist())
    db = tmp_path / "m.db"
    with MonitorStore.open(db) as store:
        run_monitor(MonitorConfig(feeds=(sample["feed"],)), store, watchlist, scorer=topic_scorer(watchlist))
    return db


def test_each_item_stores_its_topic_and_probability_or_null_without_one(tmp_path):
    with MonitorStore.open(tmp_path / "m.db") as store:
        store.write_batch([scored(0, "Acme buys Contoso", "2026-03-01T09:00:00Z", NEUTRAL, Topic("M&A | Investments", 0.91)),
                           scored(1, "Markets drift", "2026-03-01T10:00:00Z", NEUTRAL, None)], [], {})
        rows = store.rows("SELECT item_id, topic, topic_probability FROM scores ORDER BY item_id")
        assert rows == [{"item_id": "f.jsonl#i0", "topic": "M&A | Investments", "topic_probability": 0.91},
                        {"item_id": "f.jsonl#i1", "topic": None, "topic_probability": None}]
        assert store.rows("SELECT kind, key FROM labels WHERE kind = 'learned_topic'") == [
            {"kind": "learned_topic", "key": "M&A | Investments"}]


def test_a_topic_survives_the_round_trip_the_ray_workers_make():
    score = ItemScore("a", NEUTRAL, NEUTRAL, topic=Topic("Earnings", 0.5))
    assert ItemScore.from_dict(json.loads(json.dumps(score.to_dict()))) == score
    assert ItemScore.from_dict(ItemScore("b", NEUTRAL, NEUTRAL).to_dict()).topic is None


def test_a_schema_3_database_gets_topic_columns_with_its_items_left_without_a_topic(tmp_path):
    db = tmp_path / "v3.db"
    connection = sqlite3.connect(db)
    connection.executescript((DATA / "monitor-v3.sql").read_text())
    before = {t: connection.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("items", "scores", "entities", "alerts")}
    connection.close()
    with MonitorStore.open(db) as store:
        assert store.get_meta("schema_version") == "4"
        assert {t: store.counts()[t] for t in before} == before
        assert store.rows("SELECT COUNT(*) AS n FROM scores WHERE topic IS NOT NULL") == [{"n": 0}]
        summary = topic_summary(store)
        assert (summary.items, summary.without_topic, summary.topics) == (before["scores"], before["scores"], ())
        # New items store their topic beside the old ones, and the alert rules can count them.
        store.write_batch([scored(99, "Acme agrees to buy Contoso", "2026-01-03T09:00:00Z", NEUTRAL,
                                  Topic("M&A | Investments", 0.8))], [], {})
        assert store.rows("SELECT key FROM labels WHERE kind = 'learned_topic'") == [{"key": "M&A | Investments"}]
    with MonitorStore.open(db) as store:  # opening it again migrates nothing twice
        assert store.get_meta("schema_version") == "4"


def test_per_topic_volume_counts_stories_once_and_averages_sentiment(tmp_path):
    copies = ["Acme to cut 2,000 jobs as profits collapse", "UPDATE 1-Acme to cut 2,000 jobs as profits collapse"]
    with MonitorStore.open(tmp_path / "m.db") as store:
        store.write_batch([
            scored(0, copies[0], "2026-03-01T09:00:00Z", NEGATIVE, Topic("Company | Product News", 0.9)),
            scored(1, copies[1], "2026-03-01T09:30:00Z", NEGATIVE, Topic("Company | Product News", 0.7)),
            scored(2, "Fed holds rates steady", "2026-03-01T12:00:00Z", NEUTRAL, Topic("Fed | Central Banks", 0.6)),
            scored(3, "Oil rises on supply worries", "2026-03-03T12:00:00Z", NEUTRAL, Topic("Energy | Oil", 0.8)),
            scored(4, "Markets drift", "2026-03-03T13:00:00Z", NEUTRAL, None),
        ], [], {})
        summary = topic_summary(store)
        by_topic = {t.topic: t for t in summary.topics}
        news = by_topic["Company | Product News"]
        assert (news.items, news.stories, news.negative_items, news.mean_sentiment, news.mean_probability) == (
            2, 1, 2, -1.0, 0.8)
        assert [t.topic for t in summary.topics][0] == "Company | Product News"  # most items first
        assert (summary.items, summary.without_topic) == (5, 1)
        # The last day before the newest item: the first day's topics drop out.
        recent = topic_summary(store, window="1d")
        assert recent.since == "2026-03-02T13:00:00Z" and [t.topic for t in recent.topics] == ["Energy | Oil"]
        assert [t.topic for t in topic_summary(store, since="2026-03-01T11:00:00Z").topics] == [
            "Energy | Oil", "Fed | Central Banks"]
        with pytest.raises(ValueError, match="not both"):
            topic_summary(store, since="1d", window="1d")


def test_a_rule_per_learned_topic_alerts_on_the_topic_that_surges(tmp_path, topic_scorer):
    sample = write_sample(tmp_path / "sample")
    watchlist = Watchlist.from_dict(sample_watchlist())
    rules = (AlertRule(name="topics", kinds=("learned_topic",)),
             AlertRule(name="markets-only", kinds=("learned_topic",), learned_topics=("Markets",)))
    with MonitorStore.open(tmp_path / "m.db") as store:
        run_monitor(MonitorConfig(feeds=(sample["feed"],), rules=rules), store, watchlist, scorer=topic_scorer(watchlist))
        alerts = list_alerts(store)
        assert [(a.rule, a.kind, a.key, a.unit) for a in alerts] == [("topics", "learned_topic", "Financials", "stories")]
        titles = {r["id"]: r["title"] for r in store.rows("SELECT id, title FROM items")}
        assert len(alerts[0].evidence) >= 5 and all(SURGE_COMPANY in titles[i] for i in alerts[0].evidence)


def test_the_default_rule_keeps_to_companies_and_keyword_topics(sample_db):
    with MonitorStore.open(sample_db) as store:
        assert {a.kind for a in list_alerts(store)} <= {"company", "topic"}


@pytest.mark.parametrize("rule, message", [
    ({"name": "x", "kinds": ["sector"]}, "kinds must be some of company, topic, learned_topic"),
    ({"name": "x", "learned_topics": ["Earnings"]}, "add 'learned_topic' to its kinds"),
    ({"name": "x", "kinds": ["learned_topic"], "learned_topics": [""]}, "learned_topics must be topic labels"),
])
def test_bad_learned_topic_rules_say_what_is_wrong(tmp_path, rule, message):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(rule))
    with pytest.raises(ValueError, match=message):
        load_rules(str(path))


def test_a_rules_file_names_learned_topics_in_yaml(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text('name: deals\nkinds: [learned_topic]\nlearned_topics: "M&A | Investments"\n')
    (rule,) = load_rules(str(path))
    assert (rule.kinds, rule.learned_topics) == (("learned_topic",), ("M&A | Investments",))
    assert AlertRule.from_dict(rule.to_dict()) == rule


def test_the_report_plots_sentiment_per_learned_topic(sample_db, tmp_path):
    with MonitorStore.open(sample_db) as store:
        written = write_report(store, tmp_path / "report")
    assert written["topics"] == ["Markets", "Financials"]
    assert Path(written["topics_plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_report_writes_no_topic_plot_without_topics(tmp_path, keyword_scorer):
    sample = write_sample(tmp_path / "sample")
    watchlist = Watchlist.from_dict(sample_watchlist())
    out = tmp_path / "report"
    out.mkdir()
    (out / "topics.png").write_bytes(b"old")
    with MonitorStore.open(tmp_path / "m.db") as store:
        run_monitor(MonitorConfig(feeds=(sample["feed"],)), store, watchlist, scorer=keyword_scorer(watchlist))
        written = write_report(store, out)
    assert (written["topics_plot"], written["topics"]) == (None, []) and not (out / "topics.png").exists()


def test_cli_topics_lists_volume_and_sentiment_per_topic(sample_db):
    result = runner.invoke(app, ["monitor", "topics", "--db", str(sample_db)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "168 items (all stored items), 0 without a topic"
    assert lines[2].startswith("Markets") and lines[3].startswith("Financials")
    data = json.loads(runner.invoke(app, ["monitor", "topics", "--db", str(sample_db), "--window", "6h", "--json"]).output)
    assert data["since"] and sum(t["items"] for t in data["topics"]) == data["items"] < 168
    financials = next(t for t in data["topics"] if t["topic"] == "Financials")
    assert financials["stories"] <= financials["items"] and financials["mean_sentiment"] < 0


def test_cli_alerts_and_report_show_the_topic_of_each_story(sample_db, tmp_path):
    db = sample_db
    shown = runner.invoke(app, ["monitor", "alerts", "--db", str(db)])
    assert shown.exit_code == 0 and "[Financials]" in shown.output
    data = json.loads(runner.invoke(app, ["monitor", "alerts", "--db", str(db), "--json"]).output)
    assert {s["topic"] for a in data for s in a["stories"]} == {"Financials"}
    result = runner.invoke(app, ["monitor", "report", "--db", str(db), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0 and "topics.png (2 topics)" in result.output
    csv_text = (tmp_path / "r" / "alerts.csv").read_text()
    assert "evidence_topics" in csv_text.splitlines()[0] and "Financials; Financials; Financials" in csv_text


@pytest.mark.parametrize("options, message", [
    (["--window", "soon"], "--window: durations look like 30m, 6h, 7d or 2w"),
    (["--since", "yesterday"], "--since takes a duration"),
    (["--since", "1d", "--window", "1d"], "give --since or --window, not both"),
])
def test_cli_topics_bad_input_is_one_line(sample_db, options, message):
    result = runner.invoke(app, ["monitor", "topics", "--db", str(sample_db), *options])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and message in result.output, result.output


def test_cli_topics_on_a_missing_database_is_one_line(tmp_path):
    result = runner.invoke(app, ["monitor", "topics", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 1 and "does not exist" in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "none.db").exists()


def test_cli_refuses_a_topic_model_folder_that_holds_no_model(tmp_path):
    feed = tmp_path / "f.jsonl"
    feed.write_text('{"title": "x"}\n')
    result = runner.invoke(app, ["monitor", "score", str(feed), "--db", str(tmp_path / "m.db"),
                                 "--topic-model", str(tmp_path)])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "--topic-model" in result.output and "config.json missing" in result.output
    assert not (tmp_path / "m.db").exists()


def test_cli_kind_takes_learned_topic_and_refuses_other_kinds_in_one_line(tmp_path):
    feed = tmp_path / "f.jsonl"
    feed.write_text('{"title": "x"}\n')
    result = runner.invoke(app, ["monitor", "score", str(feed), "--db", str(tmp_path / "m.db"), "--kind", "sector"])
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "kinds must be some of company, topic, learned_topic" in result.output and not (tmp_path / "m.db").exists()
