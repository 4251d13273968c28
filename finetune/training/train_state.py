"""Mid-run training checkpoints: everything a killed run needs to go on from the exact step.

One file, ``trainer_state.safetensors``: the tensors (trainable weights and buffers, the best
weights so far, AdamW's moments, torch's RNG states, this epoch's shuffle order) in safetensors
and everything else (step, epoch, scheduler, numpy and Python RNG states, early-stopping state,
history) as JSON in the file's metadata header. No pickle: ``torch.save`` would unpickle
whatever a tampered file holds on load.

The file is written beside its final name, flushed to disk, then renamed over the previous one,
so a crash or a full disk at any moment leaves the previous checkpoint intact and loadable.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from finetune.models.checkpoint import write_atomic

FORMAT = "qagent-train-state/1"
STATE_FILE = "trainer_state.safetensors"


_JSON_FIELDS = ("step", "epoch", "next_batch", "epoch_loss", "scheduler", "modules", "best_score", "best_epoch",
                "stale", "history", "seconds", "fingerprint")


class TrainStateError(RuntimeError):
    """A training checkpoint that cannot be read, or belongs to a different run."""


@dataclass
class TrainState:
    """A training run frozen between two optimisation steps.

    Attributes:
        step: Optimisation steps done so far.
        epoch: The epoch in progress (1-based); at an epoch boundary, the next one.
        next_batch: Batches of ``epoch`` already done.
        order: This epoch's shuffle order, or None at an epoch boundary (drawn on resume).
        epoch_loss: Sum of per-example training losses of ``epoch`` so far.
        model: Trainable weights and buffers (frozen weights are rebuilt by the run itself).
        best: Weights of the best epoch so far (same keys as ``model``), or None.
        optimizer: ``optimizer.state_dict()``.
        scheduler: ``scheduler.state_dict()``.
        rng: ``torch``, ``generator`` (byte tensors), ``numpy`` and ``python`` RNG states.
        modules: Extra state of modules that keep some (``training_state()``), by module name.
        best_score, best_epoch, stale: Early-stopping state.
        history: One record per finished epoch.
        seconds: Training time spent before this checkpoint (across earlier attempts too).
        fingerprint: Settings that must match for a resume to reproduce the run.
    """

    step: int
    epoch: int
    next_batch: int
    order: torch.Tensor | None
    epoch_loss: float
    model: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor] | None
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng: dict[str, Any]
    modules: dict[str, Any] = field(default_factory=dict)
    best_score: float = -float("inf")
    best_epoch: int = 0
    stale: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def check_fingerprint(self, expected: dict[str, Any], path: str | Path) -> None:
        """Raise :class:`TrainStateError` naming the first setting that differs from ``expected``."""
        for key in sorted(set(expected) | set(self.fingerprint)):
            if self.fingerprint.get(key) != expected.get(key):
                raise TrainStateError(
                    f"checkpoint {path} was written by a different training setup ({key}: "
                    f"{_short(self.fingerprint.get(key))} there, {_short(expected.get(key))} now); "
                    "resume it with the command that started it"
                )


def capture_rng(generator: torch.Generator) -> dict[str, Any]:
    """The state of every random stream a training step draws from."""
    import random

    import numpy as np

    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss_next],
    }


def restore_rng(rng: dict[str, Any], generator: torch.Generator) -> None:
    """Put back what :func:`capture_rng` took."""
    import random

    import numpy as np

    torch.set_rng_state(rng["torch"])
    generator.set_state(rng["generator"])
    name, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss_next = rng["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save_train_state(path: str | Path, state: TrainState) -> Path:
    """Write ``state`` to ``path`` atomically; on any error the previous file stays as it was.

    Raises:
        OSError: The file could not be written (full disk, directory gone…).
    """
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    for prefix, weights in (("model", state.model), ("best", state.best or {})):
        tensors.update({f"{prefix}/{name}": value for name, value in weights.items()})
    optimizer_state: dict[str, dict[str, Any]] = {}
    for index, values in state.optimizer["state"].items():
        plain = {}
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{key}"] = value
            else:
                plain[key] = value
        optimizer_state[str(index)] = plain
    tensors["rng/torch"] = state.rng["torch"]
    tensors["rng/generator"] = state.rng["generator"]
    if state.order is not None:
        tensors["order"] = state.order
    meta = {
        # Not dataclasses.asdict: it would deep-copy every tensor on the way.
        **{key: getattr(state, key) for key in _JSON_FIELDS},
        "has_best": state.best is not None,
        "optimizer": {"state": optimizer_state, "param_groups": state.optimizer["param_groups"]},
        "rng": {"numpy": state.rng["numpy"], "python": state.rng["python"]},
    }
    # safetensors refuses views and shared storage: give it plain CPU copies.
    data = save(
        {name: value.detach().cpu().contiguous().clone() for name, value in tensors.items()},
        metadata={"format": FORMAT, "state": json.dumps(meta, allow_nan=True)},
    )
    path = Path(path)
    write_atomic(path, lambda tmp: _write_synced(tmp, data))
    return path


def load_train_state(path: str | Path) -> TrainState:
    """Read a file written by :func:`save_train_state`.

    Raises:
        TrainStateError: Missing, unreadable or not a training checkpoint.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    try:
        data = path.read_bytes()
        tensors = load(data)
        header = _metadata(data)
        if header.get("format") != FORMAT:
            raise TrainStateError(f"{path} is not a qagent training checkpoint (format {header.get('format')!r})")
        meta = json.loads(header["state"])
    except FileNotFoundError:
        raise TrainStateError(f"training checkpoint not found: {path}") from None
    except (OSError, SafetensorError, KeyError, ValueError) as exc:
        raise TrainStateError(f"training checkpoint {path} is unreadable ({type(exc).__name__}: {exc})") from None

    def group(prefix: str) -> dict[str, torch.Tensor]:
        return {name[len(prefix) + 1 :]: value for name, value in tensors.items() if name.startswith(prefix + "/")}

    optimizer_state: dict[int, dict[str, Any]] = {}
    for index, plain in meta["optimizer"]["state"].items():
        optimizer_state[int(index)] = {**plain, **group(f"optimizer/{index}")}
    # JSON turned tuples (AdamW's betas) into lists; the optimizer unpacks either, but keep its types.
    groups = [{key: tuple(value) if isinstance(value, list) and key != "params" else value
               for key, value in param_group.items()} for param_group in meta["optimizer"]["param_groups"]]
    return TrainState(
        step=meta["step"], epoch=meta["epoch"], next_batch=meta["next_batch"], order=tensors.get("order"),
        epoch_loss=meta["epoch_loss"], model=group("model"), best=group("best") if meta["has_best"] else None,
        optimizer={"state": optimizer_state, "param_groups": groups}, scheduler=meta["scheduler"],
        rng={"torch": tensors["rng/torch"], "generator": tensors["rng/generator"], **meta["rng"]},
        modules=meta["modules"], best_score=meta["best_score"], best_epoch=meta["best_epoch"],
        stale=meta["stale"], history=meta["history"], seconds=meta["seconds"], fingerprint=meta["fingerprint"],
    )


def _write_synced(tmp: Path, data: bytes) -> None:
    with open(tmp, "wb") as file:
        file.write(data)
        file.flush()
        # On disk before the rename makes it the checkpoint: a full disk shows up here, not later.
        os.fsync(file.fileno())


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file held in memory."""
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]).get("__metadata__") or {}


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
