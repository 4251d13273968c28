"""Evaluate an entity tagger: entity-level precision, recall and F1 per type, and a JSON report.

Spans are matched with seqeval's strict IOB2 mode: an entity counts only when its type and both
edges are right. Gold and predicted entities are both written as BIO tags over the same words
(:func:`finetune.data.tagging.words_with_offsets`), so a predicted span is judged on exactly the words
the gold one covers, whatever the encoder's truncation did.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.reports import plot_bars, plot_training_curves, write_report
from finetune.models.tagger import Entity, EntityTagger
from finetune.models.tagger_ensemble import TaggerEnsemble
from finetune.data.tagging import recorded_data_warnings
from finetune.data.tagging import Span, TaggedExample, spans_to_bio


def entity_report(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Per-type and averaged precision/recall/F1/support from BIO tag sequences (strict IOB2).

    Returns:
        ``{"per_type": {type: {...}}, "micro": {...}, "macro": {...}}``, each
        ``{precision, recall, f1, support}``; types with no gold and no predicted entity are absent.
    """
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    if len(gold) != len(predicted) or any(len(g) != len(p) for g, p in zip(gold, predicted)):
        raise ValueError("gold and predicted tags must have the same sentences and lengths")
    table = classification_report(
        [list(g) for g in gold], [list(p) for p in predicted], mode="strict", scheme=IOB2,
        output_dict=True, zero_division=0,
    )

    def row(values: dict[str, Any]) -> dict[str, Any]:
        return {"precision": float(values["precision"]), "recall": float(values["recall"]),
                "f1": float(values["f1-score"]), "support": int(values["support"])}

    averages = {"micro avg": "micro", "macro avg": "macro"}
    report: dict[str, Any] = {"per_type": {}}
    for name, values in table.items():
        if name in averages:
            report[averages[name]] = row(values)
        elif name != "weighted avg":
            report["per_type"][name] = row(values)
    empty = {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    report.setdefault("micro", empty)
    report.setdefault("macro", empty)
    return report


def entities_to_tags(text: str, entities: Sequence[Entity]) -> list[str]:
    """BIO tags over ``words_with_offsets(text)`` for predicted entities."""
    return spans_to_bio(text, [Span(e.start, e.end, e.type) for e in entities])[1]


def evaluate_tagger(
    tagger: EntityTagger | TaggerEnsemble,
    examples: Sequence[TaggedExample],
    *,
    out: str | Path | None = None,
    name: str = "",
    backend: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score ``tagger`` on ``examples``; with ``out``, write ``report.json`` and PNG plots there.

    Gold spans that cannot be written as BIO tags (overlapping, off word boundaries) are left out
    and counted in ``skipped_gold_spans``, never silently relabelled.
    """
    if not examples:
        raise ValueError("no examples to evaluate")
    if backend is not None:
        tagger.set_backend(backend)
    start = time.perf_counter()
    predicted_entities = tagger.predict([ex.text for ex in examples], progress=progress)
    seconds = time.perf_counter() - start
    with recorded_data_warnings() as skipped:
        gold = [spans_to_bio(ex.text, ex.spans)[1] for ex in examples]
    predicted = [entities_to_tags(ex.text, found) for ex, found in zip(examples, predicted_entities)]
    report = {
        "task": "ner",
        "model": str(tagger.checkpoint.path),
        "data": name,
        "examples": len(examples),
        "skipped_gold_spans": len(skipped),
        "seconds": seconds,
        **entity_report(gold, predicted),
    }
    if out is not None:
        folder = Path(out)
        write_report(folder, "report", report)
        f1 = {kind: row["f1"] for kind, row in report["per_type"].items()}
        if f1:
            plot_bars(f1, folder / "f1_per_type.png", "entity F1", "entity F1 per type")
        history = tagger.checkpoint.metrics.get("history")
        if history:
            plot_training_curves(history, folder / "training_curves.png", "entity tagger training")
    return report


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table: one row per entity type, then micro and macro averages."""
    lines = [f"{'type':<20} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}"]
    rows = sorted(report["per_type"].items()) + [("micro avg", report["micro"]), ("macro avg", report["macro"])]
    for name, row in rows:
        lines.append(f"{name:<20} {row['precision']:>9.4f} {row['recall']:>7.4f} {row['f1']:>7.4f} {row['support']:>8d}")
    lines.append(f"{report['examples']} examples, entity micro-F1 {report['micro']['f1']:.4f}")
    if report.get("skipped_gold_spans"):
        lines.append(f"{report['skipped_gold_spans']} gold span(s) could not be tagged and were left out")
    return "\n".join(lines)
