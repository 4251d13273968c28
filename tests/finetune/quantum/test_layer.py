"""CircuitLayer trains on sampling backends: exact parameter shift, SPSA, one job per step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector

from finetune.quantum.ansatz import Ansatz, AnsatzConfig, build_ansatz, readout_observables
from finetune.quantum.backends import get_backend
from finetune.quantum.layer import CircuitLayer, shift_plan
from finetune.quantum.simulate import ExactBackendModule, UnsupportedCircuitError


def _values(ansatz, batch: int, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.tensor(rng.uniform(-np.pi, np.pi, (batch, len(ansatz.parameters))))


def _exact_jacobian(ansatz, values: torch.Tensor) -> np.ndarray:
    module = ExactBackendModule(ansatz, dtype=torch.complex128)
    full = torch.autograd.functional.jacobian(module, values)  # [B, K, B, P]
    return torch.einsum("bkbp->bkp", full).numpy()


@pytest.mark.parametrize(
    "config",
    [
        AnsatzConfig(n_qubits=3, depth=2, readout="z", reupload=True),  # one input feeds 2 gates
        AnsatzConfig(n_qubits=3, depth=2, readout="zz", entangler="cz_ring"),
        AnsatzConfig(n_qubits=3, depth=1, readout="probs", encoding="amplitude"),  # (a±b)/2 angles
    ],
)
def test_parameter_shift_matches_autograd(config):
    ansatz = build_ansatz(config)
    values = _values(ansatz, 4)
    layer = CircuitLayer(ansatz, "aer", gradient="parameter_shift")
    out, jacobian = layer.evaluate(values.numpy(), need_grad=True)
    np.testing.assert_allclose(jacobian, _exact_jacobian(ansatz, values), atol=1e-5)
    np.testing.assert_allclose(out, ExactBackendModule(ansatz, torch.complex128)(values).detach(), atol=1e-6)


def test_backward_gives_the_exact_gradient():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=2, readout="z"))
    values = _values(ansatz, 3, seed=1)
    weights = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    leaf = values.clone().requires_grad_(True)
    (CircuitLayer(ansatz, "aer")(leaf) * weights).sum().backward()
    reference = values.clone().requires_grad_(True)
    (ExactBackendModule(ansatz, torch.complex128)(reference) * weights).sum().backward()
    torch.testing.assert_close(leaf.grad, reference.grad, atol=1e-5, rtol=0)


def test_shift_plan_has_one_parameter_per_gate_occurrence():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=3, depth=2, readout="z", reupload=True))
    plan = shift_plan(ansatz)
    n_gates = sum(1 for inst in ansatz.circuit.data if inst.operation.params)
    assert plan.coeffs.shape == (len(ansatz.parameters), n_gates)
    assert len(plan.shadow.circuit.parameters) == n_gates
    assert plan.shadow.circuit.count_ops() == ansatz.circuit.count_ops()
    # Each input feeds one RY per layer: its column sum counts the re-uploads.
    np.testing.assert_allclose(plan.coeffs[:3].sum(axis=1), [2, 2, 2])


def test_gates_without_a_two_term_rule_are_refused():
    x, w = ParameterVector("x", 1), ParameterVector("w", 1)
    circuit = QuantumCircuit(2)
    circuit.ry(x[0], 0)
    circuit.crx(w[0], 0, 1)
    config = AnsatzConfig(n_qubits=2, depth=1, readout="z")
    ansatz = Ansatz(config, circuit, x, w, tuple(readout_observables(2, "z")))
    with pytest.raises(UnsupportedCircuitError, match="'crx'.*spsa"):
        CircuitLayer(ansatz, "aer", gradient="parameter_shift")
    CircuitLayer(ansatz, "aer", gradient="spsa")  # SPSA needs no shift rule


def test_spsa_correlates_with_the_true_gradient():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=3, depth=2, readout="z"))
    values = _values(ansatz, 1, seed=2).repeat(64, 1)  # 64 independent directions, one point
    layer = CircuitLayer(ansatz, "aer", gradient="spsa", spsa_epsilon=0.05, seed=3)
    _, jacobian = layer.evaluate(values.numpy(), need_grad=True)
    estimate = jacobian.mean(axis=0).ravel()
    truth = _exact_jacobian(ansatz, values[:1])[0].ravel()
    assert np.corrcoef(estimate, truth)[0, 1] > 0.7


@pytest.mark.parametrize(
    ("spec", "gradient"),
    [
        ("aer", "parameter_shift"),
        ("aer:shots=64", "parameter_shift"),
        ("aer:shots=64", "spsa"),
        ("aer:noise=fake_manila", "spsa"),
    ],
)
def test_one_job_per_training_step(spec, gradient):
    jobs: list[str] = []
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="probs"))
    layer = CircuitLayer(ansatz, get_backend(spec, on_job=jobs.append), gradient=gradient)
    values = _values(ansatz, 8).float().requires_grad_(True)
    out = layer(values)
    out.sum().backward()
    assert len(jobs) == 1 and values.grad.shape == values.shape
    assert out.dtype == torch.float32
    with torch.no_grad():
        layer(values)
    assert len(jobs) == 2


def test_exact_backend_uses_autograd():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="z"))
    layer = CircuitLayer(ansatz, "exact")
    assert isinstance(layer.exact, ExactBackendModule)
    values = _values(ansatz, 2).float().requires_grad_(True)
    layer(values).sum().backward()
    assert values.grad is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"gradient": "adjoint"}, "gradient must be"), ({"spsa_epsilon": 0.0}, "spsa_epsilon")],
)
def test_bad_layer_options(kwargs, message):
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="z"))
    with pytest.raises(ValueError, match=message):
        CircuitLayer(ansatz, "aer", **kwargs)


class _ToyModel(torch.nn.Module):
    """Features → circuit inputs; trainable circuit weights; linear readout to 2 logits."""

    def __init__(self, ansatz: Ansatz, backend: str) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.weights = torch.nn.Parameter(0.1 * torch.randn(len(ansatz.weights), generator=generator))
        self.circuit = CircuitLayer(ansatz, backend)
        self.head = torch.nn.Linear(ansatz.n_outputs, 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        values = torch.cat([features, self.weights.expand(len(features), -1)], dim=1)
        return self.head(self.circuit(values))


@pytest.mark.slow
def test_circuit_layer_learns_a_toy_task_on_aer():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 40)
    # Two clusters of input angles: class 0 near 0, class 1 near π on both qubits.
    features = torch.tensor(labels[:, None] * np.pi + rng.normal(0, 0.4, (40, 2)), dtype=torch.float32)
    target = torch.tensor(labels)
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="z"))
    model = _ToyModel(ansatz, "aer")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(15):
        for batch in torch.arange(40).split(10):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(features[batch]), target[batch]).backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (model(features).argmax(1) == target).float().mean().item()
    assert accuracy >= 0.9
