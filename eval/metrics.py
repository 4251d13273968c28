"""Classification metrics: accuracy, macro-F1, per-class report, confusion matrix, calibration,
and out-of-scope metrics as Larson et al. (2019) report them.

Every function takes plain label sequences (or probability arrays), so any model can be scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

OUT_OF_SCOPE = "out_of_scope"


def accuracy(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Share of exact matches (0.0 for empty input)."""
    _same_length(y_true, y_pred)
    if len(y_true) == 0:
        return 0.0
    return float(np.mean([t == p for t, p in zip(y_true, y_pred)]))


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] | None = None) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: the true labels seen)."""
    from sklearn.metrics import f1_score

    _same_length(y_true, y_pred)
    labels = sorted(set(y_true)) if labels is None else list(labels)
    return float(f1_score(list(y_true), list(y_pred), labels=labels, average="macro", zero_division=0))


def per_class_report(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each label."""
    from sklearn.metrics import precision_recall_fscore_support

    _same_length(y_true, y_pred)
    p, r, f, s = precision_recall_fscore_support(
        list(y_true), list(y_pred), labels=list(labels), zero_division=0
    )
    return {
        label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, label in enumerate(labels)
    }


def confusion_matrix(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Counts ``[len(labels), len(labels)]``, rows true and columns predicted."""
    from sklearn.metrics import confusion_matrix as sk_confusion

    _same_length(y_true, y_pred)
    return sk_confusion(list(y_true), list(y_pred), labels=list(labels))


def expected_calibration_error(probs: np.ndarray, correct: Sequence[bool], n_bins: int = 15) -> float:
    """ECE (Guo et al. 2017): bin by confidence, average |accuracy - confidence| weighted by bin size.

    Args:
        probs: Confidence of each prediction ``[N]``, or class probabilities ``[N, C]`` (max taken).
        correct: Whether each prediction was right.
        n_bins: Equal-width confidence bins on [0, 1].
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    confidence = np.asarray(probs, dtype=float)
    confidence = confidence.max(-1) if confidence.ndim == 2 else confidence
    hits = np.asarray(correct, dtype=float)
    if confidence.shape != hits.shape:
        raise ValueError(f"{confidence.shape[0]} confidences for {hits.shape[0]} outcomes")
    if len(hits) == 0:
        return 0.0
    # Right-closed bins so confidence 1.0 lands in the last bin and 0.0 in the first.
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    error = 0.0
    for b in range(n_bins):
        members = bins == b
        if members.any():
            error += members.mean() * abs(hits[members].mean() - confidence[members].mean())
    return float(error)


def oos_metrics(y_true: Sequence[str], y_pred: Sequence[str], oos_label: str = OUT_OF_SCOPE) -> dict[str, Any]:
    """Larson et al. 2019: in-scope accuracy (abstaining on an in-scope query is an error) and
    out-of-scope recall (share of out-of-scope queries the model abstains on)."""
    _same_length(y_true, y_pred)
    in_scope = [(t, p) for t, p in zip(y_true, y_pred) if t != oos_label]
    out_scope = [p for t, p in zip(y_true, y_pred) if t == oos_label]
    abstained_in = sum(p == oos_label for _, p in in_scope)
    return {
        "in_scope_accuracy": float(np.mean([t == p for t, p in in_scope])) if in_scope else 0.0,
        "oos_recall": float(np.mean([p == oos_label for p in out_scope])) if out_scope else 0.0,
        "in_scope_abstention_rate": abstained_in / len(in_scope) if in_scope else 0.0,
        "n_in_scope": len(in_scope),
        "n_out_of_scope": len(out_scope),
    }


def classification_summary(
    y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], probs: np.ndarray | None = None
) -> dict[str, Any]:
    """Accuracy, macro-F1 (over ``labels``), per-class report and, given ``probs``, ECE."""
    summary: dict[str, Any] = {
        "n": len(y_true),
        "accuracy": accuracy(y_true, y_pred),
        "macro_f1": macro_f1(y_true, y_pred, labels),
    }
    if probs is not None:
        summary["ece"] = expected_calibration_error(probs, [t == p for t, p in zip(y_true, y_pred)])
    summary["per_class"] = per_class_report(y_true, y_pred, labels)
    return summary


def _same_length(a: Sequence[Any], b: Sequence[Any]) -> None:
    if len(a) != len(b):
        raise ValueError(f"got {len(a)} true labels but {len(b)} predictions")
