"""The recipe every task's training shares, step by step.

Intents and sentiment classifiers (:mod:`finetune.training.classifier`), entity taggers
(:mod:`finetune.training.tagger`) and the joint sentiment + tagger adapter
(:mod:`finetune.training.joint`) all train the same way::

    head(s)  → frozen features, or a LoRA adapter on the encoder → Trainer.fit → eval mode
             → metrics → checkpoint directory (+ the adapter beside it) → the loaded model

The task recipes differ only in their data rows, heads, scores and what else their checkpoint
records; each of those steps is one function here. ``seed`` arguments re-seed torch, numpy and
Python right before the step that draws random numbers, so one seed gives one model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from torch import nn

from finetune.models.integrity import record_checksums
from finetune.models.checkpoint import save_checkpoint
from finetune.models.encoder import Encoder
from finetune.models.heads import Head, HeadConfig, count_parameters
from finetune.models.lora import LoraSettings
from finetune.training.trainer import (
    Checkpointing,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    TrainResult,
    seed_everything,
)

Callbacks = Sequence[TrainerCallback | Callable[[dict[str, float]], None]]


def build_head(config: HeadConfig, encoder: Encoder, n_classes: int, backend: str, *, seed: int | None = None) -> Head:
    """A fresh head for ``encoder``'s features and ``n_classes`` outputs (seeded first when ``seed`` is
    given), on the encoder's device: the run trains wherever the encoder was put."""
    if seed is not None:
        seed_everything(seed)
    head = Head(replace(config, in_features=encoder.dim, n_classes=n_classes), backend=backend)
    return head.to(encoder.device)


def add_adapter(encoder: Encoder, lora: LoraSettings, *, seed: int | None = None) -> None:
    """Put a fresh LoRA adapter on ``encoder`` in place (seeded first when ``seed`` is given)."""
    if seed is not None:
        seed_everything(seed)
    encoder.add_lora(r=lora.r, alpha=lora.alpha, dropout=lora.dropout, target_modules=lora.target_modules)


def fit(model: nn.Module, args: TrainingArguments, train: tuple[Any, Any], validation: tuple[Any, Any], *,
        score_fn: Callable[..., float] | None = None, loss_fn: Callable[..., Any] | None = None,
        callbacks: Callbacks = (), checkpointing: Checkpointing | None = None) -> tuple[Trainer, TrainResult]:
    """Train ``model`` on ``(inputs, targets)`` pairs with early stopping on validation; leaves it in eval mode."""
    extra: dict[str, Any] = {}
    if score_fn is not None:
        extra["score_fn"] = score_fn
    if loss_fn is not None:
        extra["loss_fn"] = loss_fn
    trainer = Trainer(model, args, callbacks=callbacks, checkpointing=checkpointing, **extra)
    result = trainer.fit(train[0], train[1], validation[0], validation[1])
    model.eval()
    return trainer, result


def mode_settings(lora: LoraSettings | None, **extra: Any) -> dict[str, Any]:
    """The checkpoint's ``settings``: frozen or LoRA (with the adapter's shape), then ``extra``."""
    settings: dict[str, Any] = {"mode": "frozen" if lora is None else "lora", **extra}
    if lora is not None:
        settings["lora"] = asdict(lora)
    return settings


def check_shared_adapter(adapter: Path | None, lora: LoraSettings | None) -> None:
    """Refuse a spec that names another model's adapter and a new LoRA adapter, or an adapter folder without weights."""
    if adapter is not None and lora is not None:
        raise ValueError("adapter (train on another model's frozen adapter) and lora (train a new one) exclude each other")
    if adapter is not None and not (Path(adapter) / "adapter_model.safetensors").is_file():
        raise ValueError(f"{adapter} holds no adapter_model.safetensors; name a model's adapter folder")


def shared_adapter_settings(adapter: Path) -> dict[str, Any]:
    """Settings of a head trained on another model's frozen adapter: its LoRA shape and where it came from."""
    import json

    shape = json.loads((Path(adapter) / "adapter_config.json").read_text(encoding="utf-8"))
    lora = LoraSettings(r=int(shape["r"]), alpha=int(shape["lora_alpha"]), dropout=float(shape.get("lora_dropout", 0.0)),
                        target_modules=tuple(sorted(shape["target_modules"])))
    return mode_settings(lora, shared_adapter={"source": str(adapter), "frozen": True})


def copy_shared_adapter(adapter: Path, path: Path) -> None:
    """Put a byte-identical copy of ``adapter`` in checkpoint ``path``: models share a pass when their
    adapter files hash the same."""
    import shutil

    shutil.copytree(adapter, path / "adapter", dirs_exist_ok=True)
    record_checksums(path)


def run_metrics(result: TrainResult, started: float, head: Head, score_name: str, **extra: Any) -> dict[str, Any]:
    """What every run reports: best epoch, its validation score (named ``score_name``), seconds
    since ``started`` (``time.perf_counter``), head parameters, ``extra``, and the history last."""
    return {"best_epoch": result.best_epoch, score_name: result.best_score,
            "train_seconds": time.perf_counter() - started, "head_parameters": count_parameters(head),
            **extra, "history": result.history}


def save_model(path: Path, *, task: str, head: Head, labels: Sequence[str], encoder: Encoder, training: dict[str, Any],
               settings: dict[str, Any], metrics: dict[str, Any], command: str | None, with_adapter: bool) -> Path:
    """Write a checkpoint directory, and the encoder's adapter beside it when the model has one."""
    save_checkpoint(path, task=task, head=head, labels=list(labels), encoder=encoder.config.to_dict(),
                    training=training, settings=settings, metrics=metrics, command=command)
    if with_adapter:
        encoder.save_adapter(path / "adapter")
        record_checksums(path)  # the adapter's files join the checkpoint's manifest
    return path
