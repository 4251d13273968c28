"""Tests for finetune.quantum.simulate: the torch statevector simulator against Qiskit itself."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Statevector

from finetune.quantum.ansatz import ENCODINGS, ENTANGLERS, READOUTS, AnsatzConfig, build_ansatz
from finetune.quantum.simulate import (
    CircuitSimulator,
    ExactBackendModule,
    SimulationMemoryError,
    UnsupportedCircuitError,
)

# Tolerances per precision: complex64 carries ~7 digits, complex128 ~16.
TOLERANCE = {torch.complex64: 1e-5, torch.complex128: 1e-10}
REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}

# Every gate the simulator has a closed form for, with its number of angles and qubits ...
PARAMETRIC = {
    "rx": (1, 1), "ry": (1, 1), "rz": (1, 1), "p": (1, 1), "u": (3, 1),
    "crx": (1, 2), "cry": (1, 2), "crz": (1, 2), "cp": (1, 2),
    "rxx": (1, 2), "ryy": (1, 2), "rzz": (1, 2),
}  # fmt: skip
# ... and fixed gates of one, two and three qubits, whose matrices come from Qiskit.
FIXED = {
    "h": 1, "x": 1, "y": 1, "z": 1, "s": 1, "sdg": 1, "t": 1, "tdg": 1, "sx": 1,
    "cx": 2, "cy": 2, "cz": 2, "swap": 2, "ccx": 3,
}  # fmt: skip


def _random_angle(rng: np.random.Generator, params: ParameterVector):
    """An affine angle: a constant, one parameter, or c1*a + c2*b + c0 (e.g. 0.5*a - b + 0.3)."""
    kind = rng.integers(3)
    if kind == 0:
        return float(rng.uniform(-np.pi, np.pi))
    a, b = (params[i] for i in rng.choice(len(params), size=2))
    if kind == 1:
        return a
    c1, c2, c0 = rng.choice([-1.5, -1.0, -0.5, 0.5, 1.0, 2.0], size=2).tolist() + [float(rng.normal())]
    return c1 * a + c2 * b + c0


def random_parametric_circuit(n_qubits: int, n_gates: int, n_params: int, seed: int) -> QuantumCircuit:
    """A circuit drawn from the whole gate pool, on random qubits, with affine parameter angles."""
    rng = np.random.default_rng(seed)
    params = ParameterVector("t", n_params)
    qc = QuantumCircuit(n_qubits)
    pool = [g for g, (_, k) in PARAMETRIC.items() if k <= n_qubits] + [g for g, k in FIXED.items() if k <= n_qubits]
    for _ in range(n_gates):
        name = pool[rng.integers(len(pool))]
        if name in PARAMETRIC:
            n_angles, n_wires = PARAMETRIC[name]
            angles = [_random_angle(rng, params) for _ in range(n_angles)]
        else:
            n_wires, angles = FIXED[name], []
        qubits = rng.choice(n_qubits, size=n_wires, replace=False).tolist()
        getattr(qc, name)(*angles, *qubits)
    # Every parameter appears at least once, so the column order covers all of them.
    for i, p in enumerate(params):
        qc.ry(p, i % n_qubits)
    return qc


def _reference_states(circuit: QuantumCircuit, parameters, values: np.ndarray) -> np.ndarray:
    return np.array([Statevector(circuit.assign_parameters(dict(zip(parameters, row)))).data for row in values])


def _check_against_qiskit(circuit, seed, dtype, batch=3):
    rng = np.random.default_rng(seed)
    # A shuffled column order: the simulator must follow `parameters`, not the circuit's order.
    parameters = list(circuit.parameters)
    rng.shuffle(parameters)
    values = rng.uniform(-2 * np.pi, 2 * np.pi, size=(batch, len(parameters)))
    sim = CircuitSimulator(circuit, parameters, dtype=dtype)
    state = sim.statevector(torch.as_tensor(values, dtype=REAL[dtype]))
    assert state.dtype == dtype and state.shape == (batch, 2**circuit.num_qubits)
    expected = _reference_states(circuit, parameters, values)
    np.testing.assert_allclose(state.numpy(), expected, atol=TOLERANCE[dtype], rtol=0)
    probs = sim.probabilities(torch.as_tensor(values, dtype=REAL[dtype]))
    np.testing.assert_allclose(probs.numpy(), np.abs(expected) ** 2, atol=TOLERANCE[dtype], rtol=0)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize(("n_qubits", "seed"), [(1, 0), (2, 1), (3, 2), (4, 3), (5, 4)])
def test_random_parametric_circuits_match_qiskit_statevector(n_qubits, seed, dtype):
    _check_against_qiskit(random_parametric_circuit(n_qubits, 40, 5, seed), seed, dtype)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("seed", range(20))
def test_many_deep_random_parametric_circuits_match_qiskit_statevector(seed, dtype):
    n_qubits = 1 + seed % 7
    _check_against_qiskit(random_parametric_circuit(n_qubits, 150, 8, 100 + seed), seed, dtype, batch=5)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_wide_register_past_dense_folding_matches_qiskit(dtype):
    # 11 qubits is past the size where fixed gates are folded into one matrix, so every
    # fixed two- and three-qubit gate is applied on its own.
    _check_against_qiskit(random_parametric_circuit(11, 60, 6, 7), 7, dtype, batch=2)


@pytest.mark.parametrize("seed", range(4))
def test_qiskit_random_circuits_with_fixed_angles_match(seed):
    circuit = random_circuit(4, 6, max_operands=3, seed=seed)
    sim = CircuitSimulator(circuit, dtype=torch.complex128)
    state = sim.statevector(torch.zeros((2, 0), dtype=torch.float64))
    np.testing.assert_allclose(state.numpy(), np.tile(Statevector(circuit).data, (2, 1)), atol=1e-10, rtol=0)


def test_barriers_are_skipped():
    a = Parameter("a")
    qc = QuantumCircuit(2)
    qc.h(0)
    qc.barrier()
    qc.crx(a, 0, 1)
    _check_against_qiskit(qc, 0, torch.complex128)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize(("encoding", "entangler", "readout"), list(itertools.product(ENCODINGS, ENTANGLERS, READOUTS)))
def test_exact_backend_matches_qiskit_expectation_values_for_every_ansatz(encoding, entangler, readout, dtype):
    ansatz = build_ansatz(AnsatzConfig(n_qubits=3, depth=2, encoding=encoding, entangler=entangler, readout=readout))
    values = np.random.default_rng(0).uniform(-np.pi, np.pi, size=(4, len(ansatz.parameters)))
    module = ExactBackendModule(ansatz, dtype=dtype)
    out = module(torch.as_tensor(values, dtype=REAL[dtype]))
    assert out.shape == (4, ansatz.n_outputs)
    expected = []
    for row in values:
        state = Statevector(ansatz.circuit.assign_parameters(dict(zip(ansatz.parameters, row))))
        expected.append([state.expectation_value(obs).real for obs in ansatz.observables])
    expected = ansatz.postprocess(np.array(expected))
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=TOLERANCE[dtype], rtol=0)


@pytest.mark.parametrize("readout", ["z", "probs"])
def test_exact_backend_handles_an_ansatz_wider_than_dense_folding(readout):
    ansatz = build_ansatz(AnsatzConfig(n_qubits=11, depth=1, readout=readout))
    values = np.random.default_rng(3).uniform(-np.pi, np.pi, size=(1, len(ansatz.parameters)))
    out = ExactBackendModule(ansatz, dtype=torch.complex128)(torch.as_tensor(values))
    state = Statevector(ansatz.circuit.assign_parameters(dict(zip(ansatz.parameters, values[0]))))
    np.testing.assert_allclose(out[0].detach().numpy(), state.probabilities() @ ansatz.readout_matrix, atol=1e-10)


def test_exact_backend_returns_the_input_float_dtype():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="z"))
    module = ExactBackendModule(ansatz)
    assert module(torch.zeros((2, len(ansatz.parameters)), dtype=torch.float64)).dtype == torch.float64
    assert module(torch.zeros((2, len(ansatz.parameters)), dtype=torch.float32)).dtype == torch.float32


# --- gradients against qiskit-machine-learning's parameter-shift rule -------------------------


def _param_shift_jacobians(circuit, observables, input_params, weight_params, inputs, weights):
    """Outputs [B, K] and Jacobians d/d inputs [B, K, I], d/d weights [B, K, W] of ⟨observables⟩."""
    from qiskit.primitives import StatevectorEstimator
    from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    estimator = StatevectorEstimator()
    qnn = EstimatorQNN(
        circuit=circuit,
        estimator=estimator,
        observables=list(observables),
        input_params=list(input_params),
        weight_params=list(weight_params),
        gradient=ParamShiftEstimatorGradient(estimator),
        input_gradients=True,
        default_precision=0.0,  # the default (1/64) makes StatevectorEstimator add shot noise
    )
    input_jac, weight_jac = qnn.backward(inputs, weights)
    return qnn.forward(inputs, weights), input_jac, weight_jac


def _autograd_jacobians(model, inputs: np.ndarray, weights: np.ndarray, real: torch.dtype):
    """The same three arrays from our simulator, plus the batch-summed weight gradient."""
    x = torch.as_tensor(inputs, dtype=real).requires_grad_(True)
    w = torch.as_tensor(weights, dtype=real).requires_grad_(True)
    out = model(torch.cat([x, w.expand(x.shape[0], -1)], dim=1))
    input_rows, weight_rows = [], []
    for k in range(out.shape[1]):
        gx, gw = torch.autograd.grad(out[:, k].sum(), (x, w), retain_graph=True)
        input_rows.append(gx)
        weight_rows.append(gw)
    # Weights are shared by the batch, so autograd sums their gradient over examples (what
    # training sees); the per-example weight Jacobian comes from a batch of one.
    per_example = [
        torch.autograd.functional.jacobian(lambda wv, xb=xb: model(torch.cat([xb, wv[None]], dim=1))[0], w.detach())
        for xb in x.detach().split(1)
    ]
    return (
        out.detach().numpy(),
        torch.stack(input_rows, dim=1).numpy(),  # [B, K, I]
        torch.stack(per_example).numpy(),  # [B, K, W]
        torch.stack(weight_rows).numpy(),  # [K, W]
    )


def _assert_jacobians_close(ours, reference, atol: float) -> None:
    out, input_jac, weight_jac, weight_sum = ours
    ref_out, ref_input_jac, ref_weight_jac = reference
    np.testing.assert_allclose(out, ref_out, atol=atol, rtol=0)
    np.testing.assert_allclose(input_jac, ref_input_jac, atol=atol, rtol=0)
    np.testing.assert_allclose(weight_jac, ref_weight_jac, atol=atol, rtol=0)
    np.testing.assert_allclose(weight_sum, ref_weight_jac.sum(axis=0), atol=atol * len(out), rtol=0)


def _check_ansatz_gradients(config: AnsatzConfig, dtype, atol: float, batch: int = 2) -> None:
    ansatz = build_ansatz(config)
    rng = np.random.default_rng(config.n_qubits + config.depth)
    inputs = rng.uniform(-np.pi, np.pi, size=(batch, len(ansatz.inputs)))
    weights = rng.uniform(-np.pi, np.pi, size=len(ansatz.weights))
    ref_out, ref_input_jac, ref_weight_jac = _param_shift_jacobians(
        ansatz.circuit, ansatz.observables, ansatz.inputs, ansatz.weights, inputs, weights
    )
    # EstimatorQNN returns ⟨observable⟩; the probs readout is a fixed linear map of those.
    post = ansatz.postprocess(np.eye(len(ansatz.observables)))  # [K_obs, K]
    reference = (
        ansatz.postprocess(ref_out),
        np.einsum("bki,kj->bji", ref_input_jac, post),
        np.einsum("bkw,kj->bjw", ref_weight_jac, post),
    )
    ours = _autograd_jacobians(ExactBackendModule(ansatz, dtype=dtype), inputs, weights, REAL[dtype])
    _assert_jacobians_close(ours, reference, atol)


GRADIENT_CONFIGS = [
    AnsatzConfig(n_qubits=2, depth=1, encoding="angle", entangler="cx_ring", readout="z"),
    AnsatzConfig(n_qubits=2, depth=1, encoding="amplitude", entangler="cz_line", readout="probs"),
]
SLOW_GRADIENT_CONFIGS = [
    AnsatzConfig(n_qubits=3, depth=2, encoding=enc, entangler=ent, readout=ro)
    for enc, ent, ro in [
        ("angle", "cx_ring", "zz"),
        ("angle", "cz_ring", "probs"),
        ("angle", "none", "z"),
        ("amplitude", "cx_line", "z"),
        ("amplitude", "cx_ring", "zz"),
    ]
]
GRADIENT_TOLERANCES = [(torch.complex128, 1e-5), (torch.complex64, 1e-4)]


@pytest.mark.parametrize(("dtype", "atol"), GRADIENT_TOLERANCES)
@pytest.mark.parametrize("config", GRADIENT_CONFIGS, ids=lambda c: f"{c.encoding}-{c.entangler}-{c.readout}")
def test_gradients_equal_qiskit_parameter_shift(config, dtype, atol):
    _check_ansatz_gradients(config, dtype, atol)


@pytest.mark.slow
@pytest.mark.parametrize(("dtype", "atol"), GRADIENT_TOLERANCES)
@pytest.mark.parametrize("config", SLOW_GRADIENT_CONFIGS, ids=lambda c: f"{c.encoding}-{c.entangler}-{c.readout}")
def test_gradients_equal_qiskit_parameter_shift_on_larger_ansatze(config, dtype, atol):
    _check_ansatz_gradients(config, dtype, atol, batch=3)


@pytest.mark.parametrize(("dtype", "atol"), GRADIENT_TOLERANCES)
@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_random_circuit_gradients_equal_qiskit_parameter_shift(seed, dtype, atol):
    # Affine angles shared between gates (0.5*a - b + 0.3) exercise the chain rule on both sides.
    n_qubits = 3
    circuit = random_parametric_circuit(n_qubits, 30, 5, seed)
    params = sorted(circuit.parameters, key=lambda p: p.name)
    input_params, weight_params = params[:2], params[2:]
    rng = np.random.default_rng(seed)
    inputs = rng.uniform(-np.pi, np.pi, size=(2, len(input_params)))
    weights = rng.uniform(-np.pi, np.pi, size=len(weight_params))
    z = build_ansatz(AnsatzConfig(n_qubits=n_qubits, depth=1, readout="z"))
    reference = _param_shift_jacobians(circuit, z.observables, input_params, weight_params, inputs, weights)
    sim = CircuitSimulator(circuit, [*input_params, *weight_params], dtype=dtype)
    readout = torch.as_tensor(z.readout_matrix, dtype=REAL[dtype])
    ours = _autograd_jacobians(lambda v: sim.probabilities(v) @ readout, inputs, weights, REAL[dtype])
    _assert_jacobians_close(ours, reference, atol)


# --- clear errors ---------------------------------------------------------------------------


def _unsupported_parametric_custom_gate() -> QuantumCircuit:
    a = Parameter("a")
    inner = QuantumCircuit(2, name="my_block")
    inner.crx(a, 0, 1)
    qc = QuantumCircuit(2)
    qc.append(inner.to_gate(), [0, 1])
    return qc


def _circuit_with(build) -> QuantumCircuit:
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(2, 2) if build == "measure" else QuantumCircuit(2)
    {
        "measure": lambda: (qc.rx(a, 0), qc.measure(0, 0)),
        "reset": lambda: (qc.rx(a, 0), qc.reset(1)),
        "rzx": lambda: qc.rzx(a, 0, 1),
        "product": lambda: qc.ry(a * b, 0),
        "square": lambda: qc.rz(a * a + 0.1, 1),
        "sin": lambda: qc.rx(a.sin(), 0),
        "division": lambda: qc.rx(1 / a, 0),
    }[build]()
    return qc


@pytest.mark.parametrize(
    ("build", "message"),
    [
        ("measure", "'measure' cannot be simulated exactly; remove measurements and resets"),
        ("reset", "'reset' cannot be simulated exactly"),
        ("rzx", r"gate 'rzx' with symbolic parameters is not supported by the torch simulator \(supported: rx, ry"),
        ("product", r"gate 'ry' angle a\*b is not linear in [ab]; the torch simulator needs affine angles"),
        ("square", "is not linear in a; the torch simulator needs affine angles"),
        ("sin", r"gate 'rx' angle sin\(a\) is not linear in a"),
        ("division", "is not linear in a"),
    ],
)
def test_unsupported_circuits_are_refused_with_a_clear_message(build, message):
    with pytest.raises(UnsupportedCircuitError) as excinfo:
        CircuitSimulator(_circuit_with(build))
    assert re.search(message, str(excinfo.value))


def test_parametric_custom_gate_is_refused_by_name():
    with pytest.raises(UnsupportedCircuitError, match="gate 'my_block' with symbolic parameters is not supported"):
        CircuitSimulator(_unsupported_parametric_custom_gate())


def test_fixed_custom_gate_on_four_qubits_is_refused():
    inner = QuantumCircuit(4, name="wide_block")
    inner.h(range(4))
    qc = QuantumCircuit(4)
    qc.append(inner.to_gate(), range(4))
    with pytest.raises(UnsupportedCircuitError, match="gate 'wide_block' on 4 qubits is not supported"):
        CircuitSimulator(qc)


def test_too_many_qubits_is_refused_before_allocating_anything():
    with pytest.raises(UnsupportedCircuitError, match="27 qubits is too many for statevector simulation .at most 26."):
        CircuitSimulator(QuantumCircuit(27))


def test_a_batch_over_the_memory_limit_is_refused_with_sizes():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=4, depth=1, readout="z"))
    sim = CircuitSimulator.for_ansatz(ansatz, max_memory_bytes=1024)
    sim.statevector(torch.zeros((0, len(ansatz.parameters))))  # an empty batch fits
    with pytest.raises(SimulationMemoryError) as excinfo:
        sim.statevector(torch.zeros((8, len(ansatz.parameters))))
    message = str(excinfo.value)
    assert message.startswith("a batch of 8 on 4 qubits needs about")
    assert "limit 0.0 GiB" in message and "use a smaller batch or fewer qubits" in message
    assert isinstance(excinfo.value, MemoryError)


def test_parameters_missing_from_the_column_order_are_named():
    a, b = Parameter("a"), Parameter("b")
    qc = QuantumCircuit(1)
    qc.rx(a + b, 0)
    with pytest.raises(UnsupportedCircuitError, match="parameters missing from the column order: b"):
        CircuitSimulator(qc, [a])


def test_values_of_the_wrong_shape_are_refused():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1))
    sim = CircuitSimulator.for_ansatz(ansatz)
    with pytest.raises(ValueError, match=r"values must be \[batch, 8\], got \[3, 7\]"):
        sim.statevector(torch.zeros((3, 7)))


def test_a_real_dtype_is_refused():
    with pytest.raises(ValueError, match="dtype must be torch.complex64 or torch.complex128, got torch.float32"):
        CircuitSimulator(QuantumCircuit(1), dtype=torch.float32)


def test_random_circuits_above_cover_the_whole_gate_pool():
    used = {
        inst.operation.name
        for n_qubits, seed in [(3, 2), (4, 3), (5, 4)]
        for inst in random_parametric_circuit(n_qubits, 40, 5, seed).data
    }
    assert used >= set(PARAMETRIC) | set(FIXED)
