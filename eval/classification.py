"""Evaluate a text classifier (intents, sentiment) on a data split and write its report.

Writes ``report.json``, ``confusion_matrix.png`` and, when the checkpoint recorded its training
history, ``training_curves.png`` into the output folder. ``backend`` runs the head's circuits
elsewhere (e.g. ``aer:noise=fake_sherbrooke,shots=1024``), usually on a ``limit``-ed subsample,
since sampled and noisy simulation is orders of magnitude slower than the exact simulator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval import metrics
from eval.reports import plot_confusion_matrix, plot_training_curves, write_report
from finetune.models.classifier import TextClassifier
from finetune.data.loaders import OUT_OF_SCOPE, DataError, TextExample, load_intents, load_sentiment
from finetune.data.loaders import load_topics, read_topic_names
from finetune.models.encoder import FeatureCache
from eval.news_sentences import NEWS_SETS, load_news_sentences

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class EvalData:
    """Examples to score; ``oos`` are out-of-scope queries scored beside them (intents only)."""

    name: str
    split: str
    examples: list[TextExample]
    oos: list[TextExample]


def load_eval_data(
    task: str,
    source: str,
    split: str = "test",
    *,
    data_dir: str | Path | None = None,
    text_column: str = "text",
    label_column: str = "label",
    oos_source: str | None = None,
    val_fraction: float = 0.1,
    topic_names: Path | None = None,
) -> EvalData:
    """Load one split of ``source`` for ``task``, plus the matching out-of-scope split when asked;
    ``val_fraction`` is the share carved for a validation split the source lacks (as in training);
    ``topic_names`` is a ``labels.json`` naming the topic ids of a topics source (default: fin_topics')."""
    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    if task == "sentiment" and source.lower() in NEWS_SETS:
        # A news set is a test set as a whole: nothing of it is carved off for training or validation.
        if split != "test" or oos_source is not None:
            raise DataError(f"--data {source} is one test set; use --split test and no --oos-data")
        return EvalData(source.lower(), split, load_news_sentences(source.lower()), [])
    if task == "topics":
        names = read_topic_names(topic_names) if topic_names is not None else None
        dataset = load_topics(source, data_dir=data_dir, text_column=text_column, label_column=label_column,
                              val_fraction=val_fraction, topic_names=names)
    else:
        loader = load_intents if task == "intents" else load_sentiment
        dataset = loader(source, data_dir=data_dir, text_column=text_column, label_column=label_column,
                         val_fraction=val_fraction)
    oos: list[TextExample] = []
    if oos_source is not None:
        from finetune.data.oos import clinc_oos_examples

        clinc = load_intents(oos_source, data_dir=data_dir)
        oos = getattr(clinc_oos_examples(clinc, data_dir=data_dir), split)
    return EvalData(dataset.name, split, list(getattr(dataset, split)), oos)


def evaluate_classifier(
    classifier: TextClassifier,
    data: EvalData,
    *,
    out: str | Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    backend: str | None = None,
    cache: FeatureCache | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score ``classifier`` on ``data``; write the report and plots to ``out`` when given.

    Args:
        classifier: A loaded model.
        data: Examples (and out-of-scope examples) to score.
        out: Folder for ``report.json`` and the PNG plots.
        limit: Score a seeded random subsample of at most this many examples (and as many
            out-of-scope ones).
        seed: Seed of the subsample.
        backend: Run the head's circuits on this backend (the encoder always runs in torch).
        cache: Feature cache for the encoder pass (frozen models).
        progress: Show a progress bar while encoding.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be a positive number of examples, got {limit}")
    examples, oos = _subsample(data.examples, limit, seed), _subsample(data.oos, limit, seed)
    if not examples:
        raise DataError(f"{data.name} {data.split}: no examples to evaluate")
    unknown = sorted({ex.label for ex in examples} - set(classifier.labels))
    if unknown:
        shown = ", ".join(map(repr, unknown[:5]))
        raise DataError(f"{data.name} {data.split} has labels the model does not know: {shown}; wrong --data or model?")
    everything = examples + oos
    features = classifier.encode([ex.text for ex in everything], cache=cache, progress=progress)
    if backend is not None:
        classifier.set_backend(backend)
    start = time.perf_counter()
    probs = classifier.probabilities(features, texts=[ex.text for ex in everything])
    head_seconds = time.perf_counter() - start
    y_true = [ex.label for ex in everything]
    y_pred = classifier.decide(probs)
    labels = classifier.labels
    argmax = [labels[i] for i in probs.argmax(-1)]
    n_in = len(examples)
    report: dict[str, Any] = {
        "task": classifier.task,
        "model": str(classifier.checkpoint.path),
        "data": data.name,
        "split": data.split,
        "backend": backend or "exact",
        "limit": limit,
        "threshold": classifier.threshold,
        "head_seconds": head_seconds,
        "calibration": _calibration_summary(classifier, probs[:n_in], y_true[:n_in], argmax[:n_in]),
    }
    in_labels = [label for label in labels if label != OUT_OF_SCOPE]
    summary = metrics.classification_summary(y_true[:n_in], y_pred[:n_in], in_labels)
    # Macro-F1 over the classes present: a --limit subsample lacks some, which would count as 0.
    summary["macro_f1"] = metrics.macro_f1(y_true[:n_in], y_pred[:n_in])
    summary["ece"] = metrics.expected_calibration_error(
        probs[:n_in], [t == p for t, p in zip(y_true[:n_in], argmax[:n_in])]
    )
    per_class = summary.pop("per_class")
    report.update(summary)
    if OUT_OF_SCOPE in labels:
        # The same model with the out-of-scope machinery switched off: argmax over in-scope labels.
        in_columns = [i for i, label in enumerate(labels) if label != OUT_OF_SCOPE]
        plain = [in_labels[i] for i in probs[:n_in][:, in_columns].argmax(-1)]
        report["accuracy_without_oos"] = metrics.accuracy(y_true[:n_in], plain)
    if oos:
        report["oos"] = metrics.oos_metrics(y_true, y_pred)
    report["per_class"] = per_class
    if out is not None:
        report["files"] = _write_files(Path(out), classifier, y_true, y_pred, labels, report)
    return report


def format_report(report: dict[str, Any]) -> str:
    """A few human-readable lines (the JSON report has everything)."""
    lines = [
        f"{report['task']} model {report['model']} on {report['data']} {report['split']} "
        f"({report['n']} examples, backend {report['backend']})",
        f"  accuracy {report['accuracy']:.4f}   macro-F1 {report['macro_f1']:.4f}   ECE {report['ece']:.4f}",
    ]
    if "accuracy_without_oos" in report:
        lines.append(f"  accuracy without out-of-scope machinery {report['accuracy_without_oos']:.4f}"
                     f"   threshold {report['threshold']}")
    if report.get("calibration"):
        cal = report["calibration"]
        lines.append(f"  calibrated for {cal['backend']}: temperature {cal['temperature']:.3f}, threshold "
                     f"{cal['threshold']} (ECE without it {cal['ece_uncalibrated']:.4f})")
        if cal.get("head_weights"):
            lines.append(f"  output layers retrained for its noise on {cal['adapted_on']} training queries "
                         f"({cal['head_weights']})")
    if "oos" in report:
        oos = report["oos"]
        lines.append(f"  in-scope accuracy {oos['in_scope_accuracy']:.4f}   out-of-scope recall "
                     f"{oos['oos_recall']:.4f} ({oos['n_out_of_scope']} out-of-scope queries)")
    # A class with no test example (support 0, e.g. under --limit) has F1 0 by convention, not by mistake.
    scored = [(name, row) for name, row in report["per_class"].items() if row.get("support", 1) > 0]
    worst = sorted(scored, key=lambda item: item[1]["f1"])[:5]
    if worst:
        lines.append("  weakest classes: " + ", ".join(f"{name} {row['f1']:.2f}" for name, row in worst))
    for name, path in report.get("files", {}).items():
        lines.append(f"  {name}: {path}")
    return "\n".join(lines)


def _calibration_summary(classifier: TextClassifier, probs: np.ndarray, y_true: list[str],
                         argmax: list[str]) -> dict[str, Any] | None:
    """The calibration the scores used (None without one), with the ECE the raw softmax would have had."""
    found = getattr(classifier, "calibration", None)  # ensembles have none
    if found is None:
        return None
    if getattr(classifier, "lexical", None) is not None:  # joined probabilities: the head's raw ones cannot be recovered
        return {"backend": found.backend, "temperature": found.temperature, "threshold": classifier.threshold,
                "fitted": found.date, "ece_uncalibrated": None}
    # softmax(T * log softmax(z / T)) = softmax(z): the raw probabilities, without another head pass.
    logp = np.log(np.clip(probs.astype(np.float64), 1e-300, None)) * found.temperature
    raw = np.exp(logp - logp.max(-1, keepdims=True))
    raw /= raw.sum(-1, keepdims=True)
    return {"backend": found.backend, "temperature": found.temperature, "threshold": classifier.threshold,
            "fitted": found.date, "fit_data": found.data, "fit_n": found.n,
            "head_weights": found.head_weights, "adapted_on": found.adapted_on,
            "ece_uncalibrated": metrics.expected_calibration_error(raw, [t == p for t, p in zip(y_true, argmax)])}


def _write_files(
    out: Path, classifier: TextClassifier, y_true: list[str], y_pred: list[str], labels: list[str],
    report: dict[str, Any],
) -> dict[str, str]:
    # Predictions of out_of_scope appear as a column even for models without that class.
    shown = labels + ([OUT_OF_SCOPE] if OUT_OF_SCOPE in y_pred and OUT_OF_SCOPE not in labels else [])
    matrix = metrics.confusion_matrix(y_true, y_pred, shown)
    files = {
        "report": str(out / "report.json"),
        "confusion_matrix": str(plot_confusion_matrix(matrix, shown, out / "confusion_matrix.png",
                                                      title=f"{report['task']}: {report['data']} {report['split']}")),
    }
    history = classifier.checkpoint.metrics.get("history")
    if history:
        files["training_curves"] = str(plot_training_curves(history, out / "training_curves.png"))
    report_with_matrix = {**report, "files": files, "confusion_labels": shown, "confusion_matrix": matrix}
    write_report(out, "report", report_with_matrix)
    return files


def _subsample(examples: list[TextExample], limit: int | None, seed: int) -> list[TextExample]:
    if limit is None or len(examples) <= limit:
        return list(examples)
    chosen = np.sort(np.random.default_rng(seed).choice(len(examples), size=limit, replace=False))
    return [examples[i] for i in chosen]
