"""What a run on an IBM device would cost, before it is paid for.

The head's circuit is transpiled for the device exactly as :class:`~finetune.quantum.ibm.IBMRuntimeBackend`
transpiles it, and the run's workload is counted the way the circuit layer sends it:

- every forward pass of a head is ONE job holding ONE PUB whose parameter rows are
  ``examples × n_circuits`` (:mod:`finetune.quantum.layer`);
- evaluation scores features in chunks of :data:`EVAL_CHUNK` examples (one job per chunk);
- training on a sampling backend uses SPSA, 3 rows per example and circuit (base, +, −), one job
  per step, and scores the validation split once per epoch (chunks of ``max(batch, 256)``).
  Early stopping can end training sooner, so the training figure is an upper bound.

QPU seconds are an estimate, not a quote from IBM::

    qpu_seconds = rows × shots × (circuit_seconds + rep_delay) × mitigation_factor

``circuit_seconds`` is the critical path of the transpiled circuit through the device's gate
durations, plus one measurement; ``rep_delay`` is the device's default delay between shots
(250 µs when it reports none), which dominates for small circuits. Our readouts are all diagonal,
so each row is one measurement basis. ``mitigation_factor`` is 3 for ``resilience=2`` (zero-noise
extrapolation runs each circuit at three noise factors) and 1 otherwise; twirling splits the same
shots over randomizations and dynamical decoupling only fills idle time, so neither is counted.
The service adds queueing and per-job overhead, which this leaves out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from finetune.quantum.device import BackendConfigError, BackendSpec, compile_for_device, fake_device

if TYPE_CHECKING:
    from qiskit import QuantumCircuit
    from qiskit.providers import BackendV2

    from finetune.quantum.ansatz import Ansatz

# Examples per head forward pass when evaluating (TextClassifier.probabilities' batch size).
EVAL_CHUNK = 256
# Rows per example and circuit of an SPSA training step: the base values, then ± a perturbation.
SPSA_ROWS = 3
# IBM devices report a default repetition delay of 250 µs; used when a device reports none.
DEFAULT_REP_DELAY = 250e-6
# Zero-noise extrapolation (resilience level 2) runs at noise factors (1, 3, 5) by default.
ZNE_FACTOR = 3


@dataclass(frozen=True)
class Workload:
    """How often one circuit runs: parameter rows (executions of ``shots`` each) in ``jobs`` jobs.

    Every job holds one PUB, so ``jobs`` is also the number of PUBs.
    """

    label: str
    rows: int
    jobs: int

    def __post_init__(self) -> None:
        if self.rows < 0 or self.jobs < 0:
            raise ValueError(f"rows and jobs must be >= 0, got {self.rows} and {self.jobs}")


def eval_workload(examples: int, n_circuits: int, chunk: int = EVAL_CHUNK) -> Workload:
    """Scoring ``examples`` once with a head of ``n_circuits`` circuits."""
    return Workload("eval", examples * n_circuits, math.ceil(examples / chunk))


def train_workload(n_train: int, n_val: int, n_circuits: int, *, batch_size: int, epochs: int) -> Workload:
    """Training for at most ``epochs`` epochs with SPSA, validation scored after each epoch."""
    steps = math.ceil(n_train / batch_size)
    val_jobs = math.ceil(n_val / max(batch_size, EVAL_CHUNK))
    rows = epochs * (SPSA_ROWS * n_train + n_val) * n_circuits
    return Workload("train", rows, epochs * (steps + val_jobs))


@dataclass(frozen=True)
class CircuitCost:
    """One workload of one transpiled circuit, and its estimated QPU time."""

    label: str
    qubits: int
    depth: int
    two_qubit_gates: int
    circuit_seconds: float
    rows: int
    jobs: int
    shots: int
    qpu_seconds: float


@dataclass(frozen=True)
class CostEstimate:
    """The estimate for a whole command: one line per circuit workload."""

    backend: str
    device: str
    rep_delay: float
    mitigation_factor: int
    circuits: tuple[CircuitCost, ...]

    @property
    def qpu_seconds(self) -> float:
        return sum(circuit.qpu_seconds for circuit in self.circuits)

    @property
    def jobs(self) -> int:
        return sum(circuit.jobs for circuit in self.circuits)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(qpu_seconds=self.qpu_seconds, jobs=self.jobs)
        return data

    def format(self) -> str:
        """A table for the terminal, ending with the total and how it was estimated."""
        lines = [f"dry run on {self.device} ({self.backend}): nothing is submitted",
                 f"{'circuit':<8} {'qubits':>6} {'depth':>6} {'2q gates':>8} {'rows':>9} {'jobs/PUBs':>9} "
                 f"{'shots':>6} {'µs/shot':>8} {'QPU s':>10}"]
        for c in self.circuits:
            lines.append(f"{c.label:<8} {c.qubits:>6} {c.depth:>6} {c.two_qubit_gates:>8} {c.rows:>9} "
                         f"{c.jobs:>9} {c.shots:>6} {c.circuit_seconds * 1e6:>8.1f} {c.qpu_seconds:>10.1f}")
        lines.append(f"estimated QPU time: {self.qpu_seconds:.1f} s ({self.qpu_seconds / 60:.1f} min) = rows × shots × "
                     f"(circuit time + {self.rep_delay * 1e6:.0f} µs rep delay) × {self.mitigation_factor} "
                     "(estimate; queueing and job overhead not included)")
        return "\n".join(lines)


def device_for(spec: BackendSpec) -> BackendV2:
    """The device an ``ibm`` spec names: a fake one offline, a real one through the account."""
    if spec.kind != "ibm" or spec.device is None:
        raise BackendConfigError(f"a cost estimate needs an ibm:<device> backend, got {spec}")
    if spec.offline:
        return fake_device(spec.device)
    from finetune.quantum.ibm import connect_device

    return connect_device(spec.device)


def estimate_cost(
    spec: BackendSpec, ansatz: Ansatz, workloads: list[Workload], device: BackendV2 | None = None
) -> CostEstimate:
    """Transpile ``ansatz`` for the spec's device and estimate the QPU time of ``workloads``.

    Args:
        spec: An ``ibm`` spec (device, shots, mitigation).
        ansatz: The head's circuit.
        workloads: How often the circuit runs (:func:`eval_workload`, :func:`train_workload`).
        device: The device, when already at hand (default: :func:`device_for`).
    """
    device = device if device is not None else device_for(spec)
    compiled = compile_for_device(ansatz, device, seed=spec.seed)
    isa = compiled.circuit
    per_shot = critical_path_seconds(isa, device) + _measure_seconds(device, compiled.physical)
    rep_delay = _rep_delay(device)
    factor = ZNE_FACTOR if spec.resilience == 2 else 1
    shots = spec.shots or 0
    depth = isa.depth(lambda instruction: instruction.operation.name != "barrier")
    two_qubit = sum(1 for instruction in isa.data
                    if len(instruction.qubits) == 2 and instruction.operation.name != "barrier")
    circuits = tuple(
        CircuitCost(work.label, ansatz.n_qubits, depth, two_qubit, per_shot, work.rows, work.jobs, shots,
                    work.rows * shots * (per_shot + rep_delay) * factor)
        for work in workloads
    )
    return CostEstimate(str(spec), device.name, rep_delay, factor, circuits)


def critical_path_seconds(circuit: QuantumCircuit, device: BackendV2) -> float:
    """The longest chain of gate durations through ``circuit`` (virtual ``rz`` takes no time)."""
    target = device.target
    ready = [0.0] * circuit.num_qubits
    for instruction in circuit.data:
        qubits = [circuit.find_bit(qubit).index for qubit in instruction.qubits]
        start = max((ready[q] for q in qubits), default=0.0)
        end = start + _duration(target, instruction.operation.name, tuple(qubits))
        for q in qubits:
            ready[q] = end
    return max(ready, default=0.0)


def _duration(target: Any, name: str, qubits: tuple[int, ...]) -> float:
    if name not in target.operation_names:
        return 0.0
    properties = target[name].get(qubits)
    return float(properties.duration or 0.0) if properties is not None else 0.0


def _measure_seconds(device: BackendV2, qubits: tuple[int, ...]) -> float:
    return max((_duration(device.target, "measure", (q,)) for q in qubits), default=0.0)


def _rep_delay(device: BackendV2) -> float:
    try:
        delay = device.configuration().default_rep_delay
    except Exception:  # noqa: BLE001 - not every BackendV2 has a V1-style configuration
        delay = None
    return float(delay) if delay and delay > 0 else DEFAULT_REP_DELAY
