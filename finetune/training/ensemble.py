"""Build an ensemble from trained members and score it: ``agent finetune ensemble``.

Classifiers (same labels) average their class probabilities; entity taggers (same tags) average
their word probabilities and get a tag-transition prior of their own, fitted on the training data
(weight chosen on validation, or given). Members and ensemble are scored on the validation split,
carved from train as in training; the test split is never read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune.data.folds import other_folds, parse_folds
from finetune.data.loaders import load_entities, text_loader
from finetune.data.tagging import recorded_data_warnings
from finetune.errors import SettingError
from finetune.models.checkpoint import read_json
from finetune.models.ensemble import ClassifierEnsemble, record_metrics, save_ensemble, validation_scores
from finetune.models.loading import model_task
from finetune.models.tagger_ensemble import TaggerEnsemble, save_tagger_ensemble, validation_f1
from finetune.training.tagger import fit_decoding


@dataclass(frozen=True)
class EnsembleData:
    """The data whose validation split scores an ensemble (and, for taggers, fits its prior).

    Attributes:
        data: ``auto`` (what the first member was trained on), a data set name or file, or ``none``.
        data_dir, text_column, label_column, val_fraction, seed: As in training.
        train_folds: Taggers on NLU++: the folds validation is carved from, as in training.
    """

    data: str = "auto"
    data_dir: Path | None = None
    text_column: str = "text"
    label_column: str = "label"
    val_fraction: float = 0.1
    seed: int = 0
    train_folds: str = "0-17"

    def resolved(self, first_member: Path) -> str:
        """``data``, with ``auto`` read from the first member's training record."""
        if self.data != "auto":
            return self.data
        return str(read_json(first_member / "config.json").get("training", {}).get("data") or "none")


def parse_weights(text: str | None) -> list[float] | None:
    """``--weights`` as numbers (None: equal weights)."""
    if text is None:
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise SettingError("weights", f"--weights must be numbers separated by commas, got {text!r}") from None


def build_ensemble(members: Sequence[Path], out: Path, *, weights: list[float] | None = None,
                   data: EnsembleData = EnsembleData(), prior_weight: float | None = None,
                   command: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Write an ensemble of ``members`` to ``out``, score it, and return a summary (JSON-ready).

    Classifiers or taggers, as the first member's task says; ``prior_weight`` is for taggers.
    """
    if members and model_task(members[0]) == "ner":
        return _tagger_ensemble(members, out, weights, data, prior_weight, command, progress)
    folder = save_ensemble(members, out, weights=weights, command=command)
    model = ClassifierEnsemble.load(folder)
    summary: dict[str, Any] = {"model": str(folder), "task": model.task, "members": model.checkpoint.members,
                               "weights": model.weights}
    name = data.resolved(Path(members[0]))
    if name != "none":
        dataset = text_loader(model.task)(name, data_dir=data.data_dir, text_column=data.text_column,
                                          label_column=data.label_column, val_fraction=data.val_fraction, seed=data.seed)
        held_out = dataset.validation
        scores = validation_scores(model, [ex.text for ex in held_out], [ex.label for ex in held_out], progress=progress)
        summary["validation"] = {"data": dataset.name, "val_fraction": data.val_fraction, "seed": data.seed, **scores}
        record_metrics(folder, {"validation": summary["validation"]})
    return summary


def _tagger_ensemble(members: Sequence[Path], out: Path, weights: list[float] | None, data: EnsembleData,
                     prior_weight: float | None, command: str | None, progress: bool) -> dict[str, Any]:
    """Taggers: average word probabilities, fit the ensemble's prior on validation (or take
    ``prior_weight``), and score members and ensemble there."""
    name = data.resolved(Path(members[0]))
    if name == "none":
        raise SettingError("data", "taggers need their training data (the prior's transitions are counted on it); "
                                   "name it, with --val-fraction 0 and --prior-weight if the members trained on all of it")
    folds: dict[str, Any] = {}
    if name.lower() == "nlupp":
        train_ids = parse_folds(data.train_folds, "train_folds")
        folds = {"train_folds": train_ids, "test_folds": other_folds(train_ids) or None}
    with recorded_data_warnings():
        dataset = load_entities(name, data_dir=data.data_dir, val_fraction=data.val_fraction, seed=data.seed, **folds)
    if not dataset.validation and prior_weight is None:
        raise SettingError("val_fraction", "without validation data the ensemble's prior needs --prior-weight")
    folder = save_tagger_ensemble(members, out, weights=weights, command=command)
    model = TaggerEnsemble.load(folder)
    summary: dict[str, Any] = {"model": str(folder), "task": "ner", "members": model.checkpoint.members,
                               "weights": model.weights}
    held_out = dataset.validation
    member_probs = model.member_probabilities([ex.text for ex in held_out], progress=progress) if held_out else None
    predicted = model.average(member_probs) if member_probs else None
    summary["decoding"] = fit_decoding(model, dataset, weight=prior_weight, predicted=predicted)
    if member_probs:
        summary["validation"] = {"data": dataset.name, "val_fraction": data.val_fraction, "seed": data.seed,
                                 "examples": len(held_out), "entity_f1": validation_f1(model, held_out, member_probs)}
        record_metrics(folder, {"validation": summary["validation"]})
    return summary
