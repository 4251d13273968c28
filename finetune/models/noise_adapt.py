"""A head's output layers retrained for one noisy backend (``agent finetune calibrate --adapt-head``).

Temperature scaling never moves the argmax, so it cannot win back the queries that device noise
flips. Running the whole training set through a noisy backend to retrain on it would cost hours
of simulation (or QPU time), so this fits a small model of what the backend does to the circuits'
readouts on the calibration's validation run — which is run anyway — and retrains only the
layers that read them, on the model's training queries with that noise drawn afresh each step:

- ``probs`` readout, per circuit: the outcome distribution ``p`` becomes ``g·p + (1 − g)/K``
  (a depolarising gain ``g``), read with the spread of ``N`` shots (``N`` effective shots, fitted
  from what is left over: shot noise and every error the gain does not explain);
- ``z`` readout, per circuit: ``⟨Z⟩`` becomes ``g·⟨Z⟩``, with the spread of ``N`` shots.

The circuits, their projection and the encoder are left as they are (the backend still runs the
checkpoint's own circuits); the linear path and the circuits' readout layer learn how far to
trust the noisy readouts. Nothing here runs a circuit on the backend: the training set's
readouts are the exact simulator's.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from finetune.models.heads import Head

# Output layers of a head that adaptation retrains, by attribute name.
ADAPTED_LAYERS = ("linear", "quantum_out")
WEIGHTS_PREFIX = "calibration-"


def check_adaptable(head_kind: str, backend_key: str) -> None:
    """Refuse to adapt where there is nothing to adapt to: a head without circuits, or no noise.

    Raises:
        ValueError: One line saying which.
    """
    if head_kind not in ("quantum", "hybrid"):
        raise ValueError("--adapt-head needs a head with circuits (quantum or hybrid): this one has none, "
                         "so device noise cannot change it")
    if backend_key == "exact":
        raise ValueError("--adapt-head retrains the head for a noisy backend; the exact backend has no noise")


@dataclass(frozen=True)
class NoiseModel:
    """What a backend does to each circuit's readouts (see the module docstring).

    Args:
        readout: ``probs`` or ``z`` (the ansatz's readout).
        outputs: Readout values per circuit (``K``: ``2**n`` for probs, ``n`` for z).
        scale: The factor the head multiplies readouts by (``2**n`` for probs, 1 for z).
        gain: Per circuit, ``g`` (1 = no loss of signal, 0 = nothing left).
        shots: Per circuit, the effective number of shots ``N`` that explains the spread left over.
    """

    readout: str
    outputs: int
    scale: float
    gain: tuple[float, ...]
    shots: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.readout not in ("probs", "z"):
            raise ValueError(f"readout must be probs or z, got {self.readout!r}")
        if len(self.gain) != len(self.shots) or not self.gain:
            raise ValueError("gain and shots need one value per circuit")
        for g, n in zip(self.gain, self.shots):
            if not (math.isfinite(g) and math.isfinite(n)) or n <= 0:
                raise ValueError(f"invalid noise model: gain {g!r}, shots {n!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoiseModel:
        return cls(readout=data["readout"], outputs=int(data["outputs"]), scale=float(data["scale"]),
                   gain=tuple(float(v) for v in data["gain"]), shots=tuple(float(v) for v in data["shots"]))

    def sample(self, readouts: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Exact readouts ``[N, circuits * K]`` (as the head sees them, scaled) → one noisy draw."""
        n, m, k = readouts.shape[0], len(self.gain), self.outputs
        x = readouts.reshape(n, m, k) / self.scale
        gain = torch.tensor(self.gain, dtype=x.dtype)[None, :, None]
        shots = torch.tensor(self.shots, dtype=x.dtype)[None, :, None]
        if self.readout == "probs":
            mean = (gain * x + (1 - gain) / k).clamp(0.0, 1.0)
            spread = (mean * (1 - mean) / shots).sqrt()
        else:
            mean = (gain * x).clamp(-1.0, 1.0)
            spread = ((1 - mean**2).clamp_min(0.0) / shots).sqrt()
        noise = torch.randn(mean.shape, generator=generator, dtype=x.dtype)
        return ((mean + spread * noise) * self.scale).reshape(n, m * k)


def fit_noise_model(head: Head, exact: torch.Tensor, noisy: torch.Tensor) -> NoiseModel:
    """Fit :class:`NoiseModel` per circuit from the same rows' readouts on the exact simulator and
    on the backend (both ``[N, circuits * K]``, scaled as the head sees them)."""
    if head.quantum is None:
        raise ValueError("the head has no circuits: device noise cannot change it")
    if exact.shape != noisy.shape or exact.ndim != 2 or exact.shape[0] < 2:
        raise ValueError(f"exact and noisy readouts must be the same [N >= 2, F] shape, got "
                         f"{list(exact.shape)} and {list(noisy.shape)}")
    readout = head.config.ansatz.readout
    m, k, scale = head.config.n_circuits, head.quantum.ansatz.n_outputs, head.quantum.scale
    x = exact.double().reshape(-1, m, k) / scale
    y = noisy.double().reshape(-1, m, k) / scale
    centre = 1.0 / k if readout == "probs" else 0.0
    gains, shots = [], []
    for c in range(m):
        xc, yc = x[:, c] - centre, y[:, c] - centre
        # Least squares through the fully mixed point: a depolarised readout keeps it fixed.
        gain = float((xc * yc).sum() / (xc * xc).sum().clamp_min(1e-12))
        gain = min(max(gain, 0.0), 1.5)
        mean = gain * xc + centre
        variance = float(((y[:, c] - mean) ** 2).mean())
        spread = mean * (1 - mean) if readout == "probs" else (1 - mean**2).clamp_min(0.0)
        # No spread left over (a noiseless backend) reads as very many shots, not infinitely many.
        shots.append(min(float(spread.mean()) / max(variance, 1e-12), 1e6))
        gains.append(gain)
    return NoiseModel(readout=readout, outputs=k, scale=scale, gain=tuple(round(g, 6) for g in gains),
                      shots=tuple(round(max(n, 1.0), 3) for n in shots))


@dataclass(frozen=True)
class AdaptConfig:
    """How the output layers are retrained (chosen on BANKING77 validation runs, BENCHMARKS.md)."""

    epochs: int = 5
    lr: float = 3e-4
    batch_size: int = 64
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be at least 1, got {self.epochs}, {self.batch_size}")
        if not self.lr > 0 or self.weight_decay < 0 or not 0 <= self.label_smoothing < 1:
            raise ValueError("lr must be > 0, weight_decay >= 0 and label_smoothing in [0, 1)")


def output_layers(head: Head) -> dict[str, torch.Tensor]:
    """The weights adaptation retrains (``linear.*`` and ``quantum_out.*``), as detached copies."""
    return {f"{name}.{key}": value.detach().cpu().clone()
            for name in ADAPTED_LAYERS if getattr(head, name, None) is not None
            for key, value in getattr(head, name).state_dict().items()}


def load_output_layers(head: Head, tensors: dict[str, torch.Tensor]) -> None:
    """Put ``tensors`` (as :func:`output_layers` returns them) into ``head``'s output layers.

    Raises:
        ValueError: A tensor is missing, extra, or of another shape than the head's.
    """
    expected = output_layers(head)
    if set(tensors) != set(expected):
        raise ValueError(f"adapted head weights name {sorted(tensors)}, the head has {sorted(expected)}")
    for name, value in tensors.items():
        if tuple(value.shape) != tuple(expected[name].shape):
            raise ValueError(f"adapted head weight {name} has shape {list(value.shape)}, the head {list(expected[name].shape)}")
    with torch.no_grad():
        for name, value in tensors.items():
            layer, key = name.split(".", 1)
            target = getattr(getattr(head, layer), key)
            target.copy_(value.to(target.device, target.dtype))


def adapt_output_layers(
    head: Head,
    features: torch.Tensor,
    readouts: torch.Tensor,
    targets: torch.Tensor,
    noise: NoiseModel,
    config: AdaptConfig = AdaptConfig(),
) -> dict[str, torch.Tensor]:
    """Retrain copies of ``head``'s output layers on ``features`` and their exact ``readouts`` with
    ``noise`` drawn afresh for every batch; returns the new weights (``head`` is not changed).

    Args:
        head: The trained head (hybrid or quantum).
        features: Sentence features ``[N, D]`` of the training queries.
        readouts: The head's exact circuit readouts of the same queries ``[N, circuits * K]``.
        targets: Class indices ``[N]``.
        noise: The backend's noise model (:func:`fit_noise_model`).
        config: The schedule.
    """
    if head.quantum_out is None:
        raise ValueError("the head has no circuits: device noise cannot change it")
    if not len(features) == len(readouts) == len(targets) or len(features) == 0:
        raise ValueError("features, readouts and targets need the same, non-zero number of rows")
    linear = _copy(head.linear)
    readout_layer = _copy(head.quantum_out)
    params = [p for layer in (linear, readout_layer) if layer is not None for p in layer.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    features, readouts, targets = features.float().cpu(), readouts.float().cpu(), targets.long().cpu()
    for _ in range(config.epochs):
        order = torch.randperm(len(targets), generator=generator)
        for start in range(0, len(order), config.batch_size):
            rows = order[start:start + config.batch_size]
            logits = readout_layer(noise.sample(readouts[rows], generator))
            if linear is not None:
                logits = logits + linear(features[rows])
            loss = F.cross_entropy(logits, targets[rows], label_smoothing=config.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    adapted = {}
    for name, layer in (("linear", linear), ("quantum_out", readout_layer)):
        if layer is not None:
            adapted.update({f"{name}.{key}": value.detach().clone() for key, value in layer.state_dict().items()})
    return adapted


def adapted_logits(head: Head, weights: dict[str, torch.Tensor], features: torch.Tensor,
                   readouts: torch.Tensor) -> torch.Tensor:
    """Logits of the head with ``weights`` in its output layers, from features and circuit readouts
    already taken (so no circuit runs again)."""
    with torch.no_grad():
        logits = F.linear(readouts.float(), weights["quantum_out.weight"], weights["quantum_out.bias"])
        if "linear.weight" in weights:
            logits = logits + F.linear(features.float(), weights["linear.weight"], weights["linear.bias"])
    return logits


def weights_file(backend_key: str) -> str:
    """The file (in the model folder) that holds one backend's adapted output layers."""
    return f"{WEIGHTS_PREFIX}{hashlib.sha256(backend_key.encode()).hexdigest()[:12]}.safetensors"


def save_weights(directory: Path, backend_key: str, weights: dict[str, torch.Tensor]) -> str:
    from safetensors.torch import save_file

    from finetune.models.files import write_atomic

    name = weights_file(backend_key)
    tensors = {k: v.contiguous() for k, v in weights.items()}
    write_atomic(directory / name, lambda tmp: save_file(tensors, str(tmp), metadata={"backend": backend_key}))
    return name


def read_weights(directory: Path, name: str) -> dict[str, torch.Tensor]:
    """Read an adapted-weights file named by a calibration entry (never pickle).

    Raises:
        finetune.models.files.CheckpointError: The file is missing, unreadable or not finite.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from finetune.models.files import CheckpointError

    path = directory / name
    if Path(name).name != name or not name.startswith(WEIGHTS_PREFIX) or not path.is_file():
        raise CheckpointError(f"{path}: adapted head weights named in calibration.json are missing; "
                              "run agent finetune calibrate … --adapt-head again")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc}); "
                              "run agent finetune calibrate … --adapt-head again") from None
    if not all(torch.isfinite(v).all() for v in tensors.values()):
        raise CheckpointError(f"{path} holds non-finite weights; run agent finetune calibrate … --adapt-head again")
    return tensors


def _copy(layer: nn.Linear | None) -> nn.Linear | None:
    if layer is None:
        return None
    new = nn.Linear(layer.in_features, layer.out_features)
    new.load_state_dict({k: v.detach().cpu().float() for k, v in layer.state_dict().items()})
    return new
