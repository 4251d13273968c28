"""evaluate_classifier: numbers, out-of-scope metrics, report files, subsampling, bad labels."""

from __future__ import annotations

import json

import pytest
from text_data import tiny_intents, tiny_oos

from eval.classification import EvalData, evaluate_classifier, format_report
from finetune.training.classifier import ClassifierSpec, train_classifier
from finetune.data.loaders import DataError, TextExample
from finetune.models.encoder import FeatureCache
from finetune.models.heads import HeadConfig
from finetune.quantum.ansatz import AnsatzConfig
from finetune.training.trainer import TrainingArguments

# Accuracy of the shipped frozen-feature sentiment model on valid.csv, less a small margin.
CHAT_SENTIMENT_FLOOR = 0.79


@pytest.fixture(scope="module")
def model(base_encoder, tmp_path_factory):
    head = HeadConfig(kind="hybrid", n_circuits=1, ansatz=AnsatzConfig(n_qubits=2, depth=1, encoding="amplitude"))
    args = TrainingArguments(epochs=10, batch_size=8, lr=0.02, patience=20, progress=False)
    done = train_classifier(tiny_intents(), ClassifierSpec(head=head), args, base_encoder,
                            tmp_path_factory.mktemp("m"), oos=tiny_oos(),
                            cache=FeatureCache(tmp_path_factory.mktemp("cache")))
    return done.classifier


def _data(with_oos: bool = True) -> EvalData:
    dataset = tiny_intents()
    return EvalData("tiny", "test", dataset.test, tiny_oos().test if with_oos else [])


def test_report_has_scores_oos_metrics_and_files(model, tmp_path):
    report = evaluate_classifier(model, _data(), out=tmp_path)
    assert report["n"] == 6
    assert 0.0 <= report["accuracy"] <= 1.0 and 0.0 <= report["ece"] <= 1.0
    assert "accuracy_without_oos" in report and report["threshold"] == model.threshold
    assert report["oos"]["n_out_of_scope"] == 2 and report["oos"]["n_in_scope"] == 6
    assert set(report["per_class"]) == {"balance", "card_lost", "transfer"}
    for name in ("report.json", "confusion_matrix.png", "training_curves.png"):
        assert (tmp_path / name).is_file(), name
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["accuracy"] == report["accuracy"] and len(saved["confusion_matrix"]) == len(saved["confusion_labels"])
    assert "in-scope accuracy" in format_report(report)


def test_limit_scores_a_seeded_subsample(model):
    first = evaluate_classifier(model, _data(False), limit=4, seed=3)
    again = evaluate_classifier(model, _data(False), limit=4, seed=3)
    assert first["n"] == 4 and first["accuracy"] == again["accuracy"]
    with pytest.raises(ValueError, match="limit must be a positive"):
        evaluate_classifier(model, _data(False), limit=0)


def test_labels_unknown_to_the_model_are_a_clear_error(model):
    data = EvalData("other", "test", [TextExample("hello", "greeting")], [])
    with pytest.raises(DataError, match="labels the model does not know: 'greeting'"):
        evaluate_classifier(model, data)


def test_backend_runs_the_same_head_on_aer(model):
    exact = evaluate_classifier(model, _data(False), limit=3)
    aer = evaluate_classifier(model, _data(False), limit=3, backend="aer")
    assert aer["backend"] == "aer" and aer["accuracy"] == pytest.approx(exact["accuracy"])
    model.set_backend("exact")


# The shipped models on the full reference data (slow: one encoder pass over each test set).
@pytest.mark.slow
def test_shipped_intents_model_scores_on_banking77_and_clinc_oos(data_dir, base_encoder):
    from eval.classification import load_eval_data
    from agent.shipped import INTENTS_MODEL
    from finetune.models.classifier import TextClassifier

    classifier = TextClassifier.load(INTENTS_MODEL, encoder=base_encoder)
    data = load_eval_data("intents", "banking77", "test", data_dir=data_dir, oos_source="clinc150")
    report = evaluate_classifier(classifier, data, cache=FeatureCache())
    assert report["n"] == 3080
    # Shipped LoRA + hybrid model measured 0.9373 / 0.9364 / 0.964 (BENCHMARKS.md); issue 3 targets.
    assert report["accuracy_without_oos"] >= 0.93
    assert report["oos"]["in_scope_accuracy"] >= 0.92  # abstentions on in-scope queries count as errors
    assert report["oos"]["oos_recall"] >= 0.70


@pytest.mark.slow
def test_shipped_sentiment_model_scores_on_fin_tweets_valid(data_dir, base_encoder):
    from eval.classification import load_eval_data
    from agent.shipped import SENTIMENT_MODEL
    from finetune.models.ensemble import ClassifierEnsemble
    from finetune.models.loading import load_classifier

    classifier = load_classifier(SENTIMENT_MODEL, task="sentiment", encoder=base_encoder)
    assert isinstance(classifier, ClassifierEnsemble)  # two LoRA models, probabilities averaged
    data = load_eval_data("sentiment", "fin_tweets", "test", data_dir=data_dir)
    report = evaluate_classifier(classifier, data, cache=FeatureCache())
    assert report["n"] == 2388  # rows of valid.csv
    # Issue 4's target; measured 0.8853 (BENCHMARKS.md). Members and weights were chosen on the
    # validation split carved from train, never on valid.csv.
    assert report["accuracy"] >= 0.88
    labels = [p.label for p in classifier.predict(["Shares of Acme plunge after profit warning",
                                                   "Acme beats estimates and raises full-year guidance"])]
    assert labels == ["negative", "positive"]


@pytest.mark.slow
def test_chat_sentiment_model_scores_on_fin_tweets_valid(data_dir, base_encoder):
    from agent.shipped import CHAT_SENTIMENT_MODEL as CHAT_SENTIMENT_DIR
    from eval.classification import load_eval_data
    from finetune.models.classifier import TextClassifier

    classifier = TextClassifier.load(CHAT_SENTIMENT_DIR, encoder=base_encoder)
    data = load_eval_data("sentiment", "fin_tweets", "test", data_dir=data_dir)
    report = evaluate_classifier(classifier, data, cache=FeatureCache())
    # The assistant's frozen-feature model (no encoder pass of its own): measured 0.8086.
    assert report["n"] == 2388 and report["accuracy"] >= CHAT_SENTIMENT_FLOOR


@pytest.mark.slow
def test_news_sentiment_model_scores_on_fin_tweets_valid(data_dir, base_encoder):
    from agent.monitor.scoring import NEWS_SENTIMENT_DIR
    from eval.classification import load_eval_data
    from finetune.models.classifier import TextClassifier

    classifier = TextClassifier.load(NEWS_SENTIMENT_DIR, encoder=base_encoder)
    report = evaluate_classifier(classifier, load_eval_data("sentiment", "fin_tweets", "test", data_dir=data_dir),
                                 cache=FeatureCache())
    # The monitor's model, trained with the news tagger and topics on one adapter: measured 0.8710
    # (BENCHMARKS.md, News topics: a tenth joint run).
    assert report["n"] == 2388 and report["accuracy"] >= 0.85


def test_weakest_classes_leave_out_classes_without_test_examples():
    per_class = {"balance": {"f1": 0.5, "support": 4}, "card_lost": {"f1": 0.0, "support": 0},
                 "transfer": {"f1": 0.9, "support": 3}}
    report = {"task": "intents", "model": "m", "data": "tiny", "split": "test", "n": 7, "backend": "exact",
              "accuracy": 0.7, "macro_f1": 0.7, "ece": 0.1, "per_class": per_class}
    (line,) = [line for line in format_report(report).splitlines() if "weakest classes" in line]
    assert line.strip() == "weakest classes: balance 0.50, transfer 0.90"
    per_class["balance"]["support"] = per_class["transfer"]["support"] = 0
    assert "weakest classes" not in format_report(report)
