"""`agent finetune intents|sentiment` and `agent eval intents|sentiment` end to end on tiny files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from text_data import OOS, TEXTS, write_csv
from typer.testing import CliRunner

from agent.cli import app

runner = CliRunner()
FAST = ["--head", "hybrid", "--qubits", "2", "--depth", "1", "--circuits", "1", "--epochs", "2",
        "--batch-size", "8", "--lr", "0.02"]


def test_finetune_then_eval_intents(intents_csv, tmp_path):
    model = tmp_path / "model"
    result = runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), *FAST, "--out", str(model), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["labels"] == 3 and summary["best_epoch"] in (1, 2)
    config = json.loads((model / "config.json").read_text())
    assert config["command"].startswith("agent finetune intents --out ")
    assert "--head hybrid" in config["command"] and "--frozen" in config["command"]
    assert any((model / "tensorboard").iterdir())

    out = tmp_path / "report"
    result = runner.invoke(app, ["eval", "intents", str(model), "--data", str(intents_csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "accuracy" in result.output and "macro-F1" in result.output
    assert (out / "report.json").is_file() and (out / "confusion_matrix.png").is_file()


def test_finetune_sentiment_prints_a_summary(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    path = tmp_path / "tweets.csv"
    write_csv(path, labels={"positive": TEXTS["balance"], "negative": TEXTS["card_lost"], "neutral": OOS + ["ok", "fine"]})
    result = runner.invoke(app, ["finetune", "sentiment", "--data", str(path), "--head", "linear", "--epochs", "1",
                                 "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "trained sentiment model (linear head" in result.output
    assert json.loads((tmp_path / "m" / "config.json").read_text())["task"] == "sentiment"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["finetune", "intents", "--data", "missing.csv", "--out", "x"], "file not found: missing.csv"),
        (["finetune", "intents", "--data", "{csv}", "--head", "cubic", "--out", "x"], "head kind must be one of"),
        (["finetune", "intents", "--data", "{csv}", "--text-column", "query", "--out", "x"], "no column 'query'"),
        (["eval", "intents", "{tmp}/nope", "--data", "{csv}"], "model directory not found"),
        (["eval", "intents", "{tmp}", "--data", "{csv}", "--split", "dev"], "not a qagent model"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(argv, message, intents_csv, tmp_path):
    argv = [a.replace("{csv}", str(intents_csv)).replace("{tmp}", str(tmp_path)) for a in argv]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_eval_rejects_an_unknown_split(intents_csv, tmp_path):
    model = tmp_path / "model"
    assert runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), "--head", "linear", "--epochs", "1",
                               "--out", str(model)]).exit_code == 0
    result = runner.invoke(app, ["eval", "intents", str(model), "--data", str(intents_csv), "--split", "dev"])
    assert result.exit_code == 1 and "split must be one of" in result.output


@pytest.mark.slow
def test_finetune_joint_writes_two_models_and_decoding_refits(tmp_path, monkeypatch, tiny_entities_dir):
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    tweets = tmp_path / "tweets.csv"
    write_csv(tweets, labels={"positive": TEXTS["balance"], "negative": TEXTS["card_lost"], "neutral": OOS + ["ok", "fine"]})
    sentiment, ner = tmp_path / "sentiment", tmp_path / "ner"
    news = tmp_path / "news.csv"
    news.write_text("text,label\nThe lender's profit beat forecasts.,positive\nThe carrier cut 900 jobs.,negative\n")
    result = runner.invoke(app, ["finetune", "joint", "--sentiment-data", str(tweets), "--ner-data", str(tiny_entities_dir),
                                 "--add-sentiment-train", str(news), "--sentiment-head", "linear", "--epochs", "1", "--lora-r", "2", "--lora-alpha", "4",
                                 "--sentiment-out", str(sentiment), "--ner-out", str(ner), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["sentiment_model"] == str(sentiment) and set(summary["val"]) == {
        "sentiment_accuracy", "sentiment_macro_f1", "entity_f1"}
    assert json.loads((ner / "config.json").read_text())["command"].startswith("agent finetune joint ")
    assert "--add-sentiment-train" in json.loads((sentiment / "config.json").read_text())["command"]
    (ner / "decoding.json").unlink()
    result = runner.invoke(app, ["finetune", "decoding", str(ner), "--data", str(tiny_entities_dir)])
    assert result.exit_code == 0, result.output
    assert "decoding prior ->" in result.output and (ner / "decoding.json").is_file()


def test_finetune_joint_refuses_one_directory_for_both(tmp_path):
    result = runner.invoke(app, ["finetune", "joint", "--sentiment-out", str(tmp_path / "m"), "--ner-out", str(tmp_path / "m")])
    assert result.exit_code != 0 and "must be different directories" in result.output


def test_finetune_joint_warm_start_needs_a_teacher(tmp_path):
    result = runner.invoke(app, ["finetune", "joint", "--sentiment-out", str(tmp_path / "s"), "--ner-out", str(tmp_path / "n"),
                                 "--warm-start"])
    assert result.exit_code != 0 and "--warm-start needs --teacher" in result.output


@pytest.mark.parametrize(("extra", "message"), [
    (["--add-sentiment-train", "{tmp}/more.csv"], "bullish"),
    (["--sentiment-weight", "0"], "weight must be > 0"),
    (["--distil-weight", "1.5"], "distil_weight must be in (0, 1]"),
])
def test_finetune_joint_refuses_unknown_added_labels_and_a_weight_that_is_not_positive(extra, message, tmp_path):
    tweets = tmp_path / "tweets.csv"
    tweets.write_text("text,label\n" + "".join(f'"post {i}",{("negative", "neutral", "positive")[i % 3]}\n' for i in range(60)))
    (tmp_path / "more.csv").write_text('text,label\n"up we go",bullish\n')
    result = runner.invoke(app, ["finetune", "joint", "--sentiment-data", str(tweets), "--sentiment-out", str(tmp_path / "s"),
                                 "--ner-out", str(tmp_path / "n"), *[a.replace("{tmp}", str(tmp_path)) for a in extra]])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "s").exists()


def test_finetune_joint_names_a_missing_teacher(tmp_path):
    result = runner.invoke(app, ["finetune", "joint", "--sentiment-out", str(tmp_path / "s"), "--ner-out", str(tmp_path / "n"),
                                 "--teacher", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "nowhere" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("option", ["--init-from", "--distil-from"])
def test_finetune_joint_names_a_missing_starting_or_teaching_model(option, tmp_path):
    result = runner.invoke(app, ["finetune", "joint", "--sentiment-out", str(tmp_path / "s"), "--ner-out", str(tmp_path / "n"),
                                 option, str(tmp_path / "gone")])
    assert result.exit_code == 1 and "gone" in result.output and "Traceback" not in result.output


def test_finetune_joint_adds_topic_examples_only_with_a_topic_model(tmp_path):
    extra = tmp_path / "extra.csv"
    extra.write_text("text,label\nGold hits a record,0\n", encoding="utf-8")
    result = runner.invoke(app, ["finetune", "joint", "--sentiment-out", str(tmp_path / "s"), "--ner-out", str(tmp_path / "n"),
                                 "--add-topics-train", str(extra)])
    assert result.exit_code == 1 and "--topics-out" in result.output and "Traceback" not in result.output


def test_finetune_joint_refuses_a_teacher_file_that_is_not_soft_labels(tmp_path):
    bad = tmp_path / "teacher.jsonl"
    bad.write_text("text,label\nrates rise,1\n", encoding="utf-8")
    result = runner.invoke(app, ["finetune", "joint", "--sentiment-out", str(tmp_path / "s"), "--ner-out", str(tmp_path / "n"),
                                 "--distil-from", str(bad)])
    assert result.exit_code == 1 and "teacher.jsonl: not a soft-label file" in result.output
    assert "Traceback" not in result.output


def test_soft_labels_then_a_student_trained_with_them(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    path = tmp_path / "tweets.csv"
    write_csv(path, labels={"positive": TEXTS["balance"], "negative": TEXTS["card_lost"], "neutral": OOS + ["ok", "fine"]})
    teacher = tmp_path / "teacher"
    result = runner.invoke(app, ["finetune", "sentiment", "--data", str(path), "--head", "linear", "--epochs", "1",
                                 "--out", str(teacher)])
    assert result.exit_code == 0, result.output
    (tmp_path / "headlines.txt").write_text("Card stolen at the station\nBalance looks healthy\n", encoding="utf-8")
    soft = tmp_path / "soft.jsonl"
    result = runner.invoke(app, ["finetune", "soft-labels", str(teacher), str(tmp_path / "headlines.txt"), "--out", str(soft)])
    assert result.exit_code == 0, result.output
    assert "2 texts labelled" in result.output and len(soft.read_text().splitlines()) == 2
    result = runner.invoke(app, ["finetune", "soft-labels", str(teacher), str(tmp_path / "headlines.txt"), "--out",
                                 str(soft), "--labels-csv", str(tmp_path / "top.csv")])
    assert result.exit_code == 0, result.output
    top = list(csv.DictReader((tmp_path / "top.csv").read_text(encoding="utf-8").splitlines()))
    assert [row["text"] for row in top] == ["Card stolen at the station", "Balance looks healthy"]
    assert {row["label"] for row in top} <= {"positive", "negative", "neutral"}
    result = runner.invoke(app, ["finetune", "sentiment", "--data", str(path), "--head", "linear", "--epochs", "1",
                                 "--soft-labels", str(soft), "--out", str(tmp_path / "student")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "student" / "config.json").read_text())["training"]["soft_examples"] == 2


def _topics_folder(tmp_path, *, names_in_test: bool):
    """A fin_topics-like folder: labels.json plus train/valid CSVs labelled by topic id (test by name or id)."""
    root = tmp_path / "data" / "fin_topics"
    root.mkdir(parents=True)
    names = ["Card News", "Balances", "Transfers"]
    (root / "labels.json").write_text(json.dumps(names))
    rows = [(text, i) for i, key in enumerate(["card_lost", "balance", "transfer"]) for text in TEXTS[key]]
    for split, picked in (("train", rows), ("valid", rows[::3])):
        lines = ["text,label"] + [f'"{t}",{names[i] if names_in_test and split == "valid" else i}' for t, i in picked]
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def test_finetune_then_eval_topics_reads_ids_and_names(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    root = _topics_folder(tmp_path, names_in_test=True)
    model = tmp_path / "topics"
    result = runner.invoke(app, ["finetune", "topics", "--data-dir", str(root.parent), "--head", "linear", "--epochs", "2",
                                 "--out", str(model), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["labels"] == 3
    assert json.loads((model / "labels.json").read_text()) == ["Balances", "Card News", "Transfers"]
    # A user's own CSV with topic names scores against the model trained on ids.
    out = tmp_path / "report"
    result = runner.invoke(app, ["eval", "topics", str(model), "--data", str(root / "valid.csv"),
                                 "--data-dir", str(root.parent), "--split", "train", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["task"] == "topics" and 6 <= report["n"] <= 10 and 0.0 <= report["accuracy"] <= 1.0
    assert "Balances" in json.dumps(report["per_class"])  # the names, not the ids
    assert (out / "report.json").is_file() and (out / "confusion_matrix.png").is_file()


def test_finetune_topics_adds_training_examples_by_name_or_id(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    root = _topics_folder(tmp_path, names_in_test=False)
    extra = tmp_path / "extra.csv"
    extra.write_text('text,label\n"my card is gone",Card News\n"what do I have left",1\n', encoding="utf-8")
    args = ["finetune", "topics", "--data-dir", str(root.parent), "--head", "linear", "--epochs", "1"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "plain")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, [*args, "--add-train", str(extra), "--out", str(tmp_path / "more")])
    assert result.exit_code == 0, result.output
    counts = [json.loads((tmp_path / name / "config.json").read_text())["training"]["train_examples"]
              for name in ("plain", "more")]
    assert counts[1] == counts[0] + 2
    extra.write_text('text,label\n"rain tomorrow",Weather\n', encoding="utf-8")
    result = runner.invoke(app, [*args, "--add-train", str(extra), "--out", str(tmp_path / "bad")])
    assert result.exit_code == 1 and "Weather" in result.output and "Traceback" not in result.output


def test_finetune_topics_learns_from_a_teachers_probabilities_too(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    root = _topics_folder(tmp_path, names_in_test=False)
    soft = tmp_path / "soft.jsonl"
    probs = [{"Card News": 0.8, "Balances": 0.1, "Transfers": 0.1}, {"Card News": 0.1, "Balances": 0.7, "Transfers": 0.2}]
    soft.write_text("".join(json.dumps({"text": t, "probs": p}) + "\n"
                            for t, p in zip(["card swallowed by the machine", "money left this month"], probs)))
    args = ["finetune", "topics", "--data-dir", str(root.parent), "--head", "linear", "--epochs", "1"]
    result = runner.invoke(app, [*args, "--soft-labels", str(soft), "--out", str(tmp_path / "student")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "student" / "config.json").read_text())["training"]["soft_examples"] == 2
    soft.write_text(json.dumps({"text": "shares fall", "probs": {"negative": 0.9, "neutral": 0.05, "positive": 0.05}}) + "\n")
    result = runner.invoke(app, [*args, "--soft-labels", str(soft), "--out", str(tmp_path / "wrong")])
    assert result.exit_code == 1 and "differ from the model's" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["finetune", "sentiment", "--data", "{csv}", "--soft-labels", "{tmp}/none.jsonl", "--out", "x"],
         "soft-label file not found"),
        (["finetune", "soft-labels", "{tmp}", "{tmp}/none.csv", "--out", "x"], "text file not found"),
        (["eval", "sentiment", "chat", "--data", "news", "--split", "validation"], "--data news is one test set"),
    ],
)
def test_bad_distillation_input_is_one_line_and_exit_1(argv, message, intents_csv, tmp_path):
    argv = [a.replace("{csv}", str(intents_csv)).replace("{tmp}", str(tmp_path)) for a in argv]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    # The model's loading bar may come first; the error itself is one line.
    assert [line for line in result.output.splitlines() if message in line][0].startswith("error: "), result.output


@pytest.mark.slow
def test_eval_sentiment_monitor_scores_the_news_sentences(tmp_path):
    result = runner.invoke(app, ["eval", "sentiment", "monitor", "--data", "news", "--limit", "12", "--out", str(tmp_path),
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["n"] == 12 and 0.0 <= report["accuracy"] <= 1.0
    assert (tmp_path / "report.json").is_file() and (tmp_path / "confusion_matrix.png").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["finetune", "topics", "--data", "{bad_id}", "--data-dir", "{data}", "--out", "{tmp}/m"], "is not a topic id (0-2)"),
        (["finetune", "topics", "--data", "{bad_name}", "--data-dir", "{data}", "--out", "{tmp}/m"], "neither a topic id"),
        (["finetune", "topics", "--share-adapter", "{tmp}", "--data-dir", "{data}", "--out", "{tmp}/m"], "has no LoRA adapter"),
        (["eval", "topics", "{tmp}/nope", "--data-dir", "{data}"], "model directory not found"),
        (["eval", "topics", "default", "--data", "{bad_id}", "--data-dir", "{data}", "--topic-names", "{tmp}/none.json"],
         "no such file"),
    ],
)
def test_topics_bad_input_is_one_line_and_exit_1(argv, message, tmp_path):
    root = _topics_folder(tmp_path, names_in_test=False)
    good = "".join(f'"headline {i}",{i % 3}\n' for i in range(30))
    (tmp_path / "bad_id.csv").write_text(f'text,label\n{good}"c",7\n')
    (tmp_path / "bad_name.csv").write_text(f'text,label\n{good}"b",Balances\n"c",Weather\n')
    subs = {"{bad_id}": str(tmp_path / "bad_id.csv"), "{bad_name}": str(tmp_path / "bad_name.csv"),
            "{data}": str(root.parent), "{tmp}": str(tmp_path)}
    for key, value in subs.items():
        argv = [a.replace(key, value) for a in argv]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    # The encoder's own loading bar may come first; the error itself is one line.
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--share-adapter", "{tmp}"], "has no LoRA adapter"),
        (["--share-adapter", "agent/assets/models/news-sentiment", "--max-length", "128"], "reads texts at --max-length 64"),
        (["--share-adapter", "agent/assets/models/news-sentiment", "--max-length", "64", "--lora"], "drop --lora"),
        (["--add-train", "{tmp}/more.csv"], "labels 'bullish' are not among"),
        (["--add-train", "{tmp}/none.csv"], "must be an existing CSV or JSONL file"),
    ],
)
def test_sentiment_added_data_and_shared_adapter_refusals_are_one_line(extra, message, tmp_path):
    rows = "".join(f'"news {i}",{("negative", "neutral", "positive")[i % 3]}\n' for i in range(60))
    (tmp_path / "news.csv").write_text(f"text,label\n{rows}")
    (tmp_path / "more.csv").write_text('text,label\n"up we go",bullish\n')
    argv = ["finetune", "sentiment", "--data", str(tmp_path / "news.csv"), "--out", str(tmp_path / "m"),
            *[a.replace("{tmp}", str(tmp_path)) for a in extra]]
    result = runner.invoke(app, argv)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_sentiment_on_a_shared_adapter_with_added_data_keeps_the_adapter(tmp_path):
    rows = "".join(f'"news {i}",{("negative", "neutral", "positive")[i % 3]}\n' for i in range(60))
    (tmp_path / "news.csv").write_text(f"text,label\n{rows}")
    (tmp_path / "more.csv").write_text("text,label\n" + "".join(f'"extra {i}",positive\n' for i in range(7)))
    shared = Path("agent/assets/models/news-sentiment")
    result = runner.invoke(app, ["finetune", "sentiment", "--data", str(tmp_path / "news.csv"), "--add-train",
                                 str(tmp_path / "more.csv"), "--share-adapter", str(shared), "--max-length", "64",
                                 "--head", "linear", "--epochs", "1", "--out", str(tmp_path / "m"), "--json"])
    assert result.exit_code == 0, result.output
    adapter = "adapter/adapter_model.safetensors"
    assert (tmp_path / "m" / adapter).read_bytes() == (shared / adapter).read_bytes()
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert "--add-train" in config["command"]


@pytest.mark.slow
def test_tagger_on_a_shared_adapter_keeps_it_and_shares_the_pass(tmp_path, tiny_entities_dir, base_encoder):
    from finetune.models.classifier import TextClassifier
    from finetune.models.passes import plan_passes
    from finetune.models.tagger import EntityTagger

    shared = Path("agent/assets/models/news-sentiment")
    result = runner.invoke(app, ["finetune", "ner", "--data", str(tiny_entities_dir), "--share-adapter", str(shared),
                                 "--max-length", "64", "--epochs", "2", "--out", str(tmp_path / "t"), "--json"])
    assert result.exit_code == 0, result.output
    adapter = "adapter/adapter_model.safetensors"
    assert (tmp_path / "t" / adapter).read_bytes() == (shared / adapter).read_bytes()
    tagger = EntityTagger.load(tmp_path / "t", encoder=base_encoder)
    assert tagger.checkpoint.settings["shared_adapter"]["frozen"] and tagger.entity_types
    sentiment = TextClassifier.load(shared, encoder=base_encoder)
    assert len(plan_passes({"entities": tagger, "sentiment": sentiment}).passes) == 1


def test_tagger_on_a_shared_adapter_needs_its_max_length(tmp_path, tiny_entities_dir):
    result = runner.invoke(app, ["finetune", "ner", "--data", str(tiny_entities_dir), "--share-adapter",
                                 "agent/assets/models/news-sentiment", "--out", str(tmp_path / "t")])
    assert result.exit_code == 1 and "reads texts at --max-length 64" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "t").exists()


@pytest.mark.parametrize("command", [
    ["finetune", "topics", "--out", "{tmp}/topics", "--epochs", "1"],
    ["finetune", "calibrate", "default", "--backend", "exact", "--out", "{tmp}/calibrated"],
    ["finetune", "soft-labels", "default", "{tmp}/texts.txt", "--out", "{tmp}/soft.jsonl"],
    ["eval", "assistant", "--limit", "1", "--out", "{tmp}/assistant"],
])
def test_device_is_taken_and_checked_by_every_model_command(command, tmp_path):
    (tmp_path / "texts.txt").write_text("shares fell\n")
    argv = [arg.format(tmp=tmp_path) for arg in command]
    result = runner.invoke(app, [*argv, "--device", "tpu"])
    assert result.exit_code == 1, result.output
    last = result.output.splitlines()[-1]  # (after the progress of whatever loaded before the check)
    assert last.startswith("error: ") and "device must be auto, cpu or cuda" in last
    assert "Traceback" not in result.output


def test_finetune_lexical_adds_a_word_part_that_eval_reads_and_remove_takes_away(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    root = _topics_folder(tmp_path, names_in_test=True)
    model = tmp_path / "topics"
    result = runner.invoke(app, ["finetune", "topics", "--data-dir", str(root.parent), "--head", "linear",
                                 "--epochs", "1", "--lr", "1e-4", "--val-fraction", "0.3", "--out", str(model)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["finetune", "lexical", str(model), "--data-dir", str(root.parent), "--min-df", "1",
                                 "--val-fraction", "0.3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["written"] and (model / "lexical.json").is_file()  # a one-epoch head at 1e-4 leaves room for words
    assert report["validation_examples"] > 0 and report["terms"] > 0
    result = runner.invoke(app, ["eval", "topics", str(model), "--data", "fin_topics", "--data-dir", str(root.parent),
                                 "--split", "test", "--out", str(tmp_path / "report"), "--json"])
    assert result.exit_code == 0, result.output
    (model / "lexical.safetensors").write_bytes(b"broken")  # a part that no longer loads is still removable
    result = runner.invoke(app, ["finetune", "lexical", str(model), "--remove"])
    assert result.exit_code == 0 and not (model / "lexical.json").exists()
    assert "lexical" not in json.loads((model / "metrics.json").read_text())
    result = runner.invoke(app, ["eval", "topics", str(model), "--data", "fin_topics", "--data-dir", str(root.parent),
                                 "--split", "test", "--out", str(tmp_path / "report2"), "--json"])
    assert result.exit_code == 0, result.output  # the checksums were recorded again without the part


@pytest.mark.parametrize("target", ["missing", "ner"])
def test_finetune_lexical_names_what_is_wrong_with_the_model(target, tmp_path):
    path = tmp_path / "gone"
    if target == "ner":
        path = Path("agent/assets/models/news-ner")
    result = runner.invoke(app, ["finetune", "lexical", str(path)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert ("gone" in result.output) if target == "missing" else ("sentence classifier" in result.output)


def test_finetune_lexical_reads_the_added_training_examples_too(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    root = _topics_folder(tmp_path, names_in_test=False)
    extra = tmp_path / "extra.csv"
    extra.write_text('text,label\n"my card is gone",Card News\n"what do I have left",1\n', encoding="utf-8")
    model = tmp_path / "topics"
    args = ["--data-dir", str(root.parent), "--val-fraction", "0.3"]
    result = runner.invoke(app, ["finetune", "topics", *args, "--head", "linear", "--epochs", "1", "--out", str(model)])
    assert result.exit_code == 0, result.output
    counts = []
    for more in ([], ["--add-train", str(extra)]):
        result = runner.invoke(app, ["finetune", "lexical", str(model), *args, "--min-df", "1", *more, "--json"])
        assert result.exit_code == 0, result.output
        counts.append(json.loads(result.stdout)["train_examples"])
    assert counts[1] == counts[0] + 2


def test_finetune_lexical_refuses_added_files_for_an_intent_model(tmp_path):
    extra = tmp_path / "extra.csv"
    extra.write_text("text,label\nhello,balance\n", encoding="utf-8")
    result = runner.invoke(app, ["finetune", "lexical", "agent/assets/models/intents", "--add-train", str(extra)])
    assert result.exit_code != 0 and "added files" in result.output and "Traceback" not in result.output
