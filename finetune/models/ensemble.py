"""Classifier ensembles: several checkpoints of one task whose class probabilities are averaged.

Two sentiment models trained differently (one LoRA adapter of its own, one shared with a tagger)
err on different headlines, so their averaged probabilities are right more often than either
(BENCHMARKS.md, "Sentiment"). An ensemble is a folder::

    ensemble.json     {"format": "qagent-ensemble/1", "task", "labels", "members", "weights", "metrics"}
    members/<name>/   one ordinary classifier checkpoint each (finetune.models.checkpoint)

Member paths are relative to the folder, so it can be copied or moved whole. Each member with a
LoRA adapter runs its own encoder pass: an ensemble of two costs two passes per text.

Usage::

    model = ClassifierEnsemble.load("agent/assets/models/sentiment")   # finetune.models.loading loads either kind
    model.predict(["Acme shares plunge after profit warning"])[0].label         # 'negative'
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finetune.models.checkpoint import ENSEMBLE as ENSEMBLE_FILE
from finetune.models.checkpoint import CheckpointError, read_json, write_json
from finetune.models.classifier import Prediction, TextClassifier
from finetune.models.encoder import Encoder, FeatureCache

FORMAT = "qagent-ensemble/1"


def is_ensemble(path: str | Path) -> bool:
    """True when ``path`` is an ensemble folder (it holds ``ensemble.json``)."""
    return (Path(path) / ENSEMBLE_FILE).is_file()


@dataclass(frozen=True)
class EnsembleRecord:
    """What ``ensemble.json`` says, as the evaluation reports read it (``path``, ``metrics``)."""

    path: Path
    task: str
    labels: list[str]
    members: list[str]
    weights: list[float]
    metrics: dict[str, Any] = field(default_factory=dict)


class MemberModels:
    """What any ensemble does to its ``members`` alike: their encoders, runtime and circuit backend."""

    members: list[Any]

    @property
    def encoders(self) -> list[Encoder]:
        """Every member's encoder (each LoRA member has its own)."""
        return [m.encoder for m in self.members]

    def use_runtime(self, runtime: str) -> None:
        """Run every member's encoder on ``runtime`` (``torch``, ``onnx``, ``onnx-int8``)."""
        for encoder in {id(e): e for e in self.encoders}.values():
            encoder.use_runtime(runtime)

    def to(self, device: str) -> MemberModels:
        """Run every member (head and own encoder) on ``device``."""
        for member in self.members:
            member.to(device)
        return self

    def set_backend(self, backend: str) -> None:
        """Run every member's head circuits on ``backend``."""
        for member in self.members:
            member.set_backend(backend)

    def shares_encoder_with(self, other: Any) -> bool:
        return False  # members run their own passes; none is another model's joint partner


class ClassifierEnsemble(MemberModels):
    """Averages the class probabilities of member :class:`TextClassifier` s (weighted).

    It answers the calls a single classifier answers (``predict``, ``encode`` + ``probabilities``,
    ``decide``), so the evaluation, the assistant and the news monitor take either.
    """

    uses_frozen_encoder = False  # members run their own passes (see predict)

    def __init__(self, record: EnsembleRecord, members: Sequence[TextClassifier]) -> None:
        if len(members) != len(record.weights) or not members:
            raise CheckpointError(f"{record.path}: {len(members)} member(s) for {len(record.weights)} weight(s)")
        for member in members:
            if member.task != record.task or sorted(member.labels) != sorted(record.labels):
                raise CheckpointError(f"{member.checkpoint.path}: a {member.task} model with labels {member.labels}; "
                                      f"the ensemble is {record.task} with {record.labels}")
            if member.threshold is not None:
                raise CheckpointError(f"{member.checkpoint.path}: members must not abstain (out-of-scope threshold)")
        self.checkpoint = record
        self.members = list(members)
        self.labels: list[str] = list(record.labels)
        self.task: str = record.task
        self.threshold: float | None = None
        total = sum(record.weights)
        self.weights: list[float] = [w / total for w in record.weights]  # normalized to sum to 1
        # Column order of each member's probabilities in the ensemble's label order.
        self._columns = [[m.labels.index(label) for label in self.labels] for m in self.members]

    @classmethod
    def load(cls, path: str | Path, *, encoder: Encoder | None = None, backend: str = "exact") -> ClassifierEnsemble:
        """Load an ensemble folder; ``encoder``: a plain encoder the members copy (see TextClassifier.load)."""
        record = read_record(path)
        members = [TextClassifier.load(record.path / member, encoder=encoder, backend=backend)
                   for member in record.members]
        return cls(record, members)

    def encode(self, texts: Sequence[str], *, cache: FeatureCache | None = None, progress: bool = False) -> torch.Tensor:
        """Every member's sentence features of ``texts``, side by side: ``[N, sum of widths]``."""
        return torch.cat([m.encode(texts, cache=cache, progress=progress) for m in self.members], dim=1)

    def probabilities(self, features: torch.Tensor, *, texts: Sequence[str] | None = None) -> np.ndarray:
        """Weighted mean of the members' probabilities ``[N, C]`` (``self.labels`` order) from
        :meth:`encode`'s features (and ``texts``, for members with a word n-gram part)."""
        return self.average(self.member_probabilities(features, texts=texts))

    def average(self, member_probs: Sequence[np.ndarray]) -> np.ndarray:
        """The weighted mean of :meth:`member_probabilities`' arrays."""
        return sum(w * p for w, p in zip(self.weights, member_probs))

    def member_probabilities(self, features: torch.Tensor, *, texts: Sequence[str] | None = None) -> list[np.ndarray]:
        """Each member's probabilities ``[N, C]`` (``self.labels`` order) from :meth:`encode`'s features."""
        widths = [m.head.config.in_features for m in self.members]
        if features.ndim != 2 or features.shape[1] != sum(widths):
            raise ValueError(f"features must be [N, {sum(widths)}] (the members' features side by side), "
                             f"got {list(features.shape)}")
        parts = torch.split(features, widths, dim=1)
        return [m.probabilities(part, texts=texts)[:, columns]
                for m, part, columns in zip(self.members, parts, self._columns)]

    def decide(self, probs: np.ndarray) -> list[str]:
        return [self.labels[i] for i in probs.argmax(-1)]

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[Prediction]:
        """Predict every text (empty strings are fine; long texts are truncated with a warning)."""
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts; wrap a single text in a list")
        if not texts:
            return []
        return self.predict_encoded(self.encode(list(texts)), texts)

    def predict_encoded(self, features: torch.Tensor, texts: Sequence[str] | None = None) -> list[Prediction]:
        """Predict from :meth:`encode`'s features (of ``texts``, which members with a word n-gram part read)."""
        probs = self.probabilities(features, texts=texts)
        return [Prediction(label, float(row.max()), {name: float(p) for name, p in zip(self.labels, row)})
                for row, label in zip(probs, self.decide(probs))]

    def predict_features(self, features: torch.Tensor, texts: Sequence[str] | None = None) -> list[Prediction]:
        raise ValueError("an ensemble's members run their own encoder passes: call predict(texts)")


def validation_scores(ensemble: ClassifierEnsemble, texts: Sequence[str], labels: Sequence[str], *,
                      progress: bool = False) -> dict[str, Any]:
    """Accuracy and macro-F1 of each member and of the ensemble on held-out ``texts`` (one encoder
    pass per member): how an ensemble is chosen without looking at the test split."""
    from sklearn.metrics import accuracy_score, f1_score

    features = ensemble.encode(list(texts), progress=progress)
    members = ensemble.member_probabilities(features, texts=texts)

    def scores(probs: np.ndarray) -> dict[str, float]:
        predicted = ensemble.decide(probs)
        return {"accuracy": float(accuracy_score(labels, predicted)),
                "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0))}

    return {
        "examples": len(texts),
        "members": {name: scores(p) for name, p in zip(ensemble.checkpoint.members, members)},
        "ensemble": scores(ensemble.average(members)),
    }


def read_record(path: str | Path) -> EnsembleRecord:
    """Read and check ``ensemble.json`` of ``path`` (CheckpointError, in one line, on any problem)."""
    from finetune.models.integrity import verify_checksums

    folder = Path(path)
    verify_checksums(folder)  # ensemble.json, the prior and every member's files, before any is parsed
    data = read_json(folder / ENSEMBLE_FILE)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{folder / ENSEMBLE_FILE}: not a {FORMAT} file")
    members, weights = data.get("members"), data.get("weights")
    if not (isinstance(members, list) and members and all(isinstance(m, str) for m in members)):
        raise CheckpointError(f"{folder / ENSEMBLE_FILE}: 'members' must list member folders")
    if not (isinstance(weights, list) and len(weights) == len(members)
            and all(isinstance(w, (int, float)) and w > 0 for w in weights)):
        raise CheckpointError(f"{folder / ENSEMBLE_FILE}: 'weights' must give one positive number per member")
    for member in members:
        if Path(member).is_absolute() or ".." in Path(member).parts:
            raise CheckpointError(f"{folder / ENSEMBLE_FILE}: member {member!r} must be a folder inside the ensemble")
    return EnsembleRecord(folder, str(data.get("task")), list(data.get("labels") or []), members,
                          [float(w) for w in weights], dict(data.get("metrics") or {}))


def save_ensemble(members: Sequence[str | Path], out: str | Path, *, weights: Sequence[float] | None = None,
                  metrics: dict[str, Any] | None = None, command: str | None = None) -> Path:
    """Copy the member checkpoints into ``out/members/`` and write ``out/ensemble.json``.

    Members must be classifiers of one task with one label set (checked by loading them).
    """
    sources = [Path(m) for m in members]
    weights = checked_weights(len(sources), weights)
    loaded = [TextClassifier.load(source) for source in sources]
    record = EnsembleRecord(Path(out), loaded[0].task, list(loaded[0].labels), [], weights)
    ClassifierEnsemble(record, loaded)  # checks task, labels and thresholds before anything is written
    return write_ensemble(sources, out, record.task, record.labels, weights, metrics=metrics, command=command)


def checked_weights(n_members: int, weights: Sequence[float] | None) -> list[float]:
    """One positive weight per member (default: equal); ValueError otherwise."""
    if n_members < 2:
        raise ValueError("an ensemble needs at least two member models")
    weights = [1.0] * n_members if weights is None else [float(w) for w in weights]
    if len(weights) != n_members or any(w <= 0 for w in weights):
        raise ValueError(f"give one positive weight per member ({n_members}), got {list(weights)}")
    return weights


def write_ensemble(sources: Sequence[Path], out: str | Path, task: str, labels: Sequence[str], weights: Sequence[float],
                   *, metrics: dict[str, Any] | None = None, command: str | None = None) -> Path:
    """Copy already checked member checkpoints into ``out/members/`` and write ``out/ensemble.json``."""
    folder = Path(out)
    if folder.resolve() in {s.resolve() for s in sources}:
        raise ValueError(f"--out {folder} is one of the members; write the ensemble to a new folder")
    names = []
    for i, source in enumerate(sources):
        name = f"members/{i + 1}-{source.resolve().name}"
        shutil.rmtree(folder / name, ignore_errors=True)
        shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("tensorboard", "checkpoints", "onnx*"))
        names.append(name)
    write_json(folder / ENSEMBLE_FILE, {
        "format": FORMAT, "task": task, "labels": list(labels), "members": names, "weights": list(weights),
        "metrics": metrics or {}, "command": command,
    })
    from finetune.models.integrity import record_checksums

    record_checksums(folder)
    return folder


def record_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    """Merge ``metrics`` into the ``metrics`` of ``path/ensemble.json``."""
    file = Path(path) / ENSEMBLE_FILE
    data = read_json(file)
    data["metrics"] = {**(data.get("metrics") or {}), **metrics}
    write_json(file, data)
    from finetune.models.integrity import refresh_checksums

    refresh_checksums(path)
