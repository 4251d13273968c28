import json

import numpy as np
import pytest
from typer.testing import CliRunner

from finetune.models.checkpoint import CheckpointError
from finetune.data.loaders import load_entities
from finetune.models.heads import HeadConfig
from finetune.models.tagger import EntityTagger
from finetune.models.loading import load_tagger
from finetune.models.tagger_ensemble import TaggerEnsemble, save_tagger_ensemble
from finetune.training.tagger import TaggerSpec, train_tagger
from finetune.training.trainer import TrainingArguments

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tiny_entities_dir):
    return load_entities(str(tiny_entities_dir))


@pytest.fixture(scope="module")
def members(tiny, base_encoder, tmp_path_factory):
    """Two frozen-encoder taggers of the tiny data, trained from different seeds (few epochs, so they differ)."""
    root = tmp_path_factory.mktemp("members")
    for seed in (0, 1):
        args = TrainingArguments(epochs=6, batch_size=16, lr=1e-2, patience=6, seed=seed, progress=False)
        train_tagger(tiny, TaggerSpec(head=HeadConfig(kind="linear")), args, base_encoder, root / f"seed{seed}")
    return [root / "seed0", root / "seed1"]


@pytest.fixture(scope="module")
def ensemble_dir(members, tiny_entities_dir, tmp_path_factory):
    from agent.cli import app

    out = tmp_path_factory.mktemp("ensemble") / "ner"
    result = runner.invoke(app, ["finetune", "ensemble", *map(str, members), "--data", str(tiny_entities_dir),
                                 "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.stdout)


def test_cli_writes_an_ensemble_with_its_own_prior_and_validation_scores(ensemble_dir):
    out, summary = ensemble_dir
    assert summary["task"] == "ner" and len(summary["members"]) == 2
    assert (out / "decoding.json").is_file() and (out / "ensemble.json").is_file()
    f1 = summary["validation"]["entity_f1"]
    assert set(f1) == {*summary["members"], "ensemble"} and all(0 <= v <= 1 for v in f1.values())
    assert set(summary["decoding"]["validation_entity_f1_by_weight"]) == {"0", "0.25", "0.5", "0.75", "1"}
    record = json.loads((out / "ensemble.json").read_text())
    assert record["metrics"]["validation"]["entity_f1"] == f1 and record["command"].startswith("agent finetune ensemble")


def test_ensemble_averages_member_probabilities_and_decodes_offsets(ensemble_dir, members, tiny, base_encoder):
    out, summary = ensemble_dir
    tagger = load_tagger(out, encoder=base_encoder)
    assert isinstance(tagger, TaggerEnsemble) and tagger.prior.weight == summary["decoding"]["weight"]
    texts = [ex.text for ex in tiny.test]
    singles = [EntityTagger.load(m, encoder=base_encoder).tag_probabilities(texts) for m in members]
    averaged = tagger.tag_probabilities(texts)
    for i, (words, probs) in enumerate(averaged):
        assert words == singles[0][i][0]
        assert np.allclose(probs, (singles[0][i][1] + singles[1][i][1]) / 2, atol=1e-6)
    for text, entities in zip(texts, tagger.predict(texts)):
        for entity in entities:
            assert text[entity.start : entity.end] == entity.text and 0 < entity.score <= 1
    assert tagger.predict(["", "   "]) == [[], []]
    with pytest.raises(TypeError, match="list of texts"):
        tagger.predict("pay Anna")
    with pytest.raises(ValueError, match="own encoder passes"):
        tagger.predict_words(texts, [])


def test_eval_ner_scores_an_ensemble(ensemble_dir, tiny_entities_dir, tmp_path):
    from agent.cli import app

    out, _ = ensemble_dir
    result = runner.invoke(app, ["eval", "ner", str(out), "--data", str(tiny_entities_dir), "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["micro"]["f1"] > 0.5 and (tmp_path / "report.json").is_file()


def test_load_tagger_takes_a_single_checkpoint_too(members, base_encoder):
    assert isinstance(load_tagger(members[0], encoder=base_encoder), EntityTagger)


def test_refitted_members_need_a_prior_weight_and_get_the_training_transitions(members, tiny_entities_dir, tmp_path):
    from agent.cli import app

    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "test"):  # no validation file: with --val-fraction 0 nothing is carved
        (data / f"{split}.jsonl").write_text((tiny_entities_dir / f"{split}.jsonl").read_text())
    options = ["finetune", "ensemble", *map(str, members), "--data", str(data), "--val-fraction", "0"]
    refused = runner.invoke(app, [*options, "--out", str(tmp_path / "a")])
    assert refused.exit_code == 1 and "ensemble's prior needs --prior-weight" in refused.stderr
    result = runner.invoke(app, [*options, "--prior-weight", "0.5", "--out", str(tmp_path / "b"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert "validation" not in summary and summary["decoding"]["weight"] == 0.5
    assert summary["decoding"]["train_sentences"] == 24
    assert TaggerEnsemble.load(tmp_path / "b").prior.weight == 0.5


def test_bad_ensembles_are_refused_before_anything_is_written(members, tmp_path):
    with pytest.raises(ValueError, match="at least two"):
        save_tagger_ensemble(members[:1], tmp_path / "one")
    with pytest.raises(ValueError, match="one positive weight per member"):
        save_tagger_ensemble(members, tmp_path / "w", weights=[1, 0])
    with pytest.raises(ValueError, match="is one of the members"):
        save_tagger_ensemble(members, members[0])
    assert not (tmp_path / "one").exists() and not (tmp_path / "w").exists()


def test_an_ensemble_of_classifiers_is_not_a_tagger_ensemble(tmp_path):
    (tmp_path / "ensemble.json").write_text(json.dumps({"format": "qagent-ensemble/1", "task": "sentiment",
                                                        "labels": ["a"], "members": ["m"], "weights": [1]}))
    with pytest.raises(CheckpointError, match="not entity taggers"):
        load_tagger(tmp_path)
