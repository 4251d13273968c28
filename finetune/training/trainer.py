"""One training loop for every qagent model: heads on cached features, or encoder + head.

The trainer is *given* the model (setfit's habit): it never loads encoders or data. Inputs are
either a feature tensor ``[N, D]`` (frozen encoder, the fast path) or any sequence the model's
``forward`` accepts in batches (texts, for LoRA fine-tuning). Early stopping watches a
validation score (macro-F1 by default), the best weights are restored at the end, and every
epoch is reported to the progress bar, TensorBoard and any callbacks.

With :class:`Checkpointing`, the whole loop state (weights, optimizer, scheduler, every RNG, the
shuffle order, early stopping) is saved every N steps and at every epoch end
(:mod:`finetune.training.train_state`), and ``fit(..., resume_from=...)`` goes on from the exact step: a
run killed at any point and resumed ends with the same weights as one never interrupted.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from finetune.models.device import module_device

log = logging.getLogger(__name__)

Inputs = torch.Tensor | Sequence[Any]
ScoreFn = Callable[[np.ndarray, np.ndarray], float]  # (labels [N], logits [N, C]) -> score
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (logits, labels) -> scalar loss


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
    best_score: float | None  # None: trained without validation
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Checkpointing:
    """Mid-run checkpoints of a :class:`Trainer`.

    Args:
        directory: Folder of ``trainer_state.safetensors`` (one file, replaced atomically).
        every_steps: Also checkpoint every this many optimisation steps (0: only at epoch ends).
        resume_from: A checkpoint file (or its folder) to resume from, or None to start afresh.
    """

    directory: str | Path
    every_steps: int = 50
    resume_from: str | Path | None = None

    def __post_init__(self) -> None:
        if isinstance(self.every_steps, bool) or not isinstance(self.every_steps, int) or self.every_steps < 0:
            raise ValueError(f"every_steps must be an integer >= 0, got {self.every_steps!r}")

    @property
    def path(self) -> Path:
        from finetune.training.train_state import STATE_FILE

        return Path(self.directory) / STATE_FILE


class TrainerCallback:
    """Hooks into a :class:`Trainer`; override the ones you need.

    Any object with these methods works (duck typing); a plain callable passed as a callback is
    called with each epoch record, as ``on_epoch_end``.
    """

    def on_step(self, epoch: int, step: int, total_steps: int) -> None:
        """After every optimisation step (``step`` counts from 1 over the whole run)."""

    def on_epoch_end(self, record: dict[str, float]) -> None:
        """After every epoch's validation, with that epoch's record."""

    def on_checkpoint(self, step: int, path: Path, error: OSError | None) -> None:
        """After a checkpoint was written (``error`` None) or could not be (the previous one stays)."""


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
        callbacks: :class:`TrainerCallback` objects, or callables called after every epoch with
            that epoch's record.
        checkpointing: Where and how often to checkpoint mid-run (None: never).
        loss_fn: Training and validation loss (default: cross-entropy with the arguments' label
            smoothing); multi-task models whose logits pack several tasks bring their own.
    """

    def __init__(
        self,
        model: nn.Module,
        args: TrainingArguments,
        *,
        score_fn: ScoreFn = macro_f1,
        callbacks: Sequence[TrainerCallback | Callable[[dict[str, float]], None]] = (),
        checkpointing: Checkpointing | None = None,
        loss_fn: LossFn | None = None,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.args = args
        self.score_fn = score_fn
        self.callbacks = list(callbacks)
        self.checkpointing = checkpointing

    def fit(
        self,
        train_inputs: Inputs,
        train_labels: torch.Tensor,
        val_inputs: Inputs,
        val_labels: torch.Tensor,
        *,
        resume_from: str | Path | None = None,
    ) -> TrainResult:
        """Train until ``epochs`` or early stopping; the model ends with its best weights.

        Args:
            resume_from: A checkpoint written by an earlier run with the same model, data and
                arguments (default: ``checkpointing.resume_from``); training goes on from its step.

        Raises:
            finetune.training.train_state.TrainStateError: The checkpoint is unreadable or from another setup.
        """
        from tqdm.auto import tqdm

        args = self.args
        if len(train_inputs) != len(train_labels) or len(val_inputs) != len(val_labels):
            raise ValueError("inputs and labels must have the same length")
        if len(train_inputs) == 0:
            raise ValueError("training data must not be empty")
        # No validation data: a refit on all the data, with the epochs chosen by an earlier run
        # that had validation; it runs every epoch and keeps the last weights.
        validating = len(val_inputs) > 0
        # Batches follow the model: move the model (``.to(device)``) and the trainer does the rest.
        device = module_device(self.model)
        val_labels = val_labels.cpu()  # scored against predict_logits' CPU logits
        seed_everything(args.seed)
        generator = torch.Generator().manual_seed(args.seed)
        params = [p for p in self.model.parameters() if p.requires_grad]
        # The fused kernel updates every tensor in one pass (about 3x faster on the CPU than
        # the per-tensor loop torch picks there); same update, float rounding aside.
        fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
        optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay, fused=fused or None)
        steps_per_epoch = -(-len(train_inputs) // args.batch_size)
        total_steps = args.epochs * steps_per_epoch
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=args.lr, total_steps=total_steps, pct_start=0.1
        )
        loss_fn = self.loss_fn or nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
        loop = _Loop(optimizer, scheduler, generator, self._fingerprint(len(train_inputs), len(val_inputs)))
        if resume_from is None and self.checkpointing is not None:
            resume_from = self.checkpointing.resume_from
        if resume_from is not None:
            self._restore(loop, resume_from)
        if self.checkpointing is not None:
            Path(self.checkpointing.directory).mkdir(parents=True, exist_ok=True)
        writer = _tensorboard(args.log_dir)
        start = time.perf_counter() - loop.seconds  # a resumed run's clock goes on from the checkpoint
        bar = tqdm(total=total_steps, initial=loop.step, disable=not args.progress, unit="step", leave=False)
        try:
            while loop.epoch <= args.epochs:
                epoch = loop.epoch
                self.model.train()
                if loop.order is None:
                    loop.order = torch.randperm(len(train_inputs), generator=generator)
                for begin in range(loop.next_batch * args.batch_size, len(loop.order), args.batch_size):
                    index = loop.order[begin : begin + args.batch_size]
                    logits = self.model(_take(train_inputs, index, device))
                    loss = loss_fn(logits, train_labels[index].to(device))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if args.max_grad_norm is not None:
                        nn.utils.clip_grad_norm_(params, args.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    loop.epoch_loss += loss.item() * len(index)
                    loop.next_batch += 1
                    loop.step += 1
                    bar.update(1)
                    self._notify("on_step", epoch, loop.step, total_steps)
                    every = self.checkpointing.every_steps if self.checkpointing is not None else 0
                    # The last batch of an epoch is checkpointed after validation, just below.
                    if every and loop.step % every == 0 and loop.next_batch < steps_per_epoch:
                        self._checkpoint(loop, time.perf_counter() - start)
                record = {"epoch": epoch, "train_loss": loop.epoch_loss / len(train_inputs)}
                if validating:
                    val_logits = self.predict_logits(val_inputs)
                    record["val_loss"] = loss_fn(val_logits, val_labels).item()
                    record["val_score"] = score = self.score_fn(val_labels.numpy(), val_logits.numpy())
                record["seconds"] = time.perf_counter() - start
                loop.history.append(record)
                shown = {"val": f"{record['val_score']:.4f}"} if validating else {}
                bar.set_postfix(epoch=epoch, loss=f"{record['train_loss']:.3f}", **shown)
                if writer is not None:
                    for key in ("train_loss", "val_loss", "val_score"):
                        if key in record:
                            writer.add_scalar(key, record[key], epoch)
                for callback in self.callbacks:
                    if hasattr(callback, "on_epoch_end"):
                        callback.on_epoch_end(record)
                    else:
                        callback(record)
                loop.next_epoch()
                if not validating:
                    loop.best_epoch = epoch  # the model already holds the last weights: nothing to copy
                elif score > loop.best_score:
                    loop.best_score, loop.best_epoch, loop.stale = score, epoch, 0
                    loop.best_state = self._trainable_state()
                else:
                    loop.stale += 1
                    if loop.stale >= args.patience:
                        log.info("early stop at epoch %d (best %d: %.4f)", epoch, loop.best_epoch, loop.best_score)
                        break
                if self.checkpointing is not None:
                    self._checkpoint(loop, time.perf_counter() - start)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        if loop.best_state is not None:
            # Only trainable weights and buffers are kept: the frozen rest never changed.
            self.model.load_state_dict(loop.best_state, strict=False)
        best_score = loop.best_score if validating else None
        return TrainResult(loop.best_epoch, best_score, time.perf_counter() - start, loop.history)

    def _notify(self, hook: str, *values: Any) -> None:
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(*values)

    def _trainable_state(self, copy: bool = True) -> dict[str, torch.Tensor]:
        """The weights training changes (trainable parameters and all buffers), copied."""
        keep = {name for name, p in self.model.named_parameters() if p.requires_grad}
        keep |= {name for name, _ in self.model.named_buffers()}
        state = self.model.state_dict()
        return {name: value.detach().clone() if copy else value for name, value in state.items() if name in keep}

    def _fingerprint(self, n_train: int, n_val: int) -> dict[str, Any]:
        """What must not change between a run and its resume (or the resume cannot reproduce it)."""
        settings = {key: value for key, value in self.args.to_dict().items() if key not in ("log_dir", "progress")}
        shapes = {name: list(value.shape) for name, value in self._trainable_state(copy=False).items()}
        return {**settings, "train_examples": n_train, "val_examples": n_val, "weights": shapes}

    def _checkpoint(self, loop: _Loop, seconds: float) -> None:
        """Save the loop state; a failed write is logged and training goes on (the last good
        checkpoint stays usable, and the next one may succeed once space is freed)."""
        from finetune.training.train_state import TrainState, capture_rng, save_train_state

        assert self.checkpointing is not None
        path = self.checkpointing.path
        state = TrainState(
            step=loop.step, epoch=loop.epoch, next_batch=loop.next_batch, order=loop.order,
            epoch_loss=loop.epoch_loss, model=self._trainable_state(), best=loop.best_state,
            optimizer=loop.optimizer.state_dict(), scheduler=loop.scheduler.state_dict(),
            rng=capture_rng(loop.generator), modules=_module_states(self.model), best_score=loop.best_score,
            best_epoch=loop.best_epoch, stale=loop.stale, history=loop.history, seconds=seconds,
            fingerprint=loop.fingerprint,
        )
        try:
            save_train_state(path, state)
        except OSError as exc:
            if loop.checkpoint_ok:  # once per run of failures, not at every step
                log.warning("could not write the checkpoint at step %d (%s: %s); the previous one stays "
                            "usable and training goes on", loop.step, type(exc).__name__, exc.strerror or exc)
            loop.checkpoint_ok = False
            self._notify("on_checkpoint", loop.step, path, exc)
            return
        loop.checkpoint_ok = True
        self._notify("on_checkpoint", loop.step, path, None)

    def _restore(self, loop: _Loop, resume_from: str | Path) -> None:
        from finetune.training.train_state import STATE_FILE, TrainStateError, load_train_state, restore_rng

        path = Path(resume_from)
        path = path / STATE_FILE if path.is_dir() else path
        saved = load_train_state(path)
        saved.check_fingerprint(loop.fingerprint, path)
        missing = set(saved.model) - set(self.model.state_dict())
        if missing:
            raise TrainStateError(f"checkpoint {path} has weights this model lacks: {', '.join(sorted(missing)[:3])}")
        self.model.load_state_dict(saved.model, strict=False)
        loop.optimizer.load_state_dict(saved.optimizer)
        loop.scheduler.load_state_dict(saved.scheduler)
        restore_rng(saved.rng, loop.generator)
        modules = dict(self.model.named_modules())
        for name, extra in saved.modules.items():
            if not hasattr(modules.get(name), "load_training_state"):
                raise TrainStateError(f"checkpoint {path} has state for a module this model lacks: {name!r}")
            modules[name].load_training_state(extra)
        loop.step, loop.epoch, loop.next_batch, loop.order = saved.step, saved.epoch, saved.next_batch, saved.order
        loop.epoch_loss, loop.history, loop.seconds = saved.epoch_loss, saved.history, saved.seconds
        loop.best_score, loop.best_epoch, loop.stale, loop.best_state = (
            saved.best_score, saved.best_epoch, saved.stale, saved.best)
        log.info("resumed from %s at step %d (epoch %d)", path, loop.step, loop.epoch)

    @torch.no_grad()
    def predict_logits(self, inputs: Inputs, batch_size: int | None = None) -> torch.Tensor:
        """Logits for all ``inputs`` in eval mode, batched, on the CPU (wherever the model runs)."""
        self.model.eval()
        device = module_device(self.model)
        size = batch_size or max(self.args.batch_size, 256)
        chunks = [
            self.model(_take(inputs, torch.arange(i, min(i + size, len(inputs))), device)).cpu()
            for i in range(0, len(inputs), size)
        ]
        return torch.cat(chunks).float()


@dataclass
class _Loop:
    """The training loop's state between two steps: what a checkpoint holds besides the model."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    fingerprint: dict[str, Any]
    step: int = 0
    epoch: int = 1
    next_batch: int = 0
    order: torch.Tensor | None = None
    epoch_loss: float = 0.0
    best_score: float = -float("inf")
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    stale: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    checkpoint_ok: bool = True

    def next_epoch(self) -> None:
        self.epoch += 1
        self.next_batch, self.order, self.epoch_loss = 0, None, 0.0


def _module_states(model: nn.Module) -> dict[str, Any]:
    """Extra state of modules that keep some outside their weights (e.g. an SPSA random stream)."""
    return {name: module.training_state() for name, module in model.named_modules() if hasattr(module, "training_state")}


def _take(inputs: Inputs, index: torch.Tensor, device: torch.device | None = None) -> Inputs:
    if isinstance(inputs, torch.Tensor):
        rows = inputs[index.to(inputs.device)]
        return rows if device is None else rows.to(device)
    return [inputs[i] for i in index.tolist()]  # texts: the model's encoder moves its token ids


def _tensorboard(log_dir: str | None):
    if log_dir is None:
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=log_dir)
