import json

import pytest
from typer.testing import CliRunner

from agent.cli import app

runner = CliRunner()


@pytest.fixture()
def tweets(tmp_path):
    folder = tmp_path / "data" / "fin_tweets"
    folder.mkdir(parents=True)
    rows = ["$ACME falls after profit warning https://t.co/abc", "$ACME falls after profit warning https://t.co/xyz",
            "$BETA shares rise on upgrade", "Markets close flat", "Oil slips", "Gold gains", "$ACME names new CEO",
            "Bonds rally", "Dollar weakens"]
    (folder / "valid.csv").write_text("text,label\n" + "".join(f'"{r}",2\n' for r in rows[:4]))
    (folder / "train.csv").write_text("text,label\n" + "".join(f'"{r}",2\n' for r in rows[4:]))
    return tmp_path / "data"


def test_benchmark_feed_strips_links_drops_repeats_and_adds_bodies(tweets, tmp_path):
    out = tmp_path / "feed"
    result = runner.invoke(app, ["bench", "monitor", "--items", "2", "--mode", "body", "--data-dir", str(tweets), "--feed-out", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "feed.jsonl").read_text().splitlines()]
    assert [r["title"] for r in records] == ["$ACME falls after profit warning", "$BETA shares rise on upgrade"]
    assert records[0]["body"] == "Markets close flat. Oil slips. Gold gains."
    assert json.loads((out / "watchlist.json").read_text())["companies"][0] == {"name": "ACME", "ticker": "ACME"}
    too_many = runner.invoke(app, ["bench", "monitor", "--items", "50", "--data-dir", str(tweets), "--feed-out", str(out)])
    assert too_many.exit_code == 1 and "distinct headlines" in too_many.output


@pytest.mark.slow
def test_monitor_benchmark_times_the_shipped_models(tweets):
    # --threads 1 explicitly: the default (0, one per core) leaves torch's setting, which other tests change.
    result = runner.invoke(app, ["bench", "monitor", "--items", "4", "--mode", "headline", "--data-dir", str(tweets),
                                 "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)[0]
    assert run["items"] == 4 and run["items_per_s"] > 0 and run["torch_threads"] == 1


def test_a_topic_model_folder_without_a_model_is_one_line(tweets, tmp_path):
    result = runner.invoke(app, ["bench", "monitor", "--items", "2", "--data-dir", str(tweets),
                                 "--topic-model", "none", "--topic-model", str(tmp_path)])
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "config.json missing" in result.output


@pytest.mark.slow
def test_monitor_benchmark_times_with_and_without_topics_side_by_side(tweets, tmp_path):
    from agent.shipped import NEWS_TOPICS_MODEL

    if not (NEWS_TOPICS_MODEL / "config.json").is_file():
        pytest.skip(f"no topic model installed at {NEWS_TOPICS_MODEL} (it ships with the topic classifier)")
    result = runner.invoke(app, ["bench", "monitor", "--items", "4", "--mode", "headline", "--data-dir", str(tweets),
                                 "--threads", "1", "--topic-model", "none", "--topic-model", "default", "--json"])
    assert result.exit_code == 0, result.output
    off, on = json.loads(result.stdout)
    assert (off["topic_model"], off["topics_found"]) == ("none", 0)
    assert on["topic_model"] == str(NEWS_TOPICS_MODEL) and on["topics_found"] >= 1
    assert off["encoder_passes"] == on["encoder_passes"] == 1  # topics ride on the news pair's pass
