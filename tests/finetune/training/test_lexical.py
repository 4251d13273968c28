"""fit_lexical: a word n-gram part chosen on validation, saved in the checkpoint, read on every path."""

from __future__ import annotations

import json

import pytest
from text_data import tiny_intents

from finetune.data.loaders import DataError, TextDataset, TextExample
from finetune.models.classifier import TextClassifier
from finetune.models.encoder import FeatureCache
from finetune.models.heads import HeadConfig
from finetune.models.integrity import verify_checksums
from finetune.models.lexical import LexicalSettings
from finetune.models.passes import analyze
from finetune.training.classifier import ClassifierSpec, train_classifier
from finetune.training.lexical import fit_lexical
from finetune.training.trainer import TrainingArguments


@pytest.fixture()
def weak_model(base_encoder, tmp_path):
    """A sentiment-task linear head trained one short epoch: it leaves room for the words."""
    from finetune.models.integrity import record_checksums

    data = tiny_intents()
    args = TrainingArguments(epochs=1, batch_size=8, lr=1e-4, patience=5, progress=False)
    result = train_classifier(data, ClassifierSpec(task="sentiment", head=HeadConfig(kind="linear")), args,
                              base_encoder, tmp_path / "model", cache=FeatureCache(tmp_path / "cache"))
    record_checksums(result.path)
    return result.path, data


def test_the_part_is_chosen_on_validation_saved_and_read_by_every_path(weak_model, base_encoder):
    path, data = weak_model
    report = fit_lexical(path, data, LexicalSettings(min_df=1, c_grid=(10.0,)))
    assert report.written and report.weight > 0 and report.temperature > 0
    assert report.joined["macro_f1"] > report.head["macro_f1"]
    assert (report.train_examples, report.validation_examples) == (18, 6)
    assert json.loads((path / "metrics.json").read_text())["lexical"]["weight"] == report.weight
    assert verify_checksums(path)  # the new files are recorded, the manifest is whole
    model = TextClassifier.load(path, encoder=base_encoder)
    texts = ["someone stole my debit card", "how much money do I have", "wire money abroad"]
    features = base_encoder.encode(texts)
    with pytest.raises(ValueError, match="pass texts="):
        model.probabilities(features)
    by_predict = [p.label for p in model.predict(texts)]
    assert by_predict == [p.label for p in model.predict_features(features, texts)]
    assert by_predict == [a.sentiment.label for a in analyze(texts, encoder=base_encoder, sentiment=model)]
    head_only = model.head_probabilities(features)
    assert not (model.probabilities(features, texts=texts) == head_only).all()


def test_a_feature_cache_serves_the_validation_pass_and_changes_nothing(weak_model, tmp_path):
    path, data = weak_model
    settings = LexicalSettings(min_df=1, c_grid=(10.0,))
    plain = fit_lexical(path, data, settings)
    cache = FeatureCache(tmp_path / "lexical-cache")
    cached = fit_lexical(path, data, settings, cache=cache)
    assert list((tmp_path / "lexical-cache").glob("*.safetensors"))  # the pass went through the cache
    assert (cached.c, cached.weight, cached.temperature, cached.joined) == (plain.c, plain.weight, plain.temperature,
                                                                           plain.joined)


def test_no_weight_that_helps_means_no_part_and_an_old_one_is_removed(weak_model):
    path, data = weak_model
    assert fit_lexical(path, data, LexicalSettings(min_df=1, c_grid=(10.0,))).written
    report = fit_lexical(path, data, LexicalSettings(min_df=1, c_grid=(10.0,), weight_grid=(0.0,)))
    assert not report.written and report.weight == 0.0
    assert not (path / "lexical.json").exists() and verify_checksums(path)
    assert TextClassifier.load(path).lexical is None


def test_data_the_model_does_not_know_or_no_validation_is_refused(weak_model):
    path, data = weak_model
    odd = TextDataset("odd", ["weather"], [TextExample("rain", "weather")], [TextExample("sun", "weather")], [])
    with pytest.raises(DataError, match="does not know"):
        fit_lexical(path, odd)
    with pytest.raises(DataError, match="no validation"):
        fit_lexical(path, TextDataset("tiny", data.labels, data.train, [], data.test))


def test_a_classifier_that_abstains_is_refused(base_encoder, tmp_path):
    from text_data import tiny_oos

    args = TrainingArguments(epochs=1, batch_size=8, lr=1e-3, patience=5, progress=False)
    result = train_classifier(tiny_intents(), ClassifierSpec(task="intents", head=HeadConfig(kind="linear")), args,
                              base_encoder, tmp_path / "model", oos=tiny_oos(), cache=FeatureCache(tmp_path / "cache"))
    with pytest.raises(DataError, match="abstains"):
        fit_lexical(result.path, tiny_intents())


def test_training_a_new_head_into_the_folder_drops_the_old_part(weak_model, base_encoder, tmp_path, caplog):
    path, data = weak_model
    assert fit_lexical(path, data, LexicalSettings(min_df=1, c_grid=(10.0,))).written
    args = TrainingArguments(epochs=1, batch_size=8, lr=1e-3, patience=5, progress=False)
    train_classifier(data, ClassifierSpec(task="sentiment", head=HeadConfig(kind="linear")), args, base_encoder, path,
                     cache=FeatureCache(tmp_path / "cache2"))
    assert not (path / "lexical.json").exists() and "word n-gram part" in caplog.text
    assert TextClassifier.load(path).lexical is None and verify_checksums(path)


def test_removing_the_part_keeps_watch_over_the_other_files(weak_model):
    from finetune.models.checkpoint import CheckpointError
    from finetune.models.lexical import remove_lexical

    path, data = weak_model
    assert fit_lexical(path, data, LexicalSettings(min_df=1, c_grid=(10.0,))).written
    (path / "labels.json").write_text('["x", "y", "z"]')  # corrupted meanwhile
    assert remove_lexical(path)
    assert "lexical" not in json.loads((path / "metrics.json").read_text())
    with pytest.raises(CheckpointError, match="labels.json does not match"):
        verify_checksums(path)


def test_calibrating_a_model_with_a_part_is_refused(weak_model, base_encoder):
    from eval.calibration import fit_calibration
    from eval.classification import EvalData

    path, data = weak_model
    assert fit_lexical(path, data, LexicalSettings(min_df=1, c_grid=(10.0,))).written
    model = TextClassifier.load(path, encoder=base_encoder)
    with pytest.raises(ValueError, match="--remove"):
        fit_calibration(model, EvalData("tiny", "validation", data.validation, []), "exact")
