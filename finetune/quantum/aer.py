"""The ``aer`` backend: Qiskit Aer simulation, with shots and noise from a fake IBM device.

Four modes, one Aer job per call in each:

- no noise, no shots: Aer ``EstimatorV2`` at precision 0 on the ansatz observables (exact);
- no noise, shots: Aer's statevector simulator saves the exact outcome probabilities of every
  row, and ``shots`` outcomes per row are drawn from them (see "Shots" below);
- noise, no shots: an exact noisy result from a density-matrix simulation of the circuit
  transpiled to the fake device's ISA, with the device's noise model (gate errors, relaxation),
  and the device's readout errors applied to the probabilities afterwards;
- noise, shots: the same exact noisy probabilities, with ``shots`` outcomes drawn per row. When
  the circuit has more active qubits than a density matrix can hold, Aer's ``SamplerV2`` runs
  the measured ISA circuit with the noise model instead (trajectories, one record per shot).

Shots: every readout is diagonal, i.e. a measurement of all logical qubits in the computational
basis. The shots of one circuit are then independent draws from one categorical distribution,
the circuit's outcome probabilities (with readout errors, for a noisy device); their counts are
multinomial. Aer's sampler draws from exactly this distribution, one shot at a time, and keeps a
record per shot; here Aer computes the distribution once per row and
``numpy.random.Generator.multinomial`` (seeded with the backend seed + job index) draws the
counts, so the estimates have the same statistics (genuine shot noise, not a Gaussian
approximation) at a fraction of the cost.

Error mitigation (noise only; :mod:`finetune.quantum.mitigation`): ``readout=m3`` corrects each
row's drawn counts with M3, calibrated once per ansatz on the same noisy simulator; ``zne=1,3,5``
runs the same rows on the globally folded circuits, one Aer job per scale, and extrapolates each
readout to zero noise.

Why not Aer's ``EstimatorV2`` for noise: it saves every expectation value on *all* the circuit's
qubits, which for a 127-qubit ISA circuit defeats Aer's truncation of idle qubits. Saving the
probabilities of the few logical qubits keeps the simulation to the active qubits.

Why the noise model is cut down to the active qubits: Aer loads the whole device noise model
(~800 errors for a 127-qubit device) for every job, about 2 s of overhead per job even for a
4-qubit circuit; the errors on idle qubits never apply, so dropping them changes no number and
makes a job ~30x faster.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from finetune.quantum.device import (
    BackendSpec,
    DeviceCircuit,
    check_values,
    compile_for_device,
    fake_device,
    parameter_columns,
)
from finetune.quantum.mitigation import ReadoutMitigator, extrapolate, fold_global

if TYPE_CHECKING:
    from finetune.quantum.ansatz import Ansatz

# Options of every Aer simulator here. Runtime binding runs all rows of a pub as one
# experiment in C++: per-row Python overhead goes away, and Aer no longer spreads the few
# shots of each tiny circuit over OpenMP threads, which on a busy 2-core machine made
# sampling ~8x slower (measured: 51 s vs 6 s for 2000 rows x 1024 shots).
AER_OPTIONS = {"runtime_parameter_bind_enable": True}
# A density matrix of n qubits holds 4**n complex numbers: 12 active qubits is 256 MiB per
# circuit, and Aer runs several circuits of a batch at once.
MAX_DENSITY_QUBITS = 12


@dataclass(frozen=True, eq=False)
class _Compiled:
    """What one ansatz needs on this backend, built on first use and reused."""

    circuit: Any  # the circuit Aer runs (logical, or ISA for a noisy device)
    columns: np.ndarray
    runner: Any  # an Aer primitive or simulator
    # "estimate" (EstimatorV2), "sample" (SamplerV2) or "probabilities" (AerSimulator saving
    # the exact outcome probabilities; shots, if any, are drawn from them afterwards)
    mode: str
    device_circuit: DeviceCircuit | None = None
    confusion: tuple[np.ndarray, ...] = ()  # per logical qubit: P[measured | true]
    # Zero-noise extrapolation: (scale, folded circuit, its parameter columns) per noise scale.
    scaled: tuple[tuple[int, Any, np.ndarray], ...] = ()
    mitigator: ReadoutMitigator | None = None  # readout=m3


class AerBackend:
    """Aer simulation of an ansatz (see the module docstring for the four modes).

    Args:
        spec: A parsed ``aer`` spec (shots, noise device, seed).
    """

    def __init__(self, spec: BackendSpec) -> None:
        if spec.kind != "aer":
            raise ValueError(f"AerBackend needs an aer spec, got {spec}")
        self.spec = spec
        self.name = str(spec)
        self.shots = spec.shots
        self.on_job: Callable[[str], None] | None = None
        self.device = fake_device(spec.noise) if spec.noise else None
        self._compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._jobs = 0

    def expectations(self, ansatz: Ansatz, values: np.ndarray) -> np.ndarray:
        values = check_values(ansatz, values)
        if values.shape[0] == 0:
            return np.zeros((0, ansatz.n_outputs))
        compiled = self.compiled(ansatz)
        # A fresh, reproducible seed per job: reusing one seed would repeat the same shot noise.
        seed = self.spec.seed + self._jobs
        self._jobs += 1
        bound = values[:, compiled.columns]
        if compiled.mode == "estimate":
            return self._estimate(ansatz, compiled, bound, seed)
        if compiled.mode == "sample":
            return self._sample(ansatz, compiled, bound, seed)
        if not compiled.scaled:
            return self._readout(ansatz, compiled, compiled.circuit, bound, seed)
        # Zero-noise extrapolation: the same rows at every noise scale, each with its own seed.
        readouts = []
        for scale, circuit, columns in compiled.scaled:
            readouts.append(self._readout(ansatz, compiled, circuit, values[:, columns], seed + 7919 * scale))
        return extrapolate(tuple(s for s, _, _ in compiled.scaled), np.stack(readouts), self.spec.zne_fit or "linear")

    def _readout(self, ansatz: Ansatz, compiled: _Compiled, circuit: Any, bound: np.ndarray, seed: int) -> np.ndarray:
        probs = self._probabilities(compiled, circuit, bound, seed)
        if self.shots is not None:
            probs = draw_shots(probs, self.shots, seed)
            if compiled.mitigator is not None:
                probs = compiled.mitigator.correct(probs, self.shots)
        return probs @ ansatz.readout_matrix

    def circuits_per_row(self) -> int:
        """Circuits run per row of a batch: one per ZNE noise scale (one without ZNE)."""
        return len(self.spec.zne) if self.spec.zne else 1

    def compiled(self, ansatz: Ansatz) -> _Compiled:
        """The circuit and primitive for ``ansatz`` (transpiled once per ansatz)."""
        if ansatz not in self._compiled:
            self._compiled[ansatz] = self._compile(ansatz)
        return self._compiled[ansatz]

    def _compile(self, ansatz: Ansatz) -> _Compiled:
        from qiskit_aer import AerSimulator
        from qiskit_aer.primitives import EstimatorV2, SamplerV2

        measure = self.shots is not None
        if self.device is None:
            if not measure:
                runner = EstimatorV2(options={"default_precision": 0.0, "backend_options": AER_OPTIONS})
                columns = parameter_columns(ansatz, ansatz.circuit)
                return _Compiled(ansatz.circuit, columns, runner, "estimate")
            # Shots are drawn from the exact probabilities (see the module docstring).
            circuit = ansatz.circuit.copy()
            circuit.save_probabilities(qubits=list(range(ansatz.n_qubits)))
            runner = AerSimulator(method="statevector", **AER_OPTIONS)
            return _Compiled(circuit, parameter_columns(ansatz, circuit), runner, "probabilities")
        isa = compile_for_device(ansatz, self.device, seed=self.spec.seed)
        noise_model = self._restricted_noise_model(isa.active)
        if len(isa.active) > MAX_DENSITY_QUBITS:
            if not measure:
                raise ValueError(
                    f"exact noisy simulation of {len(isa.active)} active qubits is too large for a "
                    f"density matrix (at most {MAX_DENSITY_QUBITS}): give shots, e.g. "
                    f"aer:noise={self.spec.noise},shots=4096"
                )
            if self.spec.zne:
                raise ValueError(
                    f"zne= needs a density-matrix simulation (at most {MAX_DENSITY_QUBITS} active qubits), "
                    f"and this circuit has {len(isa.active)}: drop zne= for this model")
            # Too large for a density matrix: sample noisy trajectories with Aer's sampler.
            isa = compile_for_device(ansatz, self.device, seed=self.spec.seed, measure=True)
            noise_model = self._restricted_noise_model(isa.active)
            options = {"backend_options": {**AER_OPTIONS, "noise_model": noise_model}}
            runner = SamplerV2(default_shots=self.shots, options=options)
            return _Compiled(isa.circuit, isa.columns, runner, "sample", isa,
                             mitigator=self._mitigator(isa.physical, noise_model))
        # Index bit i of the saved probabilities is qubit physical[i], i.e. logical qubit i.
        circuit = isa.circuit.copy()
        circuit.save_probabilities(qubits=list(isa.physical))
        scaled = []
        for scale in self.spec.zne or ():
            folded = fold_global(isa.circuit, scale, self.device)
            folded.save_probabilities(qubits=list(isa.physical))
            scaled.append((scale, folded, parameter_columns(ansatz, folded)))
        runner = AerSimulator(method="density_matrix", noise_model=noise_model, **AER_OPTIONS)
        confusion = self._confusion(isa.physical)
        return _Compiled(circuit, isa.columns, runner, "probabilities", isa, confusion, tuple(scaled),
                         self._mitigator(isa.physical, noise_model))

    def _mitigator(self, physical: tuple[int, ...], noise_model: Any) -> ReadoutMitigator | None:
        """M3 calibrated on this device's noise (readout errors included), when readout=m3."""
        if self.spec.readout != "m3":
            return None
        from qiskit_aer import AerSimulator

        simulator = AerSimulator.from_backend(self.device, noise_model=noise_model, seed_simulator=self.spec.seed)
        return ReadoutMitigator(simulator, tuple(physical))

    def _restricted_noise_model(self, qubits: frozenset[int]):
        """The device noise model without the errors of idle qubits (see the module docstring)."""
        from qiskit_aer.noise import NoiseModel

        full, basis_gates = device_noise(self.spec.noise)
        errors = [
            error
            for error in full["errors"]
            if all(set(gate_qubits) <= qubits for gate_qubits in error.get("gate_qubits", []))
        ]
        model = NoiseModel.from_dict({**full, "errors": errors})
        # Errors carry their gates into the basis; noiseless device gates must stay in it too.
        model.add_basis_gates(list(basis_gates))
        return model

    def _confusion(self, physical: tuple[int, ...]) -> tuple[np.ndarray, ...]:
        """Readout confusion matrix of each logical qubit, the one the noise model applies."""
        from qiskit_aer.noise.device.models import basic_device_readout_errors

        errors = {
            qubits[0]: np.asarray(error.probabilities)
            for qubits, error in basic_device_readout_errors(target=self.device.target)
        }
        return tuple(errors.get(q, np.eye(2)) for q in physical)

    def _notify(self, job) -> None:
        if self.on_job is not None:
            self.on_job(job.job_id())

    def _estimate(self, ansatz: Ansatz, compiled: _Compiled, bound: np.ndarray, seed: int) -> np.ndarray:
        compiled.runner.options.run_options["seed_simulator"] = seed
        # Observables [1, K] against values [B, 1, P] broadcast to one [B, K] pub.
        job = compiled.runner.run([(compiled.circuit, [list(ansatz.observables)], bound[:, None, :])])
        self._notify(job)
        return ansatz.postprocess(job.result()[0].data.evs)

    def _sample(self, ansatz: Ansatz, compiled: _Compiled, bound: np.ndarray, seed: int) -> np.ndarray:
        compiled.runner.options.run_options["seed_simulator"] = seed
        job = compiled.runner.run([(compiled.circuit, bound)])
        self._notify(job)
        probs = counts_to_probabilities(job.result()[0].data.meas, ansatz.n_qubits)
        if compiled.mitigator is not None:
            probs = compiled.mitigator.correct(probs, self.shots)
        return probs @ ansatz.readout_matrix

    def _probabilities(self, compiled: _Compiled, circuit: Any, bound: np.ndarray, seed: int) -> np.ndarray:
        """``[B, 2**n]`` exact outcome probabilities of the logical qubits, in one Aer job.

        Statevector without noise; density matrix with the device noise model, then the
        device's readout errors.
        """
        params = circuit.parameters
        binds = [{param: bound[:, i] for i, param in enumerate(params)}]
        # One shot: the probabilities are saved from the final state, no outcome is sampled.
        job = compiled.runner.run(circuit, parameter_binds=binds, shots=1, seed_simulator=seed)
        self._notify(job)
        result = job.result()
        probs = np.array([result.data(i)["probabilities"] for i in range(bound.shape[0])])
        return apply_confusion(probs, compiled.confusion) if compiled.confusion else probs


def draw_shots(probs: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Outcome frequencies of ``shots`` draws per row from ``probs`` ``[B, 2**n]``.

    Measuring every qubit in the computational basis, ``shots`` shots of a circuit are
    independent draws from its outcome distribution, so the counts are multinomial: the same
    distribution Aer's sampler draws from, one shot at a time.
    """
    probs = np.clip(probs, 0.0, None)  # float round-off can leave -1e-17
    probs = probs / probs.sum(axis=1, keepdims=True)
    counts = np.random.default_rng(seed).multinomial(shots, probs)
    return counts / shots


@lru_cache(maxsize=4)
def device_noise(name: str) -> tuple[dict, tuple[str, ...]]:
    """``NoiseModel.from_backend`` of a fake device, as a dict, and its basis gates.

    Cached per process because building it takes ~6 s for a 127-qubit device (a quantum
    channel per gate and qubit pair); callers must not mutate the dict.
    """
    from qiskit_aer.noise import NoiseModel

    model = NoiseModel.from_backend(fake_device(name))
    return model.to_dict(), tuple(model.basis_gates)


def counts_to_probabilities(bits, n_qubits: int) -> np.ndarray:
    """``[B, 2**n]`` outcome frequencies from a sampler ``BitArray`` of shape ``[B]``.

    The packed bytes are big-endian (the last byte holds clbits 0-7), so the integer they spell
    is Σ_i b_i 2**i with clbit i = logical qubit i: exactly the index of Qiskit's (and the
    ansatz's ``readout_matrix``) little-endian bit order.
    """
    packed = np.asarray(bits.array, dtype=np.int64)  # [B, shots, n_bytes]
    batch, shots = packed.shape[:2]
    outcomes = np.zeros((batch, shots), dtype=np.int64)
    for column in range(packed.shape[-1]):
        outcomes = (outcomes << 8) | packed[..., column]
    dim = 2**n_qubits
    flat = (outcomes + dim * np.arange(batch)[:, None]).ravel()
    return np.bincount(flat, minlength=batch * dim).reshape(batch, dim) / shots


def apply_confusion(probs: np.ndarray, confusion: tuple[np.ndarray, ...]) -> np.ndarray:
    """Measured-outcome probabilities from true ones, qubit by qubit: p'[m] = Σ_t p[t] C[t, m]."""
    batch, dim = probs.shape
    n = len(confusion)
    state = probs.reshape(batch, *([2] * n))
    for qubit, matrix in enumerate(confusion):
        axis = 1 + (n - 1 - qubit)  # little-endian: qubit 0 is the last axis
        state = np.moveaxis(np.tensordot(state, matrix, axes=([axis], [0])), -1, axis)
    return state.reshape(batch, dim)
