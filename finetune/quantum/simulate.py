"""Exact, batched, differentiable statevector simulation of Qiskit circuits in torch.

:class:`CircuitSimulator` compiles a ``QuantumCircuit`` once into a list of torch operations.
Every gate angle must be an affine function of the circuit parameters (true for everything
:mod:`finetune.quantum.ansatz` builds), so all angles of a batch come from one matrix product,
and gradients for inputs and weights alike are exact: no parameter shifts, no sampling. This
is what makes training on a laptop CPU fast. Circuits of rx/ry/rz and fixed gates (every ansatz
here) run on the real-arithmetic engine of :mod:`finetune.quantum.real_engine` with a
hand-written backward; anything else runs on complex tensors with autograd.

The state of a batch is a ``[B, 2, ..., 2]`` tensor whose axis ``1 + (n-1-q)`` belongs to qubit
``q``, so flattening it gives Qiskit's little-endian amplitude order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterExpression
from qiskit.quantum_info import Operator

from finetune.quantum.ansatz import Ansatz, amplitudes_from_angles
from finetune.quantum import run_blocks
from finetune.quantum.real_engine import Program, gate_permutation, is_permutation

# Parameterised gates with a closed form below. Fixed gates of up to three qubits (h, x, cx,
# cz, swap, ccx, …) need no list: their matrix comes from Qiskit itself.
PARAMETRIC_GATES = ("rx", "ry", "rz", "p", "u", "crx", "cry", "crz", "cp", "rxx", "ryy", "rzz")
IGNORED = ("barrier", "delay")
MAX_SIM_QUBITS = 26
# Fixed gates are folded into one 2**n x 2**n matrix up to this size (1024 x 1024 complex).
MAX_DENSE_QUBITS = 10
DEFAULT_MEMORY_BYTES = 4 * 2**30
ENGINES = ("auto", "complex")
# States the real engine holds at once (forward: two; backward: the state and its gradient,
# before and after a step, and the product's buffer); the complex path keeps one per gate.
REAL_ENGINE_STATES = 6
# Neighbouring one-qubit runs joined into one block when the blocks are shared by rows.
SHARED_MAX_GROUP = 3


class UnsupportedCircuitError(ValueError):
    """The circuit holds something the torch simulator cannot compile."""


class SimulationMemoryError(MemoryError):
    """A batch would need more memory than the simulator is allowed to use."""


@dataclass(frozen=True)
class _Op:
    qubits: tuple[int, ...]
    name: str
    matrix: torch.Tensor | None  # fixed gates
    angle_slice: slice | None  # parametric gates: columns of the angle matrix


@dataclass(frozen=True)
class _Step:
    """One tensor operation of the compiled program.

    ``kind`` is ``single`` (a run of one-qubit gates on ``qubits[0]``, multiplied together
    first), ``dense`` (a run of fixed gates folded into one full-register matrix) or ``gate``.
    """

    kind: str
    qubits: tuple[int, ...]
    ops: tuple[_Op, ...]
    matrix: torch.Tensor | None = None


class CircuitSimulator:
    """Compiled simulator for one circuit.

    Args:
        circuit: The circuit. Measurements and resets are not allowed (readouts are computed
            from the exact probabilities).
        parameters: Column order of ``values``; defaults to ``circuit.parameters``.
        dtype: ``torch.complex64`` (fast, ~1e-7 precision) or ``torch.complex128``.
        max_memory_bytes: Refuse a batch whose states and autograd buffers would exceed this.
        engine: ``auto`` runs circuits of one-qubit gates and fixed gates (every ansatz here)
            on the real-arithmetic engine of :mod:`finetune.quantum.real_engine` and anything
            else on complex tensors with autograd; ``complex`` forces the latter (the
            reference the tests compare the two against).
    """

    def __init__(
        self,
        circuit: QuantumCircuit,
        parameters: Sequence[Parameter] | None = None,
        *,
        dtype: torch.dtype = torch.complex64,
        max_memory_bytes: int = DEFAULT_MEMORY_BYTES,
        engine: str = "auto",
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
        if dtype not in (torch.complex64, torch.complex128):
            raise ValueError(f"dtype must be torch.complex64 or torch.complex128, got {dtype}")
        n = circuit.num_qubits
        if n > MAX_SIM_QUBITS:
            raise UnsupportedCircuitError(
                f"{n} qubits is too many for statevector simulation (at most {MAX_SIM_QUBITS}): "
                "use a smaller circuit or an Aer/IBM backend"
            )
        self.n_qubits = n
        self.dtype = dtype
        self.real_dtype = torch.float32 if dtype == torch.complex64 else torch.float64
        self.max_memory_bytes = max_memory_bytes
        self.parameters = list(parameters) if parameters is not None else list(circuit.parameters)
        index = {p: i for i, p in enumerate(self.parameters)}
        missing = set(circuit.parameters) - set(index)
        if missing:
            names = ", ".join(sorted(p.name for p in missing))
            raise UnsupportedCircuitError(f"parameters missing from the column order: {names}")
        self.ops: list[_Op] = []
        coeff_rows: list[np.ndarray] = []
        offsets: list[float] = []
        for instruction in circuit.data:
            op = instruction.operation
            qubits = tuple(circuit.find_bit(q).index for q in instruction.qubits)
            if op.name in IGNORED:
                continue
            if instruction.clbits or op.name in ("measure", "reset"):
                raise UnsupportedCircuitError(
                    f"'{op.name}' cannot be simulated exactly; remove measurements and resets "
                    "(readouts are computed from the exact probabilities)"
                )
            symbolic = [p for p in op.params if isinstance(p, ParameterExpression) and p.parameters]
            if not symbolic:
                self.ops.append(_Op(qubits, op.name, self._fixed_matrix(op), None))
                continue
            if op.name not in PARAMETRIC_GATES:
                raise UnsupportedCircuitError(
                    f"gate '{op.name}' with symbolic parameters is not supported by the torch "
                    f"simulator (supported: {', '.join(PARAMETRIC_GATES)} and any fixed gate)"
                )
            start = len(offsets)
            for param in op.params:
                row, offset = _affine(param, index, op.name)
                coeff_rows.append(row)
                offsets.append(offset)
            self.ops.append(_Op(qubits, op.name, None, slice(start, len(offsets))))
        n_params = len(self.parameters)
        coeffs = np.stack(coeff_rows, axis=1) if coeff_rows else np.zeros((n_params, 0))
        self._coeffs = torch.as_tensor(coeffs, dtype=self.real_dtype)  # [P, A]
        self._offsets = torch.as_tensor(np.array(offsets), dtype=self.real_dtype)  # [A]
        self.steps = _fuse(self.ops, n, self.dtype)
        self._plan_single_products(len(offsets))
        self.program = self._real_program() if engine == "auto" else None
        self._shared: tuple[Program, run_blocks.RunBlocks] | None = None  # built on first use
        self.device = torch.device("cpu")

    def to(self, device: torch.device | str) -> CircuitSimulator:
        """Move the compiled program's constant tensors to ``device`` (in place; returns self)."""
        device = torch.device(device)
        if device == self.device:
            return self

        def move(op: _Op) -> _Op:
            return op if op.matrix is None else replace(op, matrix=op.matrix.to(device))

        self.ops = [move(op) for op in self.ops]
        self._other_ops = [move(op) for op in self._other_ops]
        self.steps = [replace(step, ops=tuple(move(op) for op in step.ops),
                              matrix=None if step.matrix is None else step.matrix.to(device)) for step in self.steps]
        for name in ("_coeffs", "_offsets", "_cos_basis", "_sin_basis", "_fixed_singles", "_single_table"):
            setattr(self, name, getattr(self, name).to(device))
        # The real engine answers torch's slow complex arithmetic on the CPU; its program is built
        # there, so on another device the complex path (whose tensors moved above) runs instead.
        if device.type != "cpu":
            self.program = None
        self.device = device
        return self

    def _fixed_matrix(self, op) -> torch.Tensor:
        if op.num_qubits > 3:
            raise UnsupportedCircuitError(f"gate '{op.name}' on {op.num_qubits} qubits is not supported")
        try:
            matrix = Operator(op).data
        except Exception as exc:  # Qiskit raises several types for gates without a matrix
            raise UnsupportedCircuitError(f"gate '{op.name}' has no matrix: {exc}") from exc
        return torch.as_tensor(matrix, dtype=self.dtype)

    @classmethod
    def for_ansatz(cls, ansatz: Ansatz, **kwargs) -> CircuitSimulator:
        return cls(ansatz.circuit, ansatz.parameters, **kwargs)

    def check_memory(self, batch: int) -> None:
        bytes_per_state = 2**self.n_qubits * torch.empty((), dtype=self.dtype).element_size()
        # Autograd keeps about one state per gate; forward alone needs two.
        states = REAL_ENGINE_STATES if self.program is not None else len(self.ops) + 2
        needed = batch * bytes_per_state * states
        if needed > self.max_memory_bytes:
            raise SimulationMemoryError(
                f"a batch of {batch} on {self.n_qubits} qubits needs about {needed / 2**30:.1f} GiB "
                f"(limit {self.max_memory_bytes / 2**30:.1f} GiB): use a smaller batch or fewer qubits"
            )

    def statevector(self, values: torch.Tensor, initial_state: torch.Tensor | None = None) -> torch.Tensor:
        """Final states ``[B, 2**n]`` (complex) for parameter values ``[B, P]``.

        ``initial_state`` (``[B, 2**n]``, default |0…0⟩) starts the circuit from another state.
        """
        self._check_values(values)
        if self.program is not None:
            final = self._run_real(values, initial_state)
            return torch.complex(final[:, 0], final[:, 1])
        batch = values.shape[0]
        self.check_memory(batch)
        n = self.n_qubits
        angles = values.to(self.real_dtype) @ self._coeffs + self._offsets  # [B, A]
        if initial_state is None:
            state = torch.zeros((batch, 2**n), dtype=self.dtype, device=values.device)
            state[:, 0] = 1
        else:
            state = initial_state.to(self.dtype)
        singles = self._single_products(angles)  # [B, S, 2, 2]
        single_index = 0
        for step in self.steps:
            if step.kind == "dense":
                state = state @ step.matrix.transpose(0, 1)
            elif step.kind == "single":
                state = _apply_single(state, singles[:, single_index], step.qubits[0], n)
                single_index += 1
            else:
                (op,) = step.ops
                # Fixed multi-qubit gates land here too once the register is too wide to fold.
                matrix = (
                    op.matrix
                    if op.matrix is not None
                    else _parametric_matrix(op.name, angles[:, op.angle_slice], self.dtype)
                )
                state = _apply(state.reshape(batch, *([2] * n)), matrix, step.qubits, n)
                state = state.reshape(batch, 2**n)
        return state

    def _check_values(self, values: torch.Tensor) -> None:
        if values.dim() != 2 or values.shape[1] != len(self.parameters):
            raise ValueError(
                f"values must be [batch, {len(self.parameters)}], got {list(values.shape)}"
            )

    def _real_program(self) -> Program | None:
        """The steps as a real-engine program, or None when a step needs the complex path."""
        compiled = self._compile_real(max_group=2)
        if compiled is None:
            return None
        program, self._run_blocks = compiled
        return program

    def _compile_real(self, max_group: int) -> tuple[Program, run_blocks.RunBlocks] | None:
        """A real-engine program and its block builder, joining up to ``max_group`` neighbouring
        runs per block; None when a step needs the complex path."""
        runs = [list(step.ops) for step in self.steps if step.kind == "single"]
        if not all(run_blocks.supported(run) for run in runs):
            return None  # p and u gates: their runs are built on the complex path
        blocks = run_blocks.RunBlocks(runs, self._coeffs.double().numpy(), self._offsets.double().numpy(), self.real_dtype)
        steps: list[tuple] = []
        singles = 0
        for step in self.steps:
            if step.kind == "single":
                _hoist(steps, ("block", step.qubits[0], singles))
                singles += 1
            elif step.kind == "dense":
                unitary = step.matrix.numpy()
                if is_permutation(unitary):
                    steps.append(("perm", np.argmax(unitary, axis=1), step.qubits))
                else:
                    steps.append(("dense", step.matrix, step.qubits))
            else:
                (op,) = step.ops
                if op.matrix is None or not is_permutation(op.matrix.numpy()):
                    return None  # parametric multi-qubit gate, or a wide non-permuting one
                steps.append(("perm", gate_permutation(op.matrix.numpy(), op.qubits, self.n_qubits), op.qubits))
        program = Program(steps, self.n_qubits, self.real_dtype, max_group=blocks.max_group(max_group))
        blocks.set_groups(program.groups)
        return program, blocks

    def _run_real(self, values: torch.Tensor, initial_state: torch.Tensor | None) -> torch.Tensor:
        """Final states ``[B, 2, 2**n]`` (real and imaginary parts) on the real engine."""
        self._check_values(values)
        batch = values.shape[0]
        self.check_memory(batch)
        if initial_state is None:
            initial = torch.zeros((batch, 2, 2**self.n_qubits), dtype=self.real_dtype)
            initial[:, 0, 0] = 1
        elif initial_state.is_complex():
            initial = torch.stack([initial_state.real, initial_state.imag], 1).to(self.real_dtype)
        else:
            real = initial_state.to(self.real_dtype)
            initial = torch.stack([real, torch.zeros_like(real)], 1)
        return self.program.run(self._run_blocks(values), initial)

    def probabilities_shared(self, values: torch.Tensor, initial: torch.Tensor) -> torch.Tensor | None:
        """Probabilities ``[M, 2**n, R]`` of ``M`` circuits, each run on ``R`` real rows.

        ``values`` (``[M, P]``) fixes each circuit's angles for all of its rows, so every gate
        block is built once per circuit and applied to the rows together (see
        :meth:`~finetune.quantum.real_engine.Program.run_shared`); ``initial`` is ``[M, 2**n, R]``.
        Returns None where that does not apply (the complex path, or a backward that would keep
        more than the engine's memory allowance): the caller then runs the rows one by one.
        """
        if self.program is None:
            return None
        if self._shared is None:
            # Blocks built once per circuit cost nothing next to the register operations, so
            # the shared program joins three runs per block (fewer, larger products).
            self._shared = self._compile_real(max_group=SHARED_MAX_GROUP)
        program, blocks = self._shared
        m, dim, rows = initial.shape
        self._check_values(values)
        self.check_memory(m * rows)
        keeps = torch.is_grad_enabled() and (initial.requires_grad or values.requires_grad)
        if keeps and not program.keeps_states(m * rows, initial.element_size()):
            return None
        real = initial.to(self.real_dtype)
        start = torch.stack([real, torch.zeros_like(real)], 1)  # [M, 2, 2**n, R]
        return program.run_shared(blocks(values), start).pow(2).sum(1)

    def _plan_single_products(self, n_angles: int) -> None:
        """Index tables that let one batched product chain fuse every run of one-qubit gates.

        The runtime "bank" of 2x2 matrices is laid out as: one rotation per angle column
        (rx/ry/rz: cos·C + sin·S), the fixed one-qubit gates, the other parametric ones (p, u),
        and the identity, which pads shorter runs.
        """
        cos_basis = torch.zeros((n_angles, 2, 2), dtype=self.dtype)
        sin_basis = torch.zeros((n_angles, 2, 2), dtype=self.dtype)
        sin_of = {
            "rx": [[0, -1j], [-1j, 0]],
            "ry": [[0, -1], [1, 0]],
            "rz": [[-1j, 0], [0, 1j]],
        }
        fixed: list[torch.Tensor] = []
        self._other_ops: list[_Op] = []
        runs: list[list[tuple[str, int]]] = []
        for step in self.steps:
            if step.kind != "single":
                continue
            run = []
            for op in step.ops:
                if op.matrix is not None:
                    run.append(("fixed", len(fixed)))
                    fixed.append(op.matrix)
                elif op.name in sin_of:
                    column = op.angle_slice.start
                    cos_basis[column] = torch.eye(2, dtype=self.dtype)
                    sin_basis[column] = torch.tensor(sin_of[op.name], dtype=self.dtype)
                    run.append(("rotation", column))
                else:
                    run.append(("other", len(self._other_ops)))
                    self._other_ops.append(op)
            runs.append(run)
        offset = {"rotation": 0, "fixed": n_angles, "other": n_angles + len(fixed)}
        identity = n_angles + len(fixed) + len(self._other_ops)
        longest = max((len(run) for run in runs), default=0)
        table = [[offset[kind] + i for kind, i in run] + [identity] * (longest - len(run)) for run in runs]
        self._cos_basis, self._sin_basis = cos_basis, sin_basis
        self._fixed_singles = torch.stack(fixed) if fixed else torch.zeros((0, 2, 2), dtype=self.dtype)
        self._single_table = torch.tensor(table, dtype=torch.long).reshape(len(runs), longest)

    def _single_products(self, angles: torch.Tensor) -> torch.Tensor:
        batch = angles.shape[0]
        if self._single_table.shape[0] == 0:
            return torch.zeros((batch, 0, 2, 2), dtype=self.dtype, device=angles.device)
        half = angles / 2  # real trig, then complex: complex cos/sin are several times slower
        rotations = (
            torch.cos(half).to(self.dtype)[..., None, None] * self._cos_basis
            + torch.sin(half).to(self.dtype)[..., None, None] * self._sin_basis
        )  # [B, A, 2, 2]
        others = [
            _parametric_matrix(op.name, angles[:, op.angle_slice], self.dtype) for op in self._other_ops
        ]
        bank = torch.cat(
            [
                rotations,
                self._fixed_singles.expand(batch, -1, -1, -1),
                torch.stack(others, 1) if others else rotations[:, :0],
                torch.eye(2, dtype=self.dtype, device=angles.device).expand(batch, 1, 2, 2),
            ],
            dim=1,
        )
        product = bank[:, self._single_table[:, 0]]
        for column in range(1, self._single_table.shape[1]):
            product = bank[:, self._single_table[:, column]] @ product
        return product

    def probabilities(self, values: torch.Tensor, initial_state: torch.Tensor | None = None) -> torch.Tensor:
        """Basis-state probabilities ``[B, 2**n]`` in Qiskit bit order."""
        if self.program is not None:
            return self._run_real(values, initial_state).pow(2).sum(1)
        state = torch.view_as_real(self.statevector(values, initial_state))
        return state.pow(2).sum(-1)


class ExactBackendModule(torch.nn.Module):
    """An :class:`Ansatz` as a differentiable map: values ``[B, P]`` → readout ``[B, K]``.

    For amplitude encoding the state-preparation tree is not simulated gate by gate: its output
    state is known in closed form (:func:`amplitudes_from_angles`), so the simulator starts from
    it and runs only the variational part. Same numbers (the tests check it against the full
    circuit), several times fewer operations.
    """

    def __init__(self, ansatz: Ansatz, dtype: torch.dtype = torch.complex64, engine: str = "auto") -> None:
        super().__init__()
        self.ansatz = ansatz
        self.n_inputs = len(ansatz.inputs)
        circuit = ansatz.circuit
        self.closed_form_prep = ansatz.n_prep_instructions > 0
        if self.closed_form_prep:
            circuit = circuit.copy_empty_like()
            for instruction in ansatz.circuit.data[ansatz.n_prep_instructions :]:
                circuit.append(instruction)
        self.simulator = CircuitSimulator(circuit, ansatz.parameters, dtype=dtype, engine=engine)
        readout = torch.as_tensor(ansatz.readout_matrix, dtype=self.simulator.real_dtype)
        self.register_buffer("readout", readout, persistent=False)
        self.readout_is_identity = bool(np.array_equal(ansatz.readout_matrix, np.eye(2**ansatz.n_qubits)))

    @property
    def weight_only(self) -> bool:
        """True when the inputs enter through the amplitude preparation alone, so a circuit's
        gates depend on its weights only and can be shared by every row (see :meth:`amplitude_readout`)."""
        return self.closed_form_prep and not bool(self.simulator._coeffs[: self.n_inputs].any())

    def amplitude_readout(self, vectors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor | None:
        """Readout ``[R, M, K]`` of ``M`` amplitude-encoded circuits on vectors ``[R, M, 2**n]``.

        The same numbers as :meth:`forward` on the tree angles of each vector (the prepared state
        is the vector normalised, an all-zero vector giving |0…0⟩) beside ``weights`` ``[M, W]``,
        without the round trip through the angles and with each circuit's gates built once for
        all rows. Returns None where the shared path does not apply (see :attr:`weight_only` and
        :meth:`CircuitSimulator.probabilities_shared`).
        """
        if not self.weight_only:
            return None
        self.simulator.to(vectors.device)
        dtype = self.simulator.real_dtype
        vectors = vectors.to(dtype)
        norm = vectors.norm(dim=-1, keepdim=True)
        zero = torch.zeros_like(vectors)
        zero[..., 0] = 1
        states = torch.where(norm > 0, vectors / torch.where(norm > 0, norm, torch.ones_like(norm)), zero)
        m = weights.shape[0]
        values = torch.cat([torch.zeros((m, self.n_inputs), dtype=dtype, device=vectors.device), weights.to(dtype)], 1)
        probs = self.simulator.probabilities_shared(values, states.permute(1, 2, 0))
        if probs is None:
            return None
        probs = probs.permute(2, 0, 1)  # [R, M, 2**n]
        return probs if self.readout_is_identity else probs @ self.readout

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        # The compiled program follows its inputs (the head's device) the first time they move.
        self.simulator.to(values.device)
        initial = None
        if self.closed_form_prep:
            angles = values[:, : self.n_inputs].to(self.simulator.real_dtype)
            initial = amplitudes_from_angles(angles)
        out = self.simulator.probabilities(values, initial) @ self.readout
        return out.to(values.dtype) if values.is_floating_point() else out


def _hoist(steps: list[tuple], block: tuple) -> None:
    """Append a one-qubit block as early as it commutes, up to the run of blocks before it.

    Past the dense-folding size, a CX ring arrives as single gates with the next layer's
    runs flushed between them; moving the runs ahead gathers a layer's blocks (applied in
    pairs) and lets the ring's permutations compose into one gather.
    """
    qubit = block[1]
    at = len(steps)
    while at > 0:
        before = steps[at - 1]
        # Stop next to a block: the run it belongs to is found (moving further would split it).
        if before[0] == "perm" and qubit not in before[2]:
            at -= 1
        else:
            break
    steps.insert(at, block)


def _affine(param, index: dict, gate: str) -> tuple[np.ndarray, float]:
    """Coefficients and offset of an angle that must be affine in the parameters."""
    row = np.zeros(len(index))
    if not isinstance(param, ParameterExpression):
        return row, float(param)
    for p in param.parameters:
        grad = param.gradient(p)
        if isinstance(grad, ParameterExpression) and grad.parameters:
            raise UnsupportedCircuitError(
                f"gate '{gate}' angle {param} is not linear in {p.name}; "
                "the torch simulator needs affine angles"
            )
        row[index[p]] += float(grad)
    offset = float(param.bind({p: 0.0 for p in param.parameters}))
    return row, offset


def _parametric_matrix(name: str, angles: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Batched gate matrices ``[B, d, d]`` for a parametric gate (Qiskit conventions)."""
    theta = angles[:, 0]
    if name in ("rx", "ry", "rz", "crx", "cry", "crz", "rxx", "ryy", "rzz"):
        c = torch.cos(theta / 2).to(dtype)
        s = torch.sin(theta / 2).to(dtype)
        zero = torch.zeros_like(c)
        one = torch.ones_like(c)
        if name in ("rx", "crx"):
            base = _mat2(c, -1j * s, -1j * s, c)
        elif name in ("ry", "cry"):
            base = _mat2(c, -s, s, c)
        elif name in ("rz", "crz"):
            base = _mat2(c - 1j * s, zero, zero, c + 1j * s)
        else:
            return _two_qubit_rotation(name, c, s, zero)
        if name.startswith("c"):
            return _controlled(base, one, zero)
        return base
    if name in ("p", "cp"):
        phase = torch.exp(1j * theta.to(dtype))
        one = torch.ones_like(phase)
        zero = torch.zeros_like(phase)
        base = _mat2(one, zero, zero, phase)
        return _controlled(base, one, zero) if name == "cp" else base
    if name == "u":
        t, phi, lam = (angles[:, i].to(dtype) for i in range(3))
        c, s = torch.cos(t / 2), torch.sin(t / 2)
        return _mat2(c, -torch.exp(1j * lam) * s, torch.exp(1j * phi) * s, torch.exp(1j * (phi + lam)) * c)
    raise UnsupportedCircuitError(f"gate '{name}' is not supported")  # pragma: no cover


def _mat2(a, b, c, d) -> torch.Tensor:
    return torch.stack([torch.stack([a, b], -1), torch.stack([c, d], -1)], -2)


def _controlled(base: torch.Tensor, one, zero) -> torch.Tensor:
    """4x4 controlled-U with the control on the first qarg (Qiskit's little-endian matrix)."""
    batch = base.shape[0]
    out = torch.zeros((batch, 4, 4), dtype=base.dtype, device=base.device)
    out[:, 0, 0] = one
    out[:, 2, 2] = one
    # Control is qarg 0 = low bit: the target acts on indices 1 (|t=0,c=1>) and 3 (|t=1,c=1>).
    out[:, 1, 1] = base[:, 0, 0]
    out[:, 1, 3] = base[:, 0, 1]
    out[:, 3, 1] = base[:, 1, 0]
    out[:, 3, 3] = base[:, 1, 1]
    return out


def _two_qubit_rotation(name: str, c, s, zero) -> torch.Tensor:
    """exp(-iθ/2 P⊗P) for P in X, Y, Z."""
    batch = c.shape[0]
    out = torch.zeros((batch, 4, 4), dtype=c.dtype, device=c.device)
    if name == "rzz":
        for k, sign in enumerate((1, -1, -1, 1)):
            out[:, k, k] = c - 1j * sign * s
        return out
    for k in range(4):
        out[:, k, k] = c
    # XX and YY flip both bits: |00>↔|11>, |01>↔|10>; YY picks up -1 on the |00>↔|11> pair.
    outer = -1.0 if name == "ryy" else 1.0
    out[:, 0, 3] = out[:, 3, 0] = -1j * s * outer
    out[:, 1, 2] = out[:, 2, 1] = -1j * s
    return out


def _fuse(ops: list[_Op], n: int, dtype: torch.dtype) -> list[_Step]:
    """Group gates into fewer tensor operations without changing the circuit's unitary.

    Runs of one-qubit gates on a qubit become one 2x2 product; runs of fixed gates (the
    entangler) become one full-register matrix while that stays small. Gates on disjoint
    qubits commute, which is what lets a pending run wait while other qubits move on.
    """
    steps: list[_Step] = []
    pending: dict[int, list[_Op]] = {}
    dense: list[_Op] = []
    touched: set[int] = set()
    fold_dense = n <= MAX_DENSE_QUBITS

    def flush(qubits) -> None:
        for q in qubits:
            if pending.get(q):
                steps.append(_Step("single", (q,), tuple(pending.pop(q))))

    def emit_dense() -> None:
        if dense:
            steps.append(_Step("dense", tuple(sorted(touched)), tuple(dense), _dense_matrix(dense, n, dtype)))
            dense.clear()
            touched.clear()

    for op in ops:
        if len(op.qubits) == 1:
            if op.qubits[0] in touched:
                emit_dense()
            pending.setdefault(op.qubits[0], []).append(op)
        elif op.matrix is not None and fold_dense:
            flush(op.qubits)
            dense.append(op)
            touched.update(op.qubits)
        else:
            emit_dense()
            flush(op.qubits)
            steps.append(_Step("gate", op.qubits, (op,)))
    emit_dense()
    flush(sorted(pending))
    return steps


def _dense_matrix(ops: list[_Op], n: int, dtype: torch.dtype) -> torch.Tensor:
    # Run the gates on every basis state at once: row k ends as U|k>, i.e. the rows are U^T.
    states = torch.eye(2**n, dtype=dtype).reshape(2**n, *([2] * n))
    for op in ops:
        states = _apply(states, op.matrix, op.qubits, n)
    return states.reshape(2**n, 2**n).transpose(0, 1).contiguous()


def _apply_single(state: torch.Tensor, matrix: torch.Tensor, qubit: int, n: int) -> torch.Tensor:
    """Apply a one-qubit matrix (``[2, 2]`` or ``[B, 2, 2]``) to a flat ``[B, 2**n]`` state."""
    batch = state.shape[0]
    view = state.reshape(batch, 2 ** (n - 1 - qubit), 2, 2**qubit)
    # One broadcast batched matmul ([B, 1, 2, 2] @ [B, L, 2, R]): a single torch op (and one
    # autograd node) per fused run, where four broadcast products and a stack took ten; the
    # step's cost is per-op overhead, not arithmetic.
    m = matrix if matrix.dim() == 3 else matrix.expand(batch, 2, 2)
    out = torch.matmul(m[:, None], view)
    return out.reshape(batch, 2**n)


def _apply(state: torch.Tensor, matrix: torch.Tensor, qubits: tuple[int, ...], n: int) -> torch.Tensor:
    """Apply a k-qubit matrix (``[d, d]`` or ``[B, d, d]``) to ``qubits`` of a ``[B, 2..2]`` state."""
    k = len(qubits)
    batch = state.shape[0]
    # Put the gate's qubits last, most significant first, so the trailing 2**k index matches
    # Qiskit's matrix ordering (qarg 0 is the low bit).
    axes = [1 + (n - 1 - q) for q in reversed(qubits)]
    moved = torch.movedim(state, axes, list(range(n + 1 - k, n + 1)))
    shape = moved.shape
    flat = moved.reshape(batch, -1, 2**k)
    if matrix.dim() == 2:
        out = flat @ matrix.transpose(0, 1)
    else:
        out = torch.bmm(flat, matrix.transpose(1, 2))
    return torch.movedim(out.reshape(shape), list(range(n + 1 - k, n + 1)), axes)
