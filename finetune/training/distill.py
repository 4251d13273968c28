"""Distillation: a teacher's class probabilities as training targets for a smaller student.

The teacher (any :class:`~finetune.models.classifier.TextClassifier`, e.g. all-mpnet-base-v2 with a
head) labels texts that have no label of their own (:func:`teacher_soft_labels`); the classifier
recipe then trains on its hard-labelled data plus those texts (``train_classifier(..., soft=...)``),
with one loss over both (:func:`soft_cross_entropy`): hard labels become (smoothed) one-hot rows.
The joint trainer's teachers (``--distil-from``) give their probabilities on labelled training
texts instead (:func:`teacher_probabilities`), or a soft-label file gives them
(:func:`file_probabilities`): e.g. teachers trained on two halves of the training data, each
labelling the half it never saw, so the probabilities carry the teacher's doubts rather than the
near-certainty of a model scoring its own training texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from finetune.data.soft_labels import SoftExample, read_soft_labels
from finetune.data.tagging import DataError
from finetune.models.classifier import TextClassifier


def teacher_soft_labels(teacher: TextClassifier, texts: Sequence[str], *, batch_size: int = 64,
                        progress: bool = False) -> list[SoftExample]:
    """The teacher's probabilities for each of ``texts`` (blank texts are skipped)."""
    from tqdm.auto import tqdm

    kept = [text.strip() for text in texts if text.strip()]
    out: list[SoftExample] = []
    for begin in tqdm(range(0, len(kept), batch_size), disable=not progress, unit="batch", leave=False):
        chunk = kept[begin : begin + batch_size]
        for text, prediction in zip(chunk, teacher.predict(chunk, batch_size=batch_size)):
            total = sum(prediction.probs.values())
            out.append(SoftExample(text, {label: p / total for label, p in prediction.probs.items()}))
    return out


def teacher_probabilities(teacher: TextClassifier, texts: Sequence[str], labels: Sequence[str], *,
                          temperature: float = 1.0, progress: bool = False) -> torch.Tensor:
    """A teacher classifier's class probabilities ``[N, C]`` on ``texts``, columns in ``labels``
    order (its labels must be the same set), from its logits divided by ``temperature`` (the
    head's view: a word n-gram part, :mod:`finetune.models.lexical`, does not teach)."""
    if sorted(teacher.labels) != sorted(labels):
        raise ValueError(f"the {teacher.task} teacher {teacher.checkpoint.path} has other labels than the data "
                         f"({len(teacher.labels)} against {len(labels)}); train it on the same labels")
    logits = teacher.logits(teacher.encode(list(texts), progress=progress))
    order = [teacher.labels.index(name) for name in labels]
    return torch.softmax(logits[:, order] / temperature, dim=-1)


def target_rows(hard: torch.Tensor, soft: Sequence[SoftExample], labels: Sequence[str],
                label_smoothing: float = 0.0) -> torch.Tensor:
    """One float target row per example: the hard labels (``[N]`` class ids) as one-hot rows smoothed
    the way ``nn.CrossEntropyLoss(label_smoothing=…)`` smooths them, then the soft rows."""
    n_classes = len(labels)
    rows = F.one_hot(hard, n_classes).float() * (1.0 - label_smoothing) + label_smoothing / n_classes
    missing = [example.text[:40] for example in soft if set(example.probs) != set(labels)]
    if missing:
        raise ValueError(f"soft labels must cover exactly the labels {list(labels)}; first mismatch: {missing[0]!r}")
    teacher = torch.tensor([[example.probs[label] for label in labels] for example in soft], dtype=torch.float32)
    return torch.cat([rows, teacher.reshape(len(soft), n_classes)])


def soft_cross_entropy(label_smoothing: float = 0.0):
    """The loss for :func:`target_rows`: cross-entropy against a distribution per row. Validation
    targets stay class ids and get the ordinary (smoothed) cross-entropy."""
    hard = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.dtype == torch.long:
            return hard(logits, targets)
        return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()

    return loss


def label_file(teacher: str | Path, texts: str | Path, out: str | Path, *, text_column: str = "text",
               limit: int | None = None, seed: int = 0, device: str = "cpu") -> int:
    """Label the texts of a file (:func:`~finetune.data.soft_labels.read_texts`) with the teacher
    checkpoint's probabilities (run on ``device``) and write them to ``out``; a seeded sample of
    ``limit`` when given. Returns how many texts were written."""
    import random

    from finetune.data.soft_labels import read_texts, write_soft_labels
    from finetune.models.loading import load_classifier

    rows = read_texts(texts, text_column)
    if limit is not None and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    model = load_classifier(teacher).to(device)
    return write_soft_labels(out, teacher_soft_labels(model, rows, progress=True))


def file_probabilities(path: str | Path, texts: Sequence[str], labels: Sequence[str], *,
                       temperature: float = 1.0) -> tuple[torch.Tensor, int]:
    """A soft-label file's probabilities ``[N, C]`` for ``texts`` (columns in ``labels`` order) and
    how many texts it covers; a text it does not hold gets a row of zeros (gold label only).

    ``temperature`` softens them as it softens a teacher's logits: ``p ** (1 / T)``, renormalised.
    A text listed twice takes its last record.
    """
    by_text = {ex.text: ex.probs for ex in read_soft_labels(path, labels)}
    out = torch.zeros(len(texts), len(labels))
    covered = 0
    for i, text in enumerate(texts):
        probs = by_text.get(text.strip())
        if probs is not None:
            row = torch.tensor([probs[name] for name in labels], dtype=torch.float64).clamp(min=1e-12) ** (1.0 / temperature)
            out[i] = (row / row.sum()).float()
            covered += 1
    if not covered:
        raise DataError(f"{path} holds none of the {len(texts)} training texts; label the run's own training "
                        "texts with `agent finetune soft-labels`")
    return out, covered
