"""Parameterised circuits for quantum heads: the one source of truth.

An :class:`Ansatz` holds a ``qiskit.QuantumCircuit`` whose parameters are split into two
``ParameterVector``\\ s, ``x`` (inputs, one row per example) and ``w`` (trainable weights),
plus the diagonal observables that form its readout. The same circuit object is compiled to
torch by :mod:`finetune.quantum.simulate`, transpiled for Aer, and sent to IBM hardware by
:mod:`finetune.quantum.backends`; nothing else describes the circuit.

Every readout is diagonal in the computational basis, so it is a fixed linear map of the
basis-state probabilities (:attr:`Ansatz.readout_matrix`). That is what lets a sampler's
counts, an estimator's expectation values and an exact statevector give the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from itertools import combinations
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import SparsePauliOp

ENCODINGS = ("angle", "amplitude")
ENTANGLERS = ("cx_ring", "cx_line", "cz_ring", "cz_line", "none")
READOUTS = ("z", "zz", "probs")

# Amplitude encoding prepares 2**n amplitudes with 2**n - 1 rotations and about 2**(n+1) CNOTs;
# past 10 qubits that is thousands of gates per example, too deep for any real device.
MAX_AMPLITUDE_QUBITS = 10
MAX_QUBITS = 24


@dataclass(frozen=True)
class AnsatzConfig:
    """Shape of a variational circuit.

    Args:
        n_qubits: Number of qubits.
        depth: Number of variational layers (rotations + entangler).
        encoding: ``angle`` puts one input on each qubit as an RY angle (re-uploaded before every
            layer when ``reupload``); ``amplitude`` loads a real vector of ``2**n_qubits``
            amplitudes through a tree of uniformly controlled RY rotations.
        entangler: Two-qubit gate pattern after each layer (``cx``/``cz``, ``ring``/``line``).
        readout: ``z`` gives ⟨Z_i⟩ per qubit, ``zz`` gives ⟨Z_iZ_j⟩ for every pair i < j, ``probs``
            gives the ``2**n_qubits`` basis-state probabilities.
        reupload: Re-upload the inputs before every layer (angle encoding only). Re-uploading
            makes the model a richer Fourier series of its inputs (Schuld et al. 2021).
    """

    n_qubits: int = 6
    depth: int = 3
    encoding: str = "angle"
    entangler: str = "cx_ring"
    readout: str = "probs"
    reupload: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.n_qubits <= MAX_QUBITS:
            raise ValueError(f"n_qubits must be between 1 and {MAX_QUBITS}, got {self.n_qubits}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
        for name, value, allowed in (
            ("encoding", self.encoding, ENCODINGS),
            ("entangler", self.entangler, ENTANGLERS),
            ("readout", self.readout, READOUTS),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        if self.encoding == "amplitude" and self.n_qubits > MAX_AMPLITUDE_QUBITS:
            raise ValueError(
                f"amplitude encoding supports at most {MAX_AMPLITUDE_QUBITS} qubits, got {self.n_qubits}"
            )
        if self.readout == "zz" and self.n_qubits < 2:
            raise ValueError("readout 'zz' needs at least 2 qubits")

    @property
    def n_inputs(self) -> int:
        """Number of input parameters one example supplies."""
        return self.n_qubits if self.encoding == "angle" else 2**self.n_qubits - 1

    @property
    def n_weights(self) -> int:
        """Number of trainable circuit weights: RY+RZ per qubit per layer, then a final RY."""
        return self.depth * 2 * self.n_qubits + self.n_qubits

    @property
    def n_outputs(self) -> int:
        """Width of the readout vector."""
        n = self.n_qubits
        return {"z": n, "zz": n * (n - 1) // 2, "probs": 2**n}[self.readout]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnsatzConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ansatz settings: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True, eq=False)
class Ansatz:
    """A built circuit with its parameter vectors and readout.

    ``parameters`` fixes the column order of every ``values`` array handed to a simulator or
    backend: all inputs first, then all weights.
    """

    config: AnsatzConfig
    circuit: QuantumCircuit
    inputs: ParameterVector
    weights: ParameterVector
    observables: tuple[SparsePauliOp, ...] = field(repr=False)
    n_prep_instructions: int = 0  # leading instructions that only load the inputs (amplitude tree)

    @property
    def parameters(self) -> list:
        return [*self.inputs, *self.weights]

    @property
    def n_qubits(self) -> int:
        return self.config.n_qubits

    @property
    def n_outputs(self) -> int:
        return self.config.n_outputs

    @cached_property
    def readout_matrix(self) -> np.ndarray:
        """``[2**n, K]`` map from basis-state probabilities (Qiskit bit order) to the readout."""
        n = self.n_qubits
        k = np.arange(2**n)
        signs = 1.0 - 2.0 * ((k[:, None] >> np.arange(n)[None, :]) & 1)  # ⟨Z_q⟩ per basis state
        if self.config.readout == "z":
            return signs
        if self.config.readout == "zz":
            return np.stack([signs[:, i] * signs[:, j] for i, j in combinations(range(n), 2)], axis=1)
        return np.eye(2**n)

    def postprocess(self, expectation_values: np.ndarray) -> np.ndarray:
        """Turn estimator expectation values of :attr:`observables` into the readout ``[B, K]``.

        For ``probs`` the observables are the ``2**n`` Z-strings, and the probabilities are
        their Walsh–Hadamard transform: p_k = 2^-n Σ_s (-1)^{popcount(s & k)} ⟨Z^s⟩.
        """
        values = np.asarray(expectation_values, dtype=np.float64)
        if self.config.readout != "probs":
            return values
        return values @ _walsh_hadamard(self.n_qubits)


def build_ansatz(config: AnsatzConfig) -> Ansatz:
    """Build the circuit described by ``config``."""
    n = config.n_qubits
    x = ParameterVector("x", config.n_inputs)
    w = ParameterVector("w", config.n_weights)
    qc = QuantumCircuit(n, name=f"qhead_{config.encoding}_{n}q_d{config.depth}")
    if config.encoding == "amplitude":
        _amplitude_tree(qc, list(x))
    n_prep = len(qc.data)
    weight_iter = iter(w)
    for layer in range(config.depth):
        if config.encoding == "angle" and (layer == 0 or config.reupload):
            for q in range(n):
                qc.ry(x[q], q)
        for q in range(n):
            qc.ry(next(weight_iter), q)
            qc.rz(next(weight_iter), q)
        _entangle(qc, config.entangler)
    for q in range(n):
        qc.ry(next(weight_iter), q)
    return Ansatz(config, qc, x, w, tuple(readout_observables(n, config.readout)), n_prep)


def readout_observables(n_qubits: int, readout: str) -> list[SparsePauliOp]:
    """The observables an estimator measures for ``readout`` (all diagonal, so they commute)."""
    if readout == "z":
        terms = [[q] for q in range(n_qubits)]
    elif readout == "zz":
        terms = [list(pair) for pair in combinations(range(n_qubits), 2)]
    elif readout == "probs":
        terms = [[q for q in range(n_qubits) if s >> q & 1] for s in range(2**n_qubits)]
    else:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}; got {readout!r}")
    return [
        SparsePauliOp.from_sparse_list([("Z" * len(qs), qs, 1.0)], num_qubits=n_qubits) for qs in terms
    ]


def _entangle(qc: QuantumCircuit, entangler: str) -> None:
    n = qc.num_qubits
    if entangler == "none" or n < 2:
        return
    gate, pattern = entangler.split("_")
    pairs = [(q, q + 1) for q in range(n - 1)]
    if pattern == "ring" and n > 2:
        pairs.append((n - 1, 0))
    for a, b in pairs:
        getattr(qc, gate)(a, b)


def _amplitude_tree(qc: QuantumCircuit, angles: list) -> None:
    """Prepare real amplitudes from ``2**n - 1`` tree angles (see :func:`amplitude_angles`).

    Level ``t`` (from qubit n-1 down to 0) rotates qubit ``t`` by an angle chosen by the value
    of the higher qubits ``t+1..n-1``: a uniformly controlled RY.
    """
    n = qc.num_qubits
    start = 0
    for t in range(n - 1, -1, -1):
        count = 2 ** (n - 1 - t)
        _uniformly_controlled_ry(qc, angles[start : start + count], list(range(t + 1, n)), t)
        start += count


def _uniformly_controlled_ry(qc: QuantumCircuit, angles: list, controls: list[int], target: int) -> None:
    """RY(angles[j]) on ``target`` when the controls read j (controls[0] is the low bit).

    Recursive split on the last control: UCRY(α) = CX·UCRY(b)·CX·UCRY(a) with a = (α0+α1)/2,
    b = (α0-α1)/2, since X·RY(b)·X = RY(-b). Angles stay linear in the parameters, which the
    torch simulator and parameter-shift gradients rely on.
    """
    if not controls:
        qc.ry(angles[0], target)
        return
    half = len(angles) // 2
    low, high = angles[:half], angles[half:]
    _uniformly_controlled_ry(qc, [(a0 + a1) / 2 for a0, a1 in zip(low, high)], controls[:-1], target)
    qc.cx(controls[-1], target)
    _uniformly_controlled_ry(qc, [(a0 - a1) / 2 for a0, a1 in zip(low, high)], controls[:-1], target)
    qc.cx(controls[-1], target)


def amplitude_angles(vectors: Any, eps: float = 1e-12) -> Any:
    """Tree angles that make :func:`build_ansatz`'s amplitude encoding prepare ``vectors``.

    Works on torch tensors (differentiable, so a classical layer before it trains) and on numpy
    arrays. ``vectors`` is ``[B, 2**n]`` and need not be normalised; the prepared state is
    ``v / |v|`` (Qiskit bit order: index k = Σ_q b_q 2^q).
    """
    is_numpy = isinstance(vectors, np.ndarray)
    if is_numpy:
        import torch

        vectors = torch.as_tensor(vectors, dtype=torch.float64)
    import torch

    batch, dim = vectors.shape
    n = int(round(math.log2(dim)))
    if 2**n != dim:
        raise ValueError(f"amplitude encoding needs a power-of-two width, got {dim}")
    out = []
    for t in range(n - 1, -1, -1):
        blocks = vectors.reshape(batch, 2 ** (n - 1 - t), 2, 2**t)
        lo, hi = blocks[:, :, 0, :], blocks[:, :, 1, :]
        if t == 0:  # the last level carries the signs
            theta = 2 * torch.atan2(hi[..., 0], lo[..., 0])
        else:
            theta = 2 * torch.atan2(_norm(hi, eps), _norm(lo, eps))
        out.append(theta)
    angles = torch.cat(out, dim=1)
    return angles.numpy() if is_numpy else angles


def amplitudes_from_angles(angles: Any) -> Any:
    """The real amplitudes ``[B, 2**n]`` that the amplitude tree prepares from its angles.

    The inverse of :func:`amplitude_angles` (up to normalisation): amplitude k is the product,
    over levels, of cos(θ/2) or sin(θ/2) by bit t of k. Differentiable in torch.
    """
    import torch

    batch, count = angles.shape
    n = int(round(math.log2(count + 1)))
    amps = torch.ones((batch, 1), dtype=angles.dtype, device=angles.device)
    start = 0
    for t in range(n - 1, -1, -1):
        width = 2 ** (n - 1 - t)
        half = angles[:, start : start + width] / 2
        start += width
        # New index j' = 2j + b_t: the high bits seen so far, then bit t.
        amps = (amps[:, :, None] * torch.stack([torch.cos(half), torch.sin(half)], dim=-1)).reshape(batch, -1)
    return amps


def _norm(blocks: Any, eps: float) -> Any:
    import torch

    # sqrt has an infinite slope at 0: an all-zero block takes sqrt(eps) inside the where, which
    # keeps the gradient finite, but its norm is an exact 0. (Adding eps to every block would put
    # a stray amplitude of about sqrt(eps)/|v| on the zero block, large for small-norm vectors.)
    squares = blocks.pow(2).sum(-1)
    nonzero = squares > 0
    safe = torch.where(nonzero, squares, torch.full_like(squares, eps)).sqrt()
    return torch.where(nonzero, safe, torch.zeros_like(safe))


def _walsh_hadamard(n_qubits: int) -> np.ndarray:
    k = np.arange(2**n_qubits)
    parity = np.array([bin(v).count("1") & 1 for v in range(2**n_qubits)])
    return (1.0 - 2.0 * parity[k[:, None] & k[None, :]]) / 2**n_qubits
