"""QPU cost estimates of a head's circuit on a fake IBM device (transpiled, nothing submitted)."""

from __future__ import annotations

import pytest

from finetune.quantum.ansatz import AnsatzConfig, build_ansatz
from finetune.quantum.cost import (
    DEFAULT_REP_DELAY, EVAL_CHUNK, ZNE_FACTOR, eval_workload, estimate_cost, train_workload,
)
from finetune.quantum.device import BackendConfigError, fake_device, parse_backend

DEVICE = "fake_sherbrooke"


@pytest.fixture(scope="module")
def device():
    return fake_device(DEVICE)


@pytest.fixture(scope="module")
def ansatz():
    return build_ansatz(AnsatzConfig(n_qubits=4, depth=2, readout="probs"))


def _estimate(spec, ansatz, device, workloads):
    return estimate_cost(parse_backend(spec), ansatz, workloads, device=device)


def test_a_transpiled_circuit_has_depth_two_qubit_gates_and_time(ansatz, device):
    estimate = _estimate(f"ibm:{DEVICE}", ansatz, device, [eval_workload(10, 2)])
    (circuit,) = estimate.circuits
    assert circuit.depth > 0 and circuit.two_qubit_gates > 0
    assert 1e-6 < circuit.circuit_seconds < 1e-3  # a measurement alone takes ~1.2 µs
    assert (circuit.rows, circuit.jobs, circuit.shots) == (20, 1, 4096)
    assert estimate.rep_delay == pytest.approx(DEFAULT_REP_DELAY)
    assert circuit.qpu_seconds == pytest.approx(20 * 4096 * (circuit.circuit_seconds + estimate.rep_delay))
    assert "fake_sherbrooke" in estimate.format() and "estimate" in estimate.format()


def test_the_estimate_scales_with_shots_and_queries(ansatz, device):
    base = _estimate(f"ibm:{DEVICE},shots=1000", ansatz, device, [eval_workload(10, 1)]).qpu_seconds
    assert _estimate(f"ibm:{DEVICE},shots=2000", ansatz, device, [eval_workload(10, 1)]).qpu_seconds == pytest.approx(2 * base)
    assert _estimate(f"ibm:{DEVICE},shots=1000", ansatz, device, [eval_workload(30, 1)]).qpu_seconds == pytest.approx(3 * base)
    zne = _estimate(f"ibm:{DEVICE},shots=1000,resilience=2", ansatz, device, [eval_workload(10, 1)])
    assert zne.qpu_seconds == pytest.approx(ZNE_FACTOR * base) and zne.mitigation_factor == ZNE_FACTOR


def test_workloads_count_jobs_as_the_circuit_layer_sends_them():
    assert eval_workload(EVAL_CHUNK + 1, 4) == eval_workload(EVAL_CHUNK + 1, 4)
    assert (eval_workload(EVAL_CHUNK + 1, 4).rows, eval_workload(EVAL_CHUNK + 1, 4).jobs) == (4 * (EVAL_CHUNK + 1), 2)
    train = train_workload(100, 20, 2, batch_size=32, epochs=3)
    # SPSA: 3 rows per example and circuit; 4 steps and 1 validation job per epoch.
    assert (train.rows, train.jobs) == (3 * (3 * 100 + 20) * 2, 3 * (4 + 1))


def test_cost_needs_an_ibm_backend(ansatz):
    with pytest.raises(BackendConfigError, match="ibm:<device>"):
        estimate_cost(parse_backend("aer:shots=10"), ansatz, [eval_workload(1, 1)])
