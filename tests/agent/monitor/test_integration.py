"""The monitor end to end with the shipped sentiment, entity and topic models (slow).

The topic model's tests skip, saying why, where ``agent/assets/models/news-topics`` is not installed;
the other tests then run without topics (and with them where it is).
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.monitor.engine import MonitorConfig, run_monitor
from agent.monitor.feeds import FeedItem, read_feed
from agent.monitor.sample import CONTROL_COMPANY, SURGE_COMPANY, sample_watchlist, write_sample
from agent.monitor.scoring import ModelScorer, ScoringConfig
from agent.monitor.store import MonitorStore
from agent.monitor.watchlist import Watchlist
from agent.shipped import NEWS_TOPICS_MODEL

pytestmark = pytest.mark.slow
TOPICS = NEWS_TOPICS_MODEL if (NEWS_TOPICS_MODEL / "config.json").is_file() else None
NO_TOPIC_MODEL = f"no topic model installed at {NEWS_TOPICS_MODEL} (it ships with the topic classifier)"
ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()
# Rows two engines must agree on: everything but wall-clock columns (ingested_at, raised_at, updated_at).
COMPARED = {
    "items": "id, content_hash, feed, position, published, event_time, source, title, body, url, evaluated",
    "scores": "*", "entities": "*", "rejects": "feed, position, reason, raw",
    "cursors": 'feed, format, "offset", position, fingerprint',
    "alerts": 'rule, kind, key, start, "end", window_count, negative_count, share, baseline, statistic, peak, evidence',
}


@pytest.fixture(scope="module")
def models(base_encoder):
    """The assistant's shipped sentiment classifier and entity tagger on the session's encoder, and
    the news topic model where it is installed, loaded once."""
    from agent.shipped import CHAT_SENTIMENT_MODEL as CHAT_SENTIMENT_DIR
    from agent.shipped import NER_MODEL
    from finetune.models.classifier import TextClassifier
    from finetune.models.loading import load_classifier, load_tagger

    topics = load_classifier(TOPICS, encoder=base_encoder) if TOPICS else None
    return (base_encoder, TextClassifier.load(CHAT_SENTIMENT_DIR, encoder=base_encoder),
            load_tagger(NER_MODEL, encoder=base_encoder), topics)


def model_scorer(models, watchlist):
    encoder, sentiment, tagger, topics = models
    return ModelScorer(encoder, sentiment, tagger, watchlist, ScoringConfig(), topics)


def table(db, name):
    with sqlite3.connect(db) as connection:
        return sorted(connection.execute(f"SELECT {COMPARED[name]} FROM {name}").fetchall())


def test_the_real_models_raise_one_alert_for_the_surge_and_none_for_the_control(tmp_path, models):
    sample = write_sample(tmp_path)
    watchlist = Watchlist.from_dict(sample_watchlist())
    with MonitorStore.open(tmp_path / "m.db") as store:
        summary = run_monitor(MonitorConfig(feeds=(sample["feed"],)), store, watchlist,
                              scorer=model_scorer(models, watchlist))
        labels = dict(store.db.execute("SELECT label, COUNT(*) FROM scores GROUP BY label").fetchall())
    assert (summary["read"], summary["scored"], summary["skipped"]) == (170, 168, 2)
    companies = [a for a in summary["raised"] if a["kind"] == "company"]
    assert [a["key"] for a in companies] == [SURGE_COMPANY]
    assert CONTROL_COMPANY not in {a["key"] for a in summary["raised"]}
    assert companies[0]["negative_count"] >= 5 and "2026-01-07T00" <= companies[0]["start"] <= "2026-01-07T03"
    assert labels["negative"] >= 60 and labels["neutral"] + labels.get("positive", 0) >= 80  # the feed's known mix


def test_a_killed_run_resumes_with_no_item_lost_or_duplicated(tmp_path):
    sample = write_sample(tmp_path / "sample")
    extra = tmp_path / "sample" / "more.jsonl"
    extra.write_text("".join(json.dumps({"title": f"Northwind Bank update number {n} on branch openings",
                                         "published": f"2026-01-0{1 + n % 4}T{n % 24:02d}:30:00Z"}) + "\n"
                             for n in range(150)))
    feeds = [sample["feed"], str(extra)]
    expected = {r.entry.key for f in feeds for r in read_feed(f) if isinstance(r.entry, FeedItem)}
    db = tmp_path / "m.db"
    command = [sys.executable, "-m", "agent.monitor", "score", *feeds, "--db", str(db),
               "--watchlist", sample["watchlist"], "--batch-size", "8", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    committed = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db) as connection:
                    committed = connection.execute("SELECT COUNT(*) FROM items").fetchone()[0]
            except sqlite3.OperationalError:
                committed = 0  # the schema is still being created
            if committed:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < committed < len(expected), "the run should be killed part way through"

    resumed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads(resumed.stdout)
    with sqlite3.connect(db) as connection:
        ids = [r[0] for r in connection.execute("SELECT id FROM items")]
        hashes = connection.execute("SELECT COUNT(DISTINCT content_hash) FROM items").fetchone()[0]
        scores = connection.execute("SELECT COUNT(*) FROM scores").fetchone()[0]
        topics = connection.execute("SELECT COUNT(*) FROM scores WHERE topic IS NOT NULL").fetchone()[0]
        rejects = connection.execute("SELECT COUNT(*) FROM rejects").fetchone()[0]
        statuses = [r[0] for r in connection.execute("SELECT status FROM runs ORDER BY id")]
    assert sorted(ids) == sorted(expected) and len(ids) == hashes == scores
    assert topics == (scores if TOPICS else 0)  # every item scored by the topic model, where there is one
    assert rejects == 2
    assert statuses == ["interrupted", "finished"]  # the killed run's row is closed by the next run
    first_run = len(expected) - summary["scored"]
    assert first_run >= committed and summary["duplicates"] == 0  # resumed from the cursor: nothing read twice


def test_cli_scores_a_feed_with_the_shipped_models(tmp_path):
    sample = write_sample(tmp_path)
    db = tmp_path / "m.db"
    result = runner.invoke(app, ["monitor", "score", sample["feed"], "--db", str(db), "--watchlist", sample["watchlist"],
                                 "--no-body", "--stdout-alerts"])
    assert result.exit_code == 0, result.output
    assert "read 170 records from 1 feed(s): 168 scored, 0 duplicate(s), 2 skipped as malformed" in result.output
    assert f"ALERT company '{SURGE_COMPANY}'" in result.output
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT COUNT(*) FROM scores WHERE body_label IS NULL").fetchone()[0] == 168


def test_the_ray_engine_stores_exactly_what_the_local_engine_stores(tmp_path, models):
    ray = pytest.importorskip("ray", reason="the Ray engine needs pip install 'qagent[ray]'")
    from agent.shipped import CHAT_SENTIMENT_MODEL as CHAT_SENTIMENT_DIR
    from agent.shipped import NER_MODEL as NER_ASSETS

    sample = write_sample(tmp_path / "sample")
    lines = Path(sample["feed"]).read_text().splitlines()
    small = tmp_path / "feeds"
    small.mkdir()
    (small / "a.jsonl").write_text("\n".join(lines[:40]) + "\n")  # holds one malformed line
    (small / "b.jsonl").write_text("\n".join(lines[35:70]) + "\n")  # overlaps a.jsonl: duplicates
    (small / "c-broken.xml").write_text("<rss><channel><item><title>cut off")  # fails alone in both engines
    watchlist = Watchlist.from_dict(sample_watchlist())
    config = MonitorConfig(feeds=(str(small),), batch_size=16)
    with MonitorStore.open(tmp_path / "local.db") as store:
        local = run_monitor(config, store, watchlist, scorer=model_scorer(models, watchlist))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = runner.invoke(app, ["monitor", "score", str(small), "--db", str(tmp_path / "ray.db"), "--watchlist",
                                     sample["watchlist"], "--engine", "ray", "--workers", "2", "--batch-size", "16",
                                     "--runtime", "torch", "--json",  # the local scorer above runs in torch,
                                     "--sentiment-model", str(CHAT_SENTIMENT_DIR),  # on these models
                                     "--ner-model", str(NER_ASSETS), "--topic-model", str(TOPICS or "none")])
    finally:
        ray.shutdown()
    assert result.exit_code == 1, result.output  # the broken feed, named on stderr; the others were read
    assert "is not well-formed XML" in result.stderr and "the other feeds were read" in result.stderr
    remote = json.loads(result.stdout)
    for key in ("read", "scored", "duplicates", "skipped", "alerts", "failed_feeds"):
        assert remote[key] == local[key], key
    assert [Path(f["feed"]).name for f in local["failed_feeds"]] == ["c-broken.xml"]
    # The 5 overlapping lines: 3 without an id are the same content ids in both feeds (one item,
    # counted as a duplicate from another feed); 2 carry an id, which is scoped by feed (new items).
    assert (local["duplicates"], local["duplicates_other_feed"], local["skipped"]) == (3, 3, 2)
    for name in COMPARED:
        assert table(tmp_path / "ray.db", name) == table(tmp_path / "local.db", name), name
    with sqlite3.connect(tmp_path / "ray.db") as connection:  # the topics compared above are there to compare
        topics = connection.execute("SELECT COUNT(*) FROM scores WHERE topic IS NOT NULL").fetchone()[0]
    assert topics == (remote["scored"] if TOPICS else 0)


def test_standard_input_is_a_feed(tmp_path):
    sample = write_sample(tmp_path)
    lines = Path(sample["feed"]).read_text().splitlines()[:12]
    result = runner.invoke(app, ["monitor", "score", "-", "--db", str(tmp_path / "m.db"), "--watchlist", sample["watchlist"],
                                 "--no-body", "--json"], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["read"], summary["scored"], summary["skipped"]) == (12, 11, 1)
    again = runner.invoke(app, ["monitor", "score", "-", "--db", str(tmp_path / "m.db"), "--json"], input="\n".join(lines) + "\n")
    assert json.loads(again.stdout)["duplicates"] == 11  # no cursor on a stream: ids keep items unique


@pytest.mark.parametrize("tag_body", [False, True])
def test_scorer_reads_headline_body_watchlist_and_tagger(models, tag_body):
    watchlist = Watchlist.from_dict({"companies": [{"name": "Northwind Bank", "ticker": "NWB"}]})
    encoder, sentiment, tagger, topics = models
    scorer = ModelScorer(encoder, sentiment, tagger, watchlist, ScoringConfig(tag_body=tag_body), topics)
    item = FeedItem("x", "-", 1, None, "", "$NWB: Northwind Bank cut to underperform at Morgan Stanley",
                    "Analysts at Goldman Sachs also cut their price target on Northwind Bank. Shares of Barclays plc fell 3% in London.")
    score = scorer.score([item])[0]
    assert score.headline.label == "negative" and score.overall.label == "negative" and score.body_sentences == 2
    found = {(m.key, m.method, m.field) for m in score.mentions}
    assert {("Northwind Bank", "watchlist", "title"), ("Northwind Bank", "watchlist", "body"), ("Morgan Stanley", "tagger", "title")} <= found
    body_tags = {m.key for m in score.mentions if m.method == "tagger" and m.field == "body"}
    assert body_tags == ({"Goldman Sachs", "Barclays plc"} if tag_body else set())
    for m in score.mentions:
        assert (item.title if m.field == "title" else item.body)[m.start:m.end] == m.text


def test_the_onnx_runtime_scores_like_torch(tmp_path):
    from agent.monitor.scoring import load_scorer

    sample = write_sample(tmp_path)
    watchlist = Watchlist.from_dict(sample_watchlist())
    items = [record.entry for record in read_feed(sample["feed"]) if isinstance(record.entry, FeedItem)][:40]
    scores = {runtime: load_scorer(ScoringConfig(runtime=runtime), watchlist).score(items) for runtime in ("torch", "onnx")}
    for torch_score, onnx_score in zip(scores["torch"], scores["onnx"]):
        assert torch_score.overall.label == onnx_score.overall.label
        assert abs(torch_score.overall.score - onnx_score.overall.score) < 1e-3
        assert [(m.key, m.start, m.field) for m in torch_score.mentions] == [
            (m.key, m.start, m.field) for m in onnx_score.mentions]


@pytest.mark.slow
def test_the_default_scorer_runs_sentiment_and_news_tagger_on_one_pass():
    from agent.monitor.scoring import NEWS_SENTIMENT_DIR, NEWS_TAGGER_DIR, ScoringConfig, load_scorer

    scorer = load_scorer(ScoringConfig(runtime="torch"), Watchlist.from_dict({"companies": []}))
    assert scorer.tagger.checkpoint.path == NEWS_TAGGER_DIR and scorer.sentiment.checkpoint.path == NEWS_SENTIMENT_DIR
    assert scorer.tagger.shares_encoder_with(scorer.sentiment)


@pytest.mark.slow
@pytest.mark.skipif(TOPICS is None, reason=NO_TOPIC_MODEL)
def test_the_shipped_topic_model_reads_the_news_pass_one_encoder_pass_a_batch(monkeypatch):
    from agent.monitor.scoring import load_scorer
    from finetune.models.passes import plan_passes

    scorer = load_scorer(ScoringConfig(runtime="torch", body=False), Watchlist.from_dict({"companies": []}))
    assert scorer.topics is not None and scorer.topics.checkpoint.path == TOPICS
    plan = plan_passes({"entities": scorer.tagger, "sentiment": scorer.sentiment, "topics": scorer.topics})
    assert [(p.kind, p.readers) for p in plan.passes] == [("shared", ("entities", "sentiment", "topics"))]
    # Count the forward passes of every encoder the models hold: one batch of headlines, one pass.
    calls = []
    encoders = {id(e): e for e in (scorer.encoder, *(e for m in (scorer.sentiment, scorer.tagger, scorer.topics)
                                                      for e in m.encoders))}
    for encoder in encoders.values():
        original = encoder.forward
        monkeypatch.setattr(encoder, "forward", lambda *a, _o=original, **k: calls.append(1) or _o(*a, **k))
    titles = ["Acme agrees to buy Contoso for $2 billion", "Fed leaves rates unchanged", "Oil jumps 5% on supply cuts",
              "Acme beats profit estimates", "Contoso names new chief executive"]
    scores = scorer.score([FeedItem("f", n, str(n), None, "", t) for n, t in enumerate(titles)])
    assert len(calls) == 1
    assert all(s.topic is not None and s.topic.label in scorer.topics.labels and 0 < s.topic.probability <= 1
               for s in scores)


@pytest.mark.slow
@pytest.mark.skipif(TOPICS is None, reason=NO_TOPIC_MODEL)
def test_cli_scores_topics_with_the_shipped_model_and_lists_them(tmp_path):
    sample = write_sample(tmp_path)
    db = tmp_path / "m.db"
    result = runner.invoke(app, ["monitor", "score", sample["feed"], "--db", str(db), "--watchlist", sample["watchlist"],
                                 "--no-body"])
    assert result.exit_code == 0 and "no topic model" not in result.output, result.output
    listed = json.loads(runner.invoke(app, ["monitor", "topics", "--db", str(db), "--json"]).output)
    assert listed["without_topic"] == 0 and sum(t["items"] for t in listed["topics"]) == listed["items"] == 168
    assert len(listed["topics"]) >= 3  # a generated feed of banks, deals, rates and jobs is not one topic
