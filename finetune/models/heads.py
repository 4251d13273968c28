"""Classification heads: features ``[..., D]`` → logits ``[..., C]``.

Four kinds share one interface, so tasks, trainer and checkpoints never care which one runs:

- ``linear``: one affine map, the baseline.
- ``mlp``: a classical bottleneck (``D → hidden → C``), sized to match a quantum head's
  parameter count in ablations.
- ``quantum``: a "dressed" circuit — classical projection → parameterised circuits → linear
  readout. Every path from features to logits goes through the circuits.
- ``hybrid``: the linear path plus a quantum branch whose logits are added to it.

Why the quantum head is built this way: a 6-qubit angle-encoded circuit sees only 6 numbers of
a 384-dimensional sentence feature, and on BANKING77 that bottleneck cost 18 points of
accuracy. Amplitude encoding loads ``2**n`` numbers into ``n`` qubits (64 for 6 qubits) and the
``probs`` readout returns ``2**n`` numbers, and ``n_circuits`` independent circuits run side by
side (folded into the batch, so the simulator still does one pass). The circuit then adds
capacity — a learned quadratic form |U v̂|² of a wide projection — instead of strangling it.
Token features (``[B, T, D]``) are folded into the batch dimension.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch import nn

from finetune.quantum.ansatz import AnsatzConfig, amplitude_angles, build_ansatz
from finetune.quantum.simulate import ExactBackendModule

HEAD_KINDS = ("linear", "mlp", "quantum", "hybrid")


@dataclass(frozen=True)
class HeadConfig:
    """What a head is made of; saved in every checkpoint's ``config.json``.

    Args:
        kind: ``linear``, ``mlp``, ``quantum`` or ``hybrid``.
        in_features: Width of the encoder features.
        n_classes: Number of output classes.
        ansatz: Circuit shape for ``quantum``/``hybrid``.
        n_circuits: Independent circuits run side by side (different projections and weights).
        hidden: Width of the ``mlp`` bottleneck.
        dropout: Dropout on the features before the head.
    """

    kind: str = "hybrid"
    in_features: int = 384
    n_classes: int = 2
    ansatz: AnsatzConfig = field(
        default_factory=lambda: AnsatzConfig(n_qubits=6, depth=2, encoding="amplitude", readout="probs")
    )
    n_circuits: int = 4
    hidden: int = 64
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise ValueError(f"head kind must be one of {', '.join(HEAD_KINDS)}; got {self.kind!r}")
        for name in ("in_features", "n_classes", "n_circuits", "hidden"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {self.n_classes}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if isinstance(self.ansatz, dict):  # from_dict hands in plain dicts
            object.__setattr__(self, "ansatz", AnsatzConfig.from_dict(self.ansatz))

    @property
    def uses_circuit(self) -> bool:
        return self.kind in ("quantum", "hybrid")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeadConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown head settings: {', '.join(sorted(unknown))}")
        return cls(**data)


class QuantumBranch(nn.Module):
    """Projection → ``n_circuits`` circuits → features ``[N, n_circuits * K]``.

    Args:
        config: The head config (its ``ansatz`` and ``n_circuits``).
        backend: Where circuits run: ``exact`` (torch autograd) or any backend spec that
            :mod:`finetune.quantum.backends` understands (``aer``, ``aer:noise=…``, ``ibm:…``).
        gradient: ``parameter_shift`` (exact), ``spsa`` (2 circuits per example), or ``auto``:
            parameter shift on exact-value backends, SPSA where shots or noise are involved.
    """

    def __init__(self, config: HeadConfig, backend: str = "exact", gradient: str = "auto") -> None:
        super().__init__()
        self.ansatz = build_ansatz(config.ansatz)
        self.n_circuits = config.n_circuits
        acfg = config.ansatz
        # Amplitude encoding takes a 2**n vector (turned into tree angles); angle encoding takes
        # one angle per qubit, squashed to (-π, π) so the projection cannot wrap around.
        width = 2**acfg.n_qubits if acfg.encoding == "amplitude" else acfg.n_inputs
        self.width = width
        self.project = nn.Linear(config.in_features, config.n_circuits * width)
        # Small random weights: near-identity circuits at the start keep early gradients alive
        # (avoids barren-plateau-like flat starts for deep random circuits).
        generator = torch.Generator().manual_seed(0)
        init = 0.1 * torch.randn(config.n_circuits, acfg.n_weights, generator=generator)
        self.weights = nn.Parameter(init)
        self.backend = backend
        self.gradient = gradient
        self.circuit = _circuit_layer(self.ansatz, backend, gradient)
        # Probabilities average 2**-n; rescaling them to mean 1 keeps the readout layer's
        # gradients on the same scale as for ⟨Z⟩ readouts, which already lie in [-1, 1].
        self.scale = float(2**acfg.n_qubits) if acfg.readout == "probs" else 1.0

    @property
    def out_features(self) -> int:
        return self.n_circuits * self.ansatz.n_outputs

    def set_backend(self, backend: str, gradient: str = "auto") -> None:
        """Run the same circuits (same weights) somewhere else, e.g. Aer with noise."""
        self.backend = backend
        self.gradient = gradient
        self.circuit = _circuit_layer(self.ansatz, backend, gradient)

    def circuit_values(self, features: torch.Tensor) -> torch.Tensor:
        """The parameter values ``[N * n_circuits, P]`` (inputs, then weights) the circuits
        run on for ``features`` ``[N, D]``: what Aer or IBM receives."""
        n = features.shape[0]
        projected = self.project(features).reshape(n * self.n_circuits, self.width)
        if self.ansatz.config.encoding == "amplitude":
            inputs = amplitude_angles(projected)
        else:
            inputs = math.pi * torch.tanh(projected)
        weights = self.weights.repeat(n, 1)  # row i*M + m uses circuit m's weights
        return torch.cat([inputs, weights], dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        n = features.shape[0]
        readout = None
        if isinstance(self.circuit, ExactBackendModule) and self.ansatz.config.encoding == "amplitude":
            # Exact amplitude encoding: the state is the projected vector itself and the gates
            # depend on the weights only, so each circuit is built once for the whole batch.
            projected = self.project(features).reshape(n, self.n_circuits, self.width)
            readout = self.circuit.amplitude_readout(projected, self.weights)
        if readout is None:
            readout = self.circuit(self.circuit_values(features))
        return self.scale * readout.reshape(n, -1).to(features.dtype)


class Head(nn.Module):
    """A classification head of any kind (see module docstring)."""

    def __init__(self, config: HeadConfig, backend: str = "exact", gradient: str = "auto") -> None:
        super().__init__()
        self.config = config
        self.dropout = nn.Dropout(config.dropout)
        d, c = config.in_features, config.n_classes
        self.linear = nn.Linear(d, c) if config.kind in ("linear", "hybrid") else None
        self.mlp = (
            nn.Sequential(nn.Linear(d, config.hidden), nn.GELU(), nn.Linear(config.hidden, c))
            if config.kind == "mlp"
            else None
        )
        self.quantum = QuantumBranch(config, backend, gradient) if config.uses_circuit else None
        self.quantum_out = nn.Linear(self.quantum.out_features, c) if self.quantum is not None else None
        if config.kind == "hybrid":
            # The branch starts silent so the hybrid begins as the linear head and the circuits
            # only take over what they improve.
            nn.init.zeros_(self.quantum_out.weight)
            nn.init.zeros_(self.quantum_out.bias)

    def reorder_classes(self, order: list[int]) -> None:
        """Make class ``i`` the old class ``order[i]``: every output layer's rows follow."""
        if sorted(order) != list(range(self.config.n_classes)):
            raise ValueError(f"a class order must list each of the {self.config.n_classes} classes once")
        index = torch.tensor(order)
        outputs = [self.linear, self.mlp[-1] if self.mlp is not None else None, self.quantum_out]
        with torch.no_grad():
            for layer in (layer for layer in outputs if layer is not None):
                layer.weight.copy_(layer.weight[index.to(layer.weight.device)])
                layer.bias.copy_(layer.bias[index.to(layer.bias.device)])

    def set_backend(self, backend: str, gradient: str = "auto") -> None:
        """Move the circuits to another backend; ``gradient`` as in :class:`QuantumBranch`."""
        if self.quantum is not None:
            self.quantum.set_backend(backend, gradient)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        lead = features.shape[:-1]
        x = self.dropout(features.reshape(-1, features.shape[-1]))
        if self.config.kind == "linear":
            logits = self.linear(x)
        elif self.config.kind == "mlp":
            logits = self.mlp(x)
        else:
            logits = self.quantum_out(self.quantum(x))
            if self.linear is not None:
                logits = logits + self.linear(x)
        return logits.reshape(*lead, -1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def matched_mlp(config: HeadConfig) -> HeadConfig:
    """An ``mlp`` config whose parameter count matches ``config``'s head (for ablations)."""
    target = count_parameters(Head(config))
    d, c = config.in_features, config.n_classes
    hidden = max(1, round((target - c) / (d + 1 + c)))
    return replace(config, kind="mlp", hidden=hidden)


GRADIENTS = ("auto", "parameter_shift", "spsa")


def _circuit_layer(ansatz, backend: str, gradient: str = "auto") -> nn.Module:
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {', '.join(GRADIENTS)}; got {gradient!r}")
    if backend == "exact":  # no Aer/IBM imports on the common path
        return ExactBackendModule(ansatz)
    from finetune.quantum.device import parse_backend
    from finetune.quantum.layer import CircuitLayer

    if gradient == "auto":
        # Parameter shift costs ~2 circuits per gate occurrence per example (121 for a 6-qubit,
        # depth-3 ansatz): affordable on exact-value Aer, minutes per step with noise or shots,
        # where SPSA's 2 circuits per example are the practical choice.
        spec = parse_backend(backend)
        gradient = "parameter_shift" if spec.shots is None and spec.noise is None else "spsa"
    return CircuitLayer(ansatz, backend, gradient=gradient)
