"""Train a text classifier (intents or sentiment) from a :class:`~finetune.data.TextDataset`.

Two modes share one code path:

- frozen: sentence features are computed once (cached on disk) and only the head trains;
  minutes on a laptop CPU.
- LoRA: low-rank adapters in the encoder train together with the head, on raw texts; the
  checkpoint then holds the adapter beside the head (a few hundred kB).

For intents, out-of-scope examples (see :mod:`finetune.oos`) add an ``out_of_scope`` class, and
an abstention threshold is chosen on validation data and saved in the checkpoint's settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finetune.checkpoint import save_checkpoint
from finetune.classifier import TASKS, EncodedClassifier, TextClassifier
from finetune.data import TextDataset, TextExample
from finetune.encoder import Encoder, FeatureCache
from finetune.heads import Head, HeadConfig, count_parameters
from finetune.oos import OOSExamples, choose_threshold
from finetune.trainer import (
    Checkpointing,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    TrainResult,
    seed_everything,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapter shape (see ``Encoder.add_lora``)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("query", "value")

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1:
            raise ValueError(f"LoRA r and alpha must be >= 1, got r={self.r}, alpha={self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "target_modules", tuple(self.target_modules))


@dataclass(frozen=True)
class ClassifierSpec:
    """What to train, beyond the trainer's own arguments.

    Args:
        task: ``intents`` or ``sentiment`` (saved in the checkpoint; picks the shipped default slot).
        head: Head shape; ``in_features`` and ``n_classes`` are filled in from encoder and data.
        lora: LoRA settings, or None to train on frozen features.
        min_oos_recall: Threshold rule (see :func:`finetune.oos.choose_threshold`).
    """

    task: str = "intents"
    head: HeadConfig = field(default_factory=HeadConfig)
    lora: LoraSettings | None = None
    min_oos_recall: float | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}")
        if self.min_oos_recall is not None and not 0.0 < self.min_oos_recall <= 1.0:
            raise ValueError(f"min_oos_recall must be in (0, 1], got {self.min_oos_recall}")


@dataclass
class TrainedClassifier:
    """What ``train_classifier`` produced: the saved directory, the loaded model, the run."""

    path: Path
    classifier: TextClassifier
    result: TrainResult
    metrics: dict[str, Any]


def train_classifier(
    dataset: TextDataset,
    spec: ClassifierSpec,
    args: TrainingArguments,
    encoder: Encoder,
    out: str | Path,
    *,
    oos: OOSExamples | None = None,
    backend: str = "exact",
    cache: FeatureCache | None = None,
    command: str | None = None,
    callbacks: Sequence[TrainerCallback | Callable[[dict[str, float]], None]] = (),
    checkpointing: Checkpointing | None = None,
) -> TrainedClassifier:
    """Train a head (and optionally LoRA adapters) and write a checkpoint to ``out``.

    Args:
        dataset: Train/validation splits are used; test is never looked at.
        spec: Task, head and LoRA settings.
        args: Trainer settings (early stopping on validation macro-F1).
        encoder: A loaded, adapter-free encoder. LoRA training adds the adapter to this very
            encoder (pass a copy to keep a plain one).
        out: Checkpoint directory.
        oos: Out-of-scope examples; adds an ``out_of_scope`` class and a threshold.
        backend: Where the head's circuits run during training.
        cache: Feature cache for frozen mode (default: ``$QAGENT_HOME/cache/features``).
        command: The command line to record in ``config.json``.
        callbacks, checkpointing: Passed to the :class:`~finetune.trainer.Trainer` (progress of a
            recorded run; mid-run checkpoints and the one to resume from).
    """
    start = time.perf_counter()
    train, validation = list(dataset.train), list(dataset.validation)
    if oos is not None:
        train += oos.train
        validation += oos.validation
    labels = sorted({ex.label for ex in train})
    index = {label: i for i, label in enumerate(labels)}
    head_config = replace(spec.head, in_features=encoder.dim, n_classes=len(labels))
    seed_everything(args.seed)  # the head's initial weights too, so one seed gives one model
    head = Head(head_config, backend=backend)
    y_train, y_val = _targets(train, index), _targets(validation, index)
    if spec.lora is None:
        cache = cache or FeatureCache()
        progress = args.progress
        # Splits are cached separately so other runs (eval, ablation) reuse the same entries.
        x_train = _features(cache, encoder, dataset.train, oos.train if oos else None, progress)
        x_val = _features(cache, encoder, dataset.validation, oos.validation if oos else None, progress)
        trainer = Trainer(head, args, callbacks=callbacks, checkpointing=checkpointing)
        result = trainer.fit(x_train, y_train, x_val, y_val)
    else:
        lora = spec.lora
        seed_everything(args.seed)
        encoder.add_lora(r=lora.r, alpha=lora.alpha, dropout=lora.dropout, target_modules=lora.target_modules)
        model = EncodedClassifier(encoder, head)
        trainer = Trainer(model, args, callbacks=callbacks, checkpointing=checkpointing)
        result = trainer.fit([ex.text for ex in train], y_train, [ex.text for ex in validation], y_val)
        model.eval()
        x_val = None
    seconds = time.perf_counter() - start
    settings: dict[str, Any] = {"mode": "frozen" if spec.lora is None else "lora"}
    if spec.lora is not None:
        settings["lora"] = asdict(spec.lora)
    metrics: dict[str, Any] = {
        "best_epoch": result.best_epoch,
        "val_macro_f1": result.best_score,
        "train_seconds": seconds,
        "head_parameters": count_parameters(head),
        "history": result.history,
    }
    if oos is not None:
        val_logits = trainer.predict_logits(x_val if x_val is not None else [ex.text for ex in validation])
        probs = torch.softmax(val_logits, -1).numpy()
        in_rows = np.arange(len(dataset.validation))
        oos_rows = np.arange(len(dataset.validation), len(validation))
        threshold, stats = choose_threshold(
            probs[in_rows], y_val.numpy()[in_rows], probs[oos_rows], labels, min_oos_recall=spec.min_oos_recall
        )
        settings.update(threshold=threshold, oos={"train_examples": len(oos.train), "validation": stats})
        metrics["threshold"] = threshold
        metrics["val_oos"] = stats
    path = Path(out)
    save_checkpoint(
        path, task=spec.task, head=head, labels=labels, encoder=encoder.config.to_dict(),
        training={**args.to_dict(), "data": dataset.name, "train_examples": len(train)},
        settings=settings, metrics=metrics, command=command,
    )
    if spec.lora is not None:
        from finetune.integrity import record_checksums

        encoder.save_adapter(path / "adapter")
        record_checksums(path)
    # A frozen encoder is shared as is; a LoRA model loads its own copy when first used.
    classifier = TextClassifier.load(path, backend=backend, encoder=encoder if spec.lora is None else None)
    return TrainedClassifier(path, classifier, result, metrics)


def _targets(examples: list[TextExample], index: dict[str, int]) -> torch.Tensor:
    return torch.tensor([index[ex.label] for ex in examples], dtype=torch.long)


def _features(
    cache: FeatureCache,
    encoder: Encoder,
    examples: list[TextExample],
    extra: list[TextExample] | None,
    progress: bool,
) -> torch.Tensor:
    parts = [cache.get_or_compute(encoder, [ex.text for ex in examples], progress=progress)]
    if extra:
        parts.append(cache.get_or_compute(encoder, [ex.text for ex in extra], progress=progress))
    return torch.cat(parts)
