"""Classification metrics on hand-checked examples."""

from __future__ import annotations

import numpy as np
import pytest

from eval import metrics


def test_accuracy_and_macro_f1():
    truth = ["a", "a", "b", "b"]
    pred = ["a", "b", "b", "b"]
    assert metrics.accuracy(truth, pred) == 0.75
    # F1(a) = 2/3 (p=1, r=.5), F1(b) = 0.8 (p=2/3, r=1)
    assert metrics.macro_f1(truth, pred) == pytest.approx((2 / 3 + 0.8) / 2)


def test_per_class_report_and_confusion_matrix():
    truth, pred = ["a", "a", "b", "c"], ["a", "b", "b", "b"]
    report = metrics.per_class_report(truth, pred, ["a", "b", "c"])
    assert report["a"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert report["c"]["f1"] == 0.0
    matrix = metrics.confusion_matrix(truth, pred, ["a", "b", "c"])
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_ece_is_zero_when_confidence_matches_accuracy_and_large_when_overconfident():
    assert metrics.expected_calibration_error(np.array([0.75] * 4), [True, True, True, False]) == pytest.approx(0.0)
    assert metrics.expected_calibration_error(np.array([1.0, 1.0]), [False, False]) == pytest.approx(1.0)
    probs = np.array([[0.9, 0.1], [0.6, 0.4]])  # max taken per row
    assert metrics.expected_calibration_error(probs, [True, False], n_bins=10) == pytest.approx((0.1 + 0.6) / 2)


def test_ece_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 confidences for 1 outcomes"):
        metrics.expected_calibration_error(np.array([0.5, 0.5]), [True])


def test_oos_metrics_count_abstentions_on_in_scope_queries_as_errors():
    truth = ["a", "b", "b", "out_of_scope", "out_of_scope", "out_of_scope", "out_of_scope"]
    pred = ["a", "out_of_scope", "b", "out_of_scope", "out_of_scope", "out_of_scope", "a"]
    result = metrics.oos_metrics(truth, pred)
    assert result["in_scope_accuracy"] == pytest.approx(2 / 3)
    assert result["oos_recall"] == 0.75
    assert result["in_scope_abstention_rate"] == pytest.approx(1 / 3)
    assert (result["n_in_scope"], result["n_out_of_scope"]) == (3, 4)


def test_summary_has_every_headline_number():
    summary = metrics.classification_summary(["a", "b"], ["a", "a"], ["a", "b"], probs=np.array([0.9, 0.8]))
    assert summary["accuracy"] == 0.5 and summary["n"] == 2
    assert set(summary) == {"n", "accuracy", "macro_f1", "ece", "per_class"}


def test_length_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        metrics.accuracy(["a", "b"], ["a"])
