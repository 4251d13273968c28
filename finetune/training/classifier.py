"""Train a text classifier (intents or sentiment) from a :class:`~finetune.data.loaders.TextDataset`.

Two modes share one code path:

- frozen: sentence features are computed once (cached on disk) and only the head trains;
  minutes on a laptop CPU.
- LoRA: low-rank adapters in the encoder train together with the head, on raw texts; the
  checkpoint then holds the adapter beside the head (a few hundred kB).
- shared adapter: the head trains on the frozen features of an adapter another model already
  carries (``ClassifierSpec.adapter``), and the checkpoint holds a byte-identical copy of it. The
  new model then reads the encoder pass of the models trained on that adapter
  (:func:`finetune.models.passes.plan_passes`), so adding it costs no encoder pass.

For intents, out-of-scope examples (see :mod:`finetune.data.oos`) add an ``out_of_scope`` class, and
an abstention threshold is chosen on validation data and saved in the checkpoint's settings.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from finetune.data.loaders import TextDataset, TextExample
from finetune.data.oos import OOSExamples, choose_threshold
from finetune.data.soft_labels import SoftExample
from finetune.models.classifier import TASKS, EncodedClassifier, TextClassifier
from finetune.models.encoder import Encoder, FeatureCache
from finetune.models.heads import HeadConfig
from finetune.models.lora import LoraSettings
from finetune.training.distill import soft_cross_entropy, target_rows
from finetune.training.recipe import (add_adapter, build_head, check_shared_adapter, copy_shared_adapter, fit,
                                      mode_settings, run_metrics, save_model, shared_adapter_settings)
from finetune.training.trainer import Checkpointing, TrainerCallback, TrainingArguments, TrainResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassifierSpec:
    """What to train, beyond the trainer's own arguments.

    Args:
        task: ``intents`` or ``sentiment`` (saved in the checkpoint; picks the shipped default slot).
        head: Head shape; ``in_features`` and ``n_classes`` are filled in from encoder and data.
        lora: LoRA settings, or None to train on frozen features.
        min_oos_recall: Threshold rule (see :func:`finetune.data.oos.choose_threshold`).
        adapter: A saved LoRA adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``)
            whose frozen features the head trains on; the checkpoint keeps a copy. Excludes ``lora``.
    """

    task: str = "intents"
    head: HeadConfig = field(default_factory=HeadConfig)
    lora: LoraSettings | None = None
    min_oos_recall: float | None = None
    adapter: Path | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}; got {self.task!r}")
        check_shared_adapter(self.adapter, self.lora)
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
    soft: Sequence[SoftExample] = (),
) -> TrainedClassifier:
    """Train a head (and optionally LoRA adapters) and write a checkpoint to ``out``.

    Args:
        dataset: Train/validation splits are used; test is never looked at.
        spec: Task, head and LoRA settings.
        args: Trainer settings (early stopping on validation macro-F1).
        encoder: A loaded, adapter-free encoder. LoRA training (and ``spec.adapter``) adds the
            adapter to this very encoder (pass a copy to keep a plain one).
        out: Checkpoint directory.
        oos: Out-of-scope examples; adds an ``out_of_scope`` class and a threshold.
        backend: Where the head's circuits run during training.
        cache: Feature cache for frozen mode (default: ``$QAGENT_HOME/cache/features``).
        command: The command line to record in ``config.json``.
        callbacks, checkpointing: Passed to the :class:`~finetune.training.trainer.Trainer` (progress of a
            recorded run; mid-run checkpoints and the one to resume from).
        soft: Texts with a teacher's probabilities (:mod:`finetune.training.distill`), trained on
            beside ``dataset.train``; validation (early stopping) stays on the hard labels.
    """
    start = time.perf_counter()
    train, validation = list(dataset.train), list(dataset.validation)
    if oos is not None:
        train += oos.train
        validation += oos.validation
    labels = sorted({ex.label for ex in train})
    index = {label: i for i, label in enumerate(labels)}
    # The head's initial weights are seeded too, so one seed gives one model.
    head = build_head(spec.head, encoder, len(labels), backend, seed=args.seed)
    y_train, y_val = _targets(train, index), _targets(validation, index)
    model: nn.Module
    if spec.adapter is not None:
        encoder.load_adapter(spec.adapter)  # frozen: only the head trains
    if spec.lora is None:
        cache = cache or FeatureCache()
        progress = args.progress
        # Splits are cached separately so other runs (eval, ablation) reuse the same entries.
        x_train = _features(cache, encoder, dataset.train, oos.train if oos else None, progress)
        x_val = _features(cache, encoder, dataset.validation, oos.validation if oos else None, progress)
        if soft:
            x_soft = cache.get_or_compute(encoder, [ex.text for ex in soft], progress=progress)
            x_train = torch.cat([x_train, x_soft])
        model, rows_train, rows_val = head, x_train, x_val
    else:
        add_adapter(encoder, spec.lora, seed=args.seed)
        model = EncodedClassifier(encoder, head)
        rows_train = [ex.text for ex in train] + [ex.text for ex in soft]
        rows_val = [ex.text for ex in validation]
    loss_fn = None
    if soft:
        # Hard and soft rows share one loss: every training target becomes a distribution.
        y_train = target_rows(y_train, soft, labels, args.label_smoothing)
        loss_fn = soft_cross_entropy(args.label_smoothing)
    trainer, result = fit(model, args, (rows_train, y_train), (rows_val, y_val), callbacks=callbacks,
                          checkpointing=checkpointing, loss_fn=loss_fn)
    settings = mode_settings(spec.lora) if spec.adapter is None else shared_adapter_settings(spec.adapter)
    metrics = run_metrics(result, start, head, "val_macro_f1")
    if oos is not None:
        val_logits = trainer.predict_logits(rows_val)
        probs = torch.softmax(val_logits, -1).numpy()
        in_rows = np.arange(len(dataset.validation))
        oos_rows = np.arange(len(dataset.validation), len(validation))
        threshold, stats = choose_threshold(
            probs[in_rows], y_val.numpy()[in_rows], probs[oos_rows], labels, min_oos_recall=spec.min_oos_recall
        )
        settings.update(threshold=threshold, oos={"train_examples": len(oos.train), "validation": stats})
        metrics["threshold"] = threshold
        metrics["val_oos"] = stats
    path = save_model(Path(out), task=spec.task, head=head, labels=labels, encoder=encoder,
                      training={**args.to_dict(), "data": dataset.name, "train_examples": len(train),
                                **({"soft_examples": len(soft)} if soft else {})},
                      settings=settings, metrics=metrics, command=command, with_adapter=spec.lora is not None)
    if spec.adapter is not None:
        copy_shared_adapter(spec.adapter, path)
    # A frozen encoder is shared as is; a LoRA model loads its own copy when first used.
    plain = spec.lora is None and spec.adapter is None
    classifier = TextClassifier.load(path, backend=backend, encoder=encoder if plain else None)
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
