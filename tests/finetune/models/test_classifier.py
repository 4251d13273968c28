"""TextClassifier: training on tiny data (frozen and LoRA), loading, predicting, abstaining."""

from __future__ import annotations

import json

import pytest
import torch
from text_data import tiny_intents, tiny_oos

from finetune.models.checkpoint import CheckpointError
from finetune.models.classifier import Prediction, TextClassifier
from finetune.models.lora import LoraSettings
from finetune.training.classifier import ClassifierSpec, train_classifier
from finetune.data.loaders import OUT_OF_SCOPE
from finetune.models.encoder import FeatureCache
from finetune.models.heads import HeadConfig
from finetune.quantum.ansatz import AnsatzConfig
from finetune.training.trainer import TrainingArguments

SMALL_HYBRID = HeadConfig(kind="hybrid", n_circuits=1, ansatz=AnsatzConfig(n_qubits=3, depth=1, encoding="amplitude"))


def _args(epochs: int = 15, **kw) -> TrainingArguments:
    return TrainingArguments(epochs=epochs, batch_size=8, lr=0.02, patience=20, progress=False, **kw)


@pytest.fixture(scope="module")
def trained(base_encoder, tmp_path_factory):
    """A hybrid intent model with an out_of_scope class and threshold, trained once."""
    out = tmp_path_factory.mktemp("model")
    cache = FeatureCache(tmp_path_factory.mktemp("cache"))
    spec = ClassifierSpec(task="intents", head=SMALL_HYBRID)
    return train_classifier(tiny_intents(), spec, _args(), base_encoder, out, oos=tiny_oos(), cache=cache,
                            command="agent finetune intents --out x")


def test_training_writes_a_loadable_checkpoint_with_threshold(trained, base_encoder):
    config = json.loads((trained.path / "config.json").read_text())
    assert config["task"] == "intents" and config["command"] == "agent finetune intents --out x"
    assert 0.0 <= config["settings"]["threshold"] < 1.0
    assert config["settings"]["mode"] == "frozen"
    assert json.loads((trained.path / "labels.json").read_text()) == ["balance", "card_lost", "out_of_scope", "transfer"]
    loaded = TextClassifier.load(trained.path, encoder=base_encoder)
    assert loaded.uses_frozen_encoder and loaded.threshold == config["settings"]["threshold"]
    assert loaded.labels == trained.classifier.labels and loaded.task == "intents"


def test_predict_returns_labels_confidences_and_probabilities(trained):
    predictions = trained.classifier.predict(["I have lost my card", "what's my balance", "transfer money to anna"])
    assert [p.label for p in predictions] == ["card_lost", "balance", "transfer"]
    for p in predictions:
        assert isinstance(p, Prediction)
        assert p.confidence == pytest.approx(max(p.probs.values()))
        assert sum(p.probs.values()) == pytest.approx(1.0, abs=1e-5)


def test_predict_features_matches_predict(trained, base_encoder):
    texts = ["check my balance", "send money"]
    from_texts = trained.classifier.predict(texts)
    from_features = trained.classifier.predict_features(base_encoder.encode(texts))
    assert [p.label for p in from_texts] == [p.label for p in from_features]
    assert from_texts[0].confidence == pytest.approx(from_features[0].confidence, abs=1e-5)


def test_empty_and_very_long_texts_do_not_crash(trained, caplog):
    predictions = trained.classifier.predict(["", "money " * 2000])
    assert len(predictions) == 2
    assert "truncated" in caplog.text


def test_below_threshold_means_out_of_scope(trained):
    classifier = trained.classifier
    probs = torch.full((1, len(classifier.labels)), 1 / len(classifier.labels)).numpy()
    classifier.threshold = 0.9
    try:
        assert classifier.decide(probs) == [OUT_OF_SCOPE]
    finally:
        classifier.threshold = trained.metrics["threshold"]


def test_abstains_on_out_of_scope_queries(trained):
    labels = [p.label for p in trained.classifier.predict(["what's the weather tomorrow", "tell me a joke"])]
    assert labels.count(OUT_OF_SCOPE) >= 1


def test_predict_rejects_a_bare_string(trained):
    with pytest.raises(TypeError, match="list of texts"):
        trained.classifier.predict("I lost my card")


def test_wrong_feature_width_is_a_clear_error(trained):
    with pytest.raises(ValueError, match=r"features must be \[N, 384\]"):
        trained.classifier.predict_features(torch.zeros(2, 10))


def test_sentiment_model_without_oos_has_no_threshold(base_encoder, tmp_path):
    spec = ClassifierSpec(task="sentiment", head=HeadConfig(kind="linear"))
    done = train_classifier(tiny_intents(), spec, _args(3), base_encoder, tmp_path / "m", cache=FeatureCache(tmp_path))
    assert done.classifier.threshold is None and done.classifier.task == "sentiment"
    assert OUT_OF_SCOPE not in done.classifier.labels


def test_lora_training_saves_an_adapter_and_needs_its_own_encoder_pass(encoder, base_encoder, tmp_path):
    spec = ClassifierSpec(task="intents", head=HeadConfig(kind="linear"), lora=LoraSettings(r=2, alpha=4))
    done = train_classifier(tiny_intents(), spec, _args(1, ), encoder, tmp_path / "lora")
    assert (tmp_path / "lora" / "adapter" / "adapter_model.safetensors").is_file()
    loaded = TextClassifier.load(tmp_path / "lora", encoder=base_encoder)
    assert not loaded.uses_frozen_encoder
    assert not base_encoder.has_adapter  # the shared encoder is left alone
    assert len(loaded.predict(["I lost my card"])) == 1
    with pytest.raises(ValueError, match="LoRA adapter"):
        loaded.predict_features(torch.zeros(1, 384))
    assert done.metrics["best_epoch"] == 1


def test_missing_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="model directory not found"):
        TextClassifier.load(tmp_path / "nope")


def test_a_model_with_nan_weights_is_refused_before_it_scores_anything(tmp_path, intents_csv):
    """Before, such a model answered every text with NaN confidence and `agent eval intents` passed at accuracy 0."""
    from typer.testing import CliRunner

    from agent.cli import app
    from finetune.models.checkpoint import save_checkpoint
    from finetune.models.heads import Head

    head = Head(HeadConfig(kind="linear", in_features=384, n_classes=2))
    with torch.no_grad():
        head.linear.bias[1] = float("nan")
    path = save_checkpoint(tmp_path / "nan", task="intents", head=head, labels=["balance", "card_lost"], encoder={})
    with pytest.raises(CheckpointError, match=r"head\.safetensors: tensor 'linear\.bias' holds NaN"):
        TextClassifier.load(path)
    result = CliRunner().invoke(app, ["eval", "intents", str(path), "--data", str(intents_csv), "--json"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "linear.bias' holds NaN" in lines[0], result.output
