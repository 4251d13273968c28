"""eval.head_seeds: a classifier's head trained again per seed, each scored on test beside the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from text_data import tiny_intents

from eval.head_seeds import main, seed_spread
from finetune.models.checkpoint import load_checkpoint
from finetune.models.classifier import TextClassifier
from finetune.models.encoder import FeatureCache
from finetune.models.heads import HeadConfig
from finetune.models.integrity import record_checksums
from finetune.training.classifier import ClassifierSpec, train_classifier
from finetune.training.lexical import fit_lexical
from finetune.training.trainer import TrainingArguments


@pytest.fixture()
def model(base_encoder, tmp_path):
    """A frozen-feature linear head with a word n-gram part, as the monitor's topic model has."""
    from finetune.models.lexical import LexicalSettings

    data = tiny_intents()
    # One short epoch leaves the head room for the words, so the part is written.
    args = TrainingArguments(epochs=1, batch_size=8, lr=1e-4, patience=5, label_smoothing=0.1, progress=False)
    cache = FeatureCache(tmp_path / "cache")
    path = train_classifier(data, ClassifierSpec(task="sentiment", head=HeadConfig(kind="linear")), args,
                            base_encoder, tmp_path / "model", cache=cache).path
    record_checksums(path)
    assert fit_lexical(path, data, LexicalSettings(min_df=1, c_grid=(10.0,))).written
    return path, data, cache


def _accuracy(probs: np.ndarray, labels: list[str], gold: list[str]) -> float:
    return round(float(np.mean([labels[i] == g for i, g in zip(probs.argmax(axis=1), gold)])), 4)


def test_every_seed_is_trained_with_the_recorded_settings_and_scored_on_test(model, tmp_path):
    path, data, cache = model
    report = seed_spread(path, data, [0, 1], tmp_path / "out", cache=cache, target=0.5)
    assert [r["seed"] for r in report["runs"]] == [0, 1] and report["lexical"]
    source = load_checkpoint(path).config["training"]
    texts, gold = [ex.text for ex in data.test], [ex.label for ex in data.test]
    heads, probs, validation = [], [], []
    val_texts, val_gold = [ex.text for ex in data.validation], [ex.label for ex in data.validation]
    for seed in (0, 1):
        retrained = load_checkpoint(tmp_path / "out" / f"seed-{seed}")
        training = retrained.config["training"]
        assert training["seed"] == seed
        assert {k: training[k] for k in ("epochs", "lr", "label_smoothing", "batch_size")} == \
               {k: source[k] for k in ("epochs", "lr", "label_smoothing", "batch_size")}
        heads.append(next(iter(retrained.head.state_dict().values())).clone())
        classifier = TextClassifier.load(tmp_path / "out" / f"seed-{seed}")
        order = [classifier.labels.index(label) for label in sorted(classifier.labels)]
        probs.append(classifier.probabilities(classifier.encode(texts), texts=texts)[:, order])
        validation.append(classifier.probabilities(classifier.encode(val_texts), texts=val_texts)[:, order])
        run = report["runs"][seed]
        assert run["test"]["joined"]["accuracy"] == _accuracy(probs[-1], sorted(classifier.labels), gold)
    assert not np.allclose(heads[0].numpy(), heads[1].numpy())  # the seed reached the head's weights
    labels = sorted(data.labels)
    assert report["average_of_seeds"]["accuracy"] == _accuracy(np.mean(probs, axis=0), labels, gold)
    assert report["average_of_seeds_validation"]["accuracy"] == _accuracy(np.mean(validation, axis=0), labels, val_gold)
    original = TextClassifier.load(path)
    assert report["model_test"]["joined"]["accuracy"] == round(
        float(np.mean([p.label == g for p, g in zip(original.predict(texts), gold)])), 4)
    accuracy = [r["test"]["joined"]["accuracy"] for r in report["runs"]]
    assert report["test_accuracy"]["min"] == min(accuracy) and report["test_accuracy"]["max"] == max(accuracy)
    head_alone = [r["test"]["head"]["accuracy"] for r in report["runs"]]
    assert report["head_test_accuracy"]["max"] == max(head_alone)
    recorded = [load_checkpoint(tmp_path / "out" / f"seed-{seed}").metrics["val_macro_f1"] for seed in (0, 1)]
    assert report["validation_macro_f1"]["head"]["min"] == round(min(recorded), 4)
    assert report["target"]["seeds_at_or_above"] == sum(a >= 0.5 for a in accuracy)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["runs"] == report["runs"]
    assert (tmp_path / "out" / "seeds.png").stat().st_size > 0


def test_a_teachers_probabilities_join_every_seeds_training_when_given(model, tmp_path):
    from finetune.data.soft_labels import SoftExample

    path, data, cache = model
    labels = sorted(data.labels)
    soft = [SoftExample("my card is gone again", {label: 1.0 / len(labels) for label in labels})]
    report = seed_spread(path, data, [3], tmp_path / "out", cache=cache, soft=soft)
    assert report["soft_examples"] == 1 and "target" not in report
    assert load_checkpoint(tmp_path / "out" / "seed-3").config["training"]["soft_examples"] == 1


def test_a_head_trained_with_its_own_adapter_is_refused(model, tmp_path):
    import shutil

    path, data, cache = model
    copy = tmp_path / "lora-model"
    shutil.copytree(path, copy)
    config = json.loads((copy / "config.json").read_text())
    config["settings"] = {"mode": "lora", "lora": {"r": 2, "alpha": 4}}
    (copy / "config.json").write_text(json.dumps(config))
    record_checksums(copy)
    with pytest.raises(ValueError, match="its own adapter"):
        seed_spread(copy, data, [0], tmp_path / "out", cache=cache)


def test_a_model_that_learnt_from_more_than_the_training_split_is_refused(model, tmp_path):
    from finetune.data.loaders import TextDataset, TextExample

    path, data, cache = model
    more = TextDataset(data.name, data.labels, [*data.train, TextExample("my card is gone again", data.train[0].label)],
                       data.validation, data.test)
    with pytest.raises(ValueError, match="added data"):
        seed_spread(path, more, [0], tmp_path / "out", cache=cache)


def test_the_command_says_what_is_wrong_without_a_traceback(tmp_path):
    with pytest.raises(SystemExit, match="^error: "):
        main([str(tmp_path / "no-such-model"), "--seeds", "1", "--out", str(tmp_path / "out")])
