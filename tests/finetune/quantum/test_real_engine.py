"""Tests for finetune.quantum.real_engine and run_blocks: the real-arithmetic engine against
Qiskit's statevectors and against the complex autograd path of the same simulator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.quantum_info import Statevector

from eval.bench_circuit import bench_problem
from finetune.quantum.ansatz import AnsatzConfig, build_ansatz
from finetune.quantum.real_engine import gate_permutation, is_permutation
from finetune.quantum.simulate import CircuitSimulator, ExactBackendModule

REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}
TOLERANCE = {torch.complex64: 1e-5, torch.complex128: 1e-10}
ONE_QUBIT = ("rx", "ry", "rz")
FIXED = {"h": 1, "x": 1, "s": 1, "t": 1, "sx": 1, "y": 1, "cx": 2, "cz": 2, "swap": 2, "cy": 2, "ccx": 3}


def rotation_circuit(n_qubits: int, n_gates: int, n_params: int, seed: int, fixed: dict = FIXED) -> QuantumCircuit:
    """Random rotations with affine angles and fixed gates: what the real engine runs."""
    rng = np.random.default_rng(seed)
    params = ParameterVector("t", n_params)
    qc = QuantumCircuit(n_qubits)
    pool = list(ONE_QUBIT) + [g for g, k in fixed.items() if k <= n_qubits]
    for _ in range(n_gates):
        name = pool[rng.integers(len(pool))]
        if name in ONE_QUBIT:
            a, b = (params[i] for i in rng.choice(n_params, size=2))
            angle = [a, 0.5 * a - b + 0.3, float(rng.uniform(-3, 3))][rng.integers(3)]
            getattr(qc, name)(angle, int(rng.integers(n_qubits)))
        else:
            qubits = rng.choice(n_qubits, size=fixed[name], replace=False).tolist()
            getattr(qc, name)(*qubits)
    for i, p in enumerate(params):
        qc.ry(p, i % n_qubits)
    return qc


def _states(circuit, values):
    return np.array([Statevector(circuit.assign_parameters(dict(zip(circuit.parameters, row)))).data for row in values])


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize(("n_qubits", "seed"), [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4), (7, 5)])
def test_random_rotation_circuits_run_on_the_real_engine_and_match_qiskit(n_qubits, seed, dtype):
    circuit = rotation_circuit(n_qubits, 40, 5, seed)
    values = np.random.default_rng(seed).uniform(-2 * np.pi, 2 * np.pi, size=(3, circuit.num_parameters))
    sim = CircuitSimulator(circuit, dtype=dtype)
    assert sim.program is not None
    state = sim.statevector(torch.as_tensor(values, dtype=REAL[dtype]))
    np.testing.assert_allclose(state.numpy(), _states(circuit, values), atol=TOLERANCE[dtype], rtol=0)


def test_long_runs_on_one_qubit_are_split_and_chained():
    # Nine rotations in a row on each qubit: more than one expanded segment per run.
    circuit = QuantumCircuit(2)
    params = ParameterVector("t", 4)
    for k in range(9):
        for q in range(2):
            getattr(circuit, ONE_QUBIT[k % 3])(params[(k + q) % 4] * (1 + 0.1 * k), q)
    sim = CircuitSimulator(circuit, dtype=torch.complex128)
    assert sim._run_blocks.chained
    values = np.random.default_rng(1).uniform(-3, 3, size=(2, 4))
    state = sim.statevector(torch.as_tensor(values))
    np.testing.assert_allclose(state.numpy(), _states(circuit, values), atol=1e-10, rtol=0)


def test_a_wide_register_runs_its_permutation_gates_as_gathers():
    circuit = rotation_circuit(11, 50, 6, 7, fixed={"x": 1, "cx": 2, "swap": 2, "ccx": 3})
    sim = CircuitSimulator(circuit, dtype=torch.complex128)
    assert sim.program is not None
    assert {ins.kind for ins in sim.program.instructions} <= {"rot", "block", "gather"}
    values = np.random.default_rng(2).uniform(-3, 3, size=(2, circuit.num_parameters))
    np.testing.assert_allclose(sim.statevector(torch.as_tensor(values)).numpy(), _states(circuit, values), atol=1e-10, rtol=0)


def test_circuits_with_other_parametric_gates_keep_the_complex_path():
    a = Parameter("a")
    for build in (lambda qc: qc.p(a, 0), lambda qc: qc.crx(a, 0, 1), lambda qc: qc.u(a, 0.1, 0.2, 1)):
        qc = QuantumCircuit(2)
        build(qc)
        assert CircuitSimulator(qc).program is None
    assert CircuitSimulator(QuantumCircuit(2), engine="complex").program is None
    with pytest.raises(ValueError, match="engine must be one of auto, complex, got 'fast'"):
        CircuitSimulator(QuantumCircuit(1), engine="fast")


def test_permutation_helpers():
    cx = np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]])  # control qarg 0
    assert is_permutation(cx) and not is_permutation(np.eye(2) * 1j) and not is_permutation(np.ones((2, 2)))
    # CX with control on qubit 2, target qubit 0 of a 3-qubit register: |100> <-> |101>.
    src = gate_permutation(cx, (2, 0), 3)
    assert src.tolist() == [0, 1, 2, 3, 5, 4, 7, 6]


def _step(module, inputs, weights, coefficients, real):
    x = torch.tensor(inputs, dtype=real, requires_grad=True)
    w = torch.tensor(weights, dtype=real, requires_grad=True)
    out = module(torch.cat([x, w.expand(x.shape[0], -1)], dim=1))
    (out * coefficients.to(real)).sum().backward()
    return out.detach().double(), x.grad.double(), w.grad.double()


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("keep_bytes", [None, 0])
def test_bench_step_equals_the_complex_autograd_path(dtype, keep_bytes):
    """Values and gradients of the bench circuit's step within 1e-5 of complex128 autograd,
    whether backward keeps the states or recomputes them."""
    _, ansatz, inputs, weights, coefficients = bench_problem(6, 3, "z", 16, 0)
    fast = ExactBackendModule(ansatz, dtype=dtype)
    assert fast.simulator.program is not None
    if keep_bytes is not None:
        fast.simulator.program.keep_bytes = keep_bytes
    assert fast.simulator.program.keeps_states(16, 4) == (keep_bytes is None)
    reference = ExactBackendModule(ansatz, dtype=torch.complex128, engine="complex")
    ours = _step(fast, inputs, weights, coefficients, REAL[dtype])
    expected = _step(reference, inputs, weights, coefficients, torch.float64)
    atol = 1e-5 if dtype == torch.complex64 else 1e-12
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=atol, rtol=0)


@pytest.mark.parametrize("encoding", ["angle", "amplitude"])
def test_gradients_flow_to_inputs_of_every_encoding(encoding):
    ansatz = build_ansatz(AnsatzConfig(n_qubits=4, depth=2, encoding=encoding))
    values = torch.as_tensor(np.random.default_rng(0).uniform(-3, 3, size=(3, len(ansatz.parameters))))
    grads = []
    for engine in ("auto", "complex"):
        module = ExactBackendModule(ansatz, dtype=torch.complex128, engine=engine)
        assert (module.simulator.program is None) == (engine == "complex")
        v = values.clone().requires_grad_()
        module(v).square().sum().backward()
        grads.append(v.grad)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-12, rtol=0)


def test_past_dense_folding_a_cx_ring_is_one_gather_and_a_layer_runs_in_pairs():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=12, depth=2))
    program = ExactBackendModule(ansatz).simulator.program
    kinds = [ins.kind for ins in program.instructions]
    assert kinds.count("gather") == 3  # two rings, and the rotation back at the end
    assert set(program.groups) == {2} and len(program.groups[2]) == 3 * 6


def _per_row_readout(module: ExactBackendModule, vectors: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """The reference: tree angles of each vector beside its circuit's weights, row by row."""
    from finetune.quantum.ansatz import amplitude_angles

    rows, m, dim = vectors.shape
    angles = amplitude_angles(vectors.reshape(rows * m, dim))
    values = torch.cat([angles, weights.repeat(rows, 1)], 1)
    return module(values).reshape(rows, m, -1)


@pytest.mark.parametrize("readout", ["probs", "z", "zz"])
@pytest.mark.parametrize("n_qubits,depth", [(3, 1), (4, 2), (6, 2)])
def test_shared_weight_readout_equals_the_per_row_circuits_values_and_gradients(readout, n_qubits, depth):
    ansatz = build_ansatz(AnsatzConfig(n_qubits=n_qubits, depth=depth, encoding="amplitude", readout=readout))
    module = ExactBackendModule(ansatz, dtype=torch.complex128)
    assert module.weight_only
    generator = torch.Generator().manual_seed(n_qubits + depth)
    vectors = torch.randn(5, 3, 2**n_qubits, dtype=torch.float64, generator=generator)
    vectors[2, 1] = 0  # an all-zero vector prepares |0…0⟩ on both paths
    vectors.requires_grad_()
    weights = torch.randn(3, ansatz.config.n_weights, dtype=torch.float64, generator=generator, requires_grad=True)
    shared = module.amplitude_readout(vectors, weights)
    reference = _per_row_readout(module, vectors, weights)
    assert shared is not None and shared.shape == reference.shape
    np.testing.assert_allclose(shared.detach().numpy(), reference.detach().numpy(), atol=1e-12)
    probe = torch.randn(reference.shape, dtype=torch.float64, generator=generator)
    got = torch.autograd.grad((shared * probe).sum(), [vectors, weights])
    want = torch.autograd.grad((reference * probe).sum(), [vectors, weights])
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10)


def test_shared_readout_declines_what_it_cannot_share():
    angle = ExactBackendModule(build_ansatz(AnsatzConfig(n_qubits=3, depth=1, encoding="angle")))
    assert not angle.weight_only  # inputs enter through gates: each row needs its own blocks
    assert angle.amplitude_readout(torch.zeros(2, 1, 8), torch.zeros(1, angle.ansatz.config.n_weights)) is None
    amplitude = ExactBackendModule(build_ansatz(AnsatzConfig(n_qubits=3, depth=1, encoding="amplitude")))
    vectors = torch.randn(2, 1, 8, requires_grad=True)
    weights = torch.zeros(1, amplitude.ansatz.config.n_weights)
    assert amplitude.amplitude_readout(vectors, weights) is not None
    shared_program, _ = amplitude.simulator._shared
    shared_program.keep_bytes = 0  # a backward that would keep too much: row by row
    assert amplitude.amplitude_readout(vectors, weights) is None
    with torch.no_grad():  # inference keeps nothing, so it still shares
        assert amplitude.amplitude_readout(vectors, weights) is not None
