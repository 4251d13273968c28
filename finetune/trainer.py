"""One training loop for every qagent model: heads on cached features, or encoder + head.

The trainer is *given* the model (setfit's habit): it never loads encoders or data. Inputs are
either a feature tensor ``[N, D]`` (frozen encoder, the fast path) or any sequence the model's
``forward`` accepts in batches (texts, for LoRA fine-tuning). Early stopping watches a
validation score (macro-F1 by default), the best weights are restored at the end, and every
epoch is reported to the progress bar, TensorBoard and any callbacks.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

Inputs = torch.Tensor | Sequence[Any]
ScoreFn = Callable[[np.ndarray, np.ndarray], float]  # (labels [N], logits [N, C]) -> score


@dataclass(frozen=True)
class TrainingArguments:
    """Settings of one training run; saved in the checkpoint's ``config.json``.

    Args:
        epochs: Upper bound on passes over the training data.
        batch_size: Examples per optimisation step.
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        patience: Stop after this many epochs without a better validation score.
        seed: Seeds torch, numpy and Python's ``random``: the same seed gives the same model.
        label_smoothing: Cross-entropy label smoothing.
        max_grad_norm: Gradient clipping (``None`` disables it).
        log_dir: Directory for TensorBoard event files (``None`` disables them).
        progress: Show a progress bar on stderr.
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    patience: int = 5
    seed: int = 0
    label_smoothing: float = 0.0
    max_grad_norm: float | None = 1.0
    log_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What a run did: the best epoch and score, and one record per epoch."""

    best_epoch: int
    best_score: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def macro_f1(labels: np.ndarray, logits: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, logits.argmax(-1), average="macro", zero_division=0))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Trains ``model`` (inputs → logits) with AdamW and cross-entropy.

    Args:
        model: Any module mapping a batch of inputs to logits ``[B, C]``.
        args: Training settings.
        score_fn: Validation score, higher is better (default macro-F1).
        callbacks: Called after every epoch with that epoch's record.
    """

    def __init__(
        self,
        model: nn.Module,
        args: TrainingArguments,
        *,
        score_fn: ScoreFn = macro_f1,
        callbacks: Sequence[Callable[[dict[str, float]], None]] = (),
    ) -> None:
        self.model = model
        self.args = args
        self.score_fn = score_fn
        self.callbacks = list(callbacks)

    def fit(
        self,
        train_inputs: Inputs,
        train_labels: torch.Tensor,
        val_inputs: Inputs,
        val_labels: torch.Tensor,
    ) -> TrainResult:
        """Train until ``epochs`` or early stopping; the model ends with its best weights."""
        from tqdm.auto import tqdm

        args = self.args
        if len(train_inputs) != len(train_labels) or len(val_inputs) != len(val_labels):
            raise ValueError("inputs and labels must have the same length")
        if len(train_inputs) == 0 or len(val_inputs) == 0:
            raise ValueError("training and validation data must not be empty")
        seed_everything(args.seed)
        generator = torch.Generator().manual_seed(args.seed)
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
        steps_per_epoch = -(-len(train_inputs) // args.batch_size)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.1
        )
        loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
        writer = _tensorboard(args.log_dir)
        best_score, best_epoch, best_state, stale = -float("inf"), 0, None, 0
        history: list[dict[str, float]] = []
        start = time.perf_counter()
        bar = tqdm(total=args.epochs * steps_per_epoch, disable=not args.progress, unit="step", leave=False)
        try:
            for epoch in range(1, args.epochs + 1):
                self.model.train()
                order = torch.randperm(len(train_inputs), generator=generator)
                total_loss = 0.0
                for begin in range(0, len(order), args.batch_size):
                    index = order[begin : begin + args.batch_size]
                    logits = self.model(_take(train_inputs, index))
                    loss = loss_fn(logits, train_labels[index])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if args.max_grad_norm is not None:
                        nn.utils.clip_grad_norm_(params, args.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    total_loss += loss.item() * len(index)
                    bar.update(1)
                val_logits = self.predict_logits(val_inputs)
                val_loss = loss_fn(val_logits, val_labels).item()
                score = self.score_fn(val_labels.numpy(), val_logits.numpy())
                record = {
                    "epoch": epoch,
                    "train_loss": total_loss / len(train_inputs),
                    "val_loss": val_loss,
                    "val_score": score,
                    "seconds": time.perf_counter() - start,
                }
                history.append(record)
                bar.set_postfix(epoch=epoch, loss=f"{record['train_loss']:.3f}", val=f"{score:.4f}")
                if writer is not None:
                    for key in ("train_loss", "val_loss", "val_score"):
                        writer.add_scalar(key, record[key], epoch)
                for callback in self.callbacks:
                    callback(record)
                if score > best_score:
                    best_score, best_epoch, stale = score, epoch, 0
                    best_state = copy.deepcopy(self.model.state_dict())
                else:
                    stale += 1
                    if stale >= args.patience:
                        log.info("early stop at epoch %d (best %d: %.4f)", epoch, best_epoch, best_score)
                        break
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return TrainResult(best_epoch, best_score, time.perf_counter() - start, history)

    @torch.no_grad()
    def predict_logits(self, inputs: Inputs, batch_size: int | None = None) -> torch.Tensor:
        """Logits for all ``inputs`` in eval mode, batched."""
        self.model.eval()
        size = batch_size or max(self.args.batch_size, 256)
        chunks = [
            self.model(_take(inputs, torch.arange(i, min(i + size, len(inputs)))))
            for i in range(0, len(inputs), size)
        ]
        return torch.cat(chunks).float()


def _take(inputs: Inputs, index: torch.Tensor) -> Inputs:
    if isinstance(inputs, torch.Tensor):
        return inputs[index]
    return [inputs[i] for i in index.tolist()]


def _tensorboard(log_dir: str | None):
    if log_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=log_dir)
