import json

import pytest
from typer.testing import CliRunner

from eval.ner import entities_to_tags, entity_report, evaluate_tagger, format_report
from finetune.models.tagger import Entity

runner = CliRunner()


def test_entity_report_matches_spans_strictly_per_type():
    gold = [["B-date", "I-date", "O", "B-person_name"], ["B-amount_of_money", "O"]]
    predicted = [["B-date", "O", "O", "B-person_name"], ["B-amount_of_money", "O"]]  # date cut short
    report = entity_report(gold, predicted)
    assert report["per_type"]["date"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert report["per_type"]["person_name"]["f1"] == 1.0
    assert report["micro"]["precision"] == pytest.approx(2 / 3) and report["micro"]["recall"] == pytest.approx(2 / 3)
    assert report["micro"]["support"] == 3


def test_entity_report_rejects_misaligned_tags():
    with pytest.raises(ValueError, match="same sentences and lengths"):
        entity_report([["O", "O"]], [["O"]])


def test_entities_to_tags_uses_the_tagger_word_grid():
    text = "pay 20 pounds on the 5th"
    entities = [Entity("amount_of_money", "20 pounds", 4, 13, 0.9), Entity("date", "the 5th", 17, 24, 0.8)]
    assert entities_to_tags(text, entities) == ["O", "B-amount_of_money", "I-amount_of_money", "O",
                                                "B-date", "I-date", "I-date"]


@pytest.fixture(scope="module")
def model_dir(tiny_entities_dir, tmp_path_factory):
    from agent.cli import app

    out = tmp_path_factory.mktemp("cli") / "ner"
    result = runner.invoke(app, ["finetune", "ner", "--data", str(tiny_entities_dir), "--frozen", "--head", "linear",
                                 "--epochs", "30", "--patience", "30", "--lr", "1e-2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "validation entity micro-F1" in result.output
    return out


def test_finetune_ner_writes_a_checkpoint_with_bio_labels(model_dir):
    labels = json.loads((model_dir / "labels.json").read_text())
    assert labels[0] == "O" and "B-person_name" in labels and "I-amount_of_money" in labels
    config = json.loads((model_dir / "config.json").read_text())
    assert config["task"] == "ner" and config["command"].startswith("agent finetune ner")


def test_eval_ner_prints_json_and_writes_the_report(model_dir, tiny_entities_dir, tmp_path):
    from agent.cli import app

    result = runner.invoke(app, ["eval", "ner", str(model_dir), "--data", str(tiny_entities_dir),
                                 "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["micro"]["f1"] > 0.8 and set(report["per_type"]) == {"amount_of_money", "date", "person_name"}
    assert (tmp_path / "report.json").is_file() and (tmp_path / "f1_per_type.png").is_file()


def test_finetune_ner_reports_skipped_spans_with_their_line(tiny_entities_dir, tmp_path):
    from agent.cli import app

    for split in ("validation", "test"):
        (tmp_path / f"{split}.jsonl").write_text((tiny_entities_dir / f"{split}.jsonl").read_text())
    train = (tiny_entities_dir / "train.jsonl").read_text()
    bad = json.dumps({"text": "pay Anna", "spans": [{"start": 4, "end": 8, "label": "person_name", "text": "Bob"}]})
    (tmp_path / "train.jsonl").write_text(train + bad + "\n")
    result = runner.invoke(app, ["finetune", "ner", "--data", str(tmp_path), "--frozen", "--epochs", "1",
                                 "--out", str(tmp_path / "m"), "--json"])
    assert result.exit_code == 0, result.output
    assert "train.jsonl:25" in result.stderr and "1 span(s) in the data could not be used" in result.stderr
    assert json.loads(result.stdout)["skipped_spans"] == 1


def test_finetune_ner_augments_the_training_split_only(tiny_entities_dir, tmp_path):
    from agent.cli import app

    result = runner.invoke(app, ["finetune", "ner", "--data", str(tiny_entities_dir), "--frozen", "--epochs", "1",
                                 "--augment", "2", "--out", str(tmp_path / "m"), "--json"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["training"]["train_examples"] == 24 * 3  # 24 sentences, each with entities, + 2 copies each
    assert "--augment 2" in config["command"]


def test_finetune_ner_draws_extra_mentions_from_faker_or_a_file(tiny_entities_dir, tmp_path):
    from agent.cli import app

    options = ["finetune", "ner", "--data", str(tiny_entities_dir), "--frozen", "--epochs", "1", "--json"]
    made_up = runner.invoke(app, [*options, "--augment", "1", "--mentions", "faker", "--out", str(tmp_path / "f")])
    assert made_up.exit_code == 0, made_up.output
    assert "extra mentions: " in made_up.stderr and " person_name" in made_up.stderr
    assert "--mentions faker" in json.loads((tmp_path / "f" / "config.json").read_text())["command"]

    payees = tmp_path / "payees.json"
    payees.write_text('{"payee": ["Zoe"]}')
    wrong_type = runner.invoke(app, [*options, "--augment", "1", "--mentions", str(payees), "--out", str(tmp_path / "p")])
    assert wrong_type.exit_code == 1 and "Invalid value for --mentions" in wrong_type.stderr
    assert "'payee' is not an entity type" in wrong_type.stderr and "Traceback" not in wrong_type.output
    unused = runner.invoke(app, [*options, "--mentions", "faker", "--out", str(tmp_path / "u")])
    assert unused.exit_code == 1 and "only used by --augment" in unused.stderr
    assert not (tmp_path / "p" / "config.json").exists() and not (tmp_path / "u" / "config.json").exists()


def test_finetune_ner_share_mentions_groups_are_checked(tiny_entities_dir, tmp_path):
    from agent.cli import app

    options = ["finetune", "ner", "--data", str(tiny_entities_dir), "--frozen", "--epochs", "1", "--augment", "1"]
    cases = {("date,when",): "when: not an entity type of the data",
             ("date",): "names one type",
             ("date,person_name", "person_name,amount_of_money"): "in one group only"}
    for groups, message in cases.items():
        result = runner.invoke(app, [*options, *[a for g in groups for a in ("--share-mentions", g)],
                                     "--out", str(tmp_path / "m")])
        assert result.exit_code == 1 and "Invalid value for --share-mentions" in result.stderr, result.output
        assert message in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "m" / "config.json").exists()
    shared = runner.invoke(app, [*options, "--share-mentions", "person_name,date", "--out", str(tmp_path / "s"), "--json"])
    assert shared.exit_code == 0, shared.output
    assert "--share-mentions person_name,date" in json.loads((tmp_path / "s" / "config.json").read_text())["command"]


def test_finetune_ner_refits_on_all_training_data_with_a_given_prior_weight(tiny_entities_dir, tmp_path):
    from agent.cli import app
    from finetune.models.tagger import EntityTagger

    for split in ("train", "test"):  # no validation file, and --val-fraction 0 carves none
        (tmp_path / f"{split}.jsonl").write_text((tiny_entities_dir / f"{split}.jsonl").read_text())
    options = ["finetune", "ner", "--data", str(tmp_path), "--frozen", "--epochs", "3", "--val-fraction", "0"]
    refused = runner.invoke(app, [*options, "--out", str(tmp_path / "m")])
    assert refused.exit_code == 1 and "Invalid value for --val-fraction" in refused.stderr
    assert "needs --prior-weight" in refused.stderr and "Traceback" not in refused.output
    assert not (tmp_path / "m" / "config.json").exists()
    result = runner.invoke(app, [*options, "--prior-weight", "0.5", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "3 epochs, no validation data" in result.output
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert metrics["val_entity_f1"] is None and metrics["best_epoch"] == 3 and len(metrics["history"]) == 3
    decoding = json.loads((tmp_path / "m" / "decoding.json").read_text())
    assert decoding["weight"] == decoding["weight_given"] == 0.5 and decoding["validation_sentences"] == 0
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["training"]["train_examples"] == 24  # every training sentence, none carved off
    tagger = EntityTagger.load(tmp_path / "m")
    assert tagger.prior is not None and tagger.prior.weight == 0.5
    assert isinstance(tagger.predict(["send 20 pounds to Anna tomorrow"])[0], list)


@pytest.mark.parametrize(("options", "carve_seed"), [(["--seed", "1"], 1), (["--seed", "1", "--split-seed", "0"], 0)])
def test_split_seed_keeps_the_validation_carve_while_seed_changes(options, carve_seed, tmp_path, monkeypatch):
    import finetune.data.loaders
    from agent.cli import app

    seen = {}

    def load_entities(*args, **kwargs):
        seen.update(kwargs)
        raise finetune.data.loaders.DataError("stop here")  # the carve's seed is all this test looks at

    monkeypatch.setattr(finetune.data.loaders, "load_entities", load_entities)
    result = runner.invoke(app, ["finetune", "ner", "--data", str(tmp_path), "--frozen", *options,
                                 "--out", str(tmp_path / "m")])
    assert result.exit_code == 1 and "stop here" in result.stderr
    assert seen["seed"] == carve_seed


def test_cli_errors_are_one_line(tmp_path):
    from agent.cli import app

    result = runner.invoke(app, ["eval", "ner", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "model directory not found" in result.stderr
    result = runner.invoke(app, ["finetune", "ner", "--setup", "huge", "--out", str(tmp_path / "m")])
    assert result.exit_code != 0 and "setup must be one of" in result.output + result.stderr


def test_format_report_lists_types_and_averages():
    report = {"per_type": {"date": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}},
              "micro": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2},
              "macro": {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}, "examples": 3}
    text = format_report(report)
    assert "date" in text and "micro avg" in text and "entity micro-F1 0.6667" in text


def test_evaluate_tagger_needs_examples():
    with pytest.raises(ValueError, match="no examples"):
        evaluate_tagger(None, [])
