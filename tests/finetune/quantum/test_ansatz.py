"""Tests for finetune.quantum.ansatz: configs, circuit shape, amplitude encoding, readouts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

from finetune.quantum.ansatz import (
    ENCODINGS,
    ENTANGLERS,
    READOUTS,
    AnsatzConfig,
    amplitude_angles,
    build_ansatz,
    readout_observables,
)

ALL_CONFIGS = list(itertools.product(ENCODINGS, ENTANGLERS, READOUTS))


def _bind(ansatz, values: np.ndarray) -> QuantumCircuit:
    return ansatz.circuit.assign_parameters(dict(zip(ansatz.parameters, values.tolist())))


def _encoding_only(n_qubits: int, angles: np.ndarray) -> QuantumCircuit:
    """The amplitude-encoding state alone: with zero weights and no entangler the layers are identity."""
    ansatz = build_ansatz(AnsatzConfig(n_qubits, depth=1, encoding="amplitude", entangler="none"))
    return _bind(ansatz, np.concatenate([angles, np.zeros(len(ansatz.weights))]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_qubits": 0}, "n_qubits must be between 1 and 24, got 0"),
        ({"n_qubits": 25}, "n_qubits must be between 1 and 24, got 25"),
        ({"depth": 0}, "depth must be >= 1, got 0"),
        ({"encoding": "basis"}, "encoding must be one of angle, amplitude; got 'basis'"),
        ({"entangler": "cnot"}, "entangler must be one of cx_ring, cx_line, cz_ring, cz_line, none; got 'cnot'"),
        ({"readout": "x"}, "readout must be one of z, zz, probs; got 'x'"),
        ({"encoding": "amplitude", "n_qubits": 11}, "amplitude encoding supports at most 10 qubits, got 11"),
        ({"readout": "zz", "n_qubits": 1}, "readout 'zz' needs at least 2 qubits"),
    ],
)
def test_config_rejects_bad_settings_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError) as excinfo:
        AnsatzConfig(**kwargs)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("config", "n_inputs", "n_weights", "n_outputs"),
    [
        (AnsatzConfig(n_qubits=4, depth=2, encoding="angle", readout="z"), 4, 2 * 2 * 4 + 4, 4),
        (AnsatzConfig(n_qubits=4, depth=1, encoding="angle", readout="zz"), 4, 2 * 4 + 4, 6),
        (AnsatzConfig(n_qubits=3, depth=3, encoding="amplitude", readout="probs"), 7, 3 * 2 * 3 + 3, 8),
        (AnsatzConfig(n_qubits=1, depth=1, encoding="angle", readout="probs"), 1, 3, 2),
    ],
)
def test_config_sizes_match_the_built_circuit(config, n_inputs, n_weights, n_outputs):
    assert (config.n_inputs, config.n_weights, config.n_outputs) == (n_inputs, n_weights, n_outputs)
    ansatz = build_ansatz(config)
    assert len(ansatz.inputs) == n_inputs
    assert len(ansatz.weights) == n_weights
    assert ansatz.n_outputs == n_outputs == len(ansatz.observables)
    assert ansatz.readout_matrix.shape == (2**config.n_qubits, n_outputs)
    assert ansatz.circuit.num_qubits == config.n_qubits
    assert ansatz.circuit.num_parameters == n_inputs + n_weights


def test_parameters_are_inputs_then_weights_in_two_separate_vectors():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=3, depth=2))
    assert ansatz.inputs.name != ansatz.weights.name
    assert ansatz.parameters == [*ansatz.inputs, *ansatz.weights]
    assert set(ansatz.circuit.parameters) == set(ansatz.parameters)
    assert not set(ansatz.inputs) & set(ansatz.weights)


@pytest.mark.parametrize("reupload", [True, False])
def test_angle_encoding_reuploads_inputs_before_every_layer_only_when_asked(reupload):
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=3, reupload=reupload))
    uses = sum(
        1 for inst in ansatz.circuit.data for p in inst.operation.params if ansatz.inputs[0] in getattr(p, "parameters", ())
    )
    assert uses == (3 if reupload else 1)


@pytest.mark.parametrize(
    "vector",
    [
        [0.5, -1.0, 2.0, 0.25],
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, -3.0],
        [1e-4, 0.0, 0.0, 0.0],  # small norm: v/|v| still exact, no stray amplitude on the zero block
        [0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0],
        [-1.0, -2.0, -3.0, -4.0, 5.0, 6.0, 0.0, -8.0],
        [-2.0, 1.0],
    ],
)
def test_amplitude_encoding_prepares_the_normalised_vector(vector):
    v = np.array(vector)
    n = int(np.log2(len(v)))
    angles = amplitude_angles(v[None, :])
    assert angles.shape == (1, 2**n - 1)
    state = Statevector(_encoding_only(n, angles[0])).data
    np.testing.assert_allclose(state, v / np.linalg.norm(v), atol=1e-12)


def test_amplitude_encoding_matches_on_random_vectors_and_torch_agrees_with_numpy():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 16)) * rng.integers(0, 2, size=(5, 16))  # many exact zeros
    vectors[:, 0] += 0.1  # no all-zero rows
    angles = amplitude_angles(vectors)
    torch_angles = amplitude_angles(torch.as_tensor(vectors))
    assert isinstance(torch_angles, torch.Tensor)
    np.testing.assert_allclose(torch_angles.numpy(), angles, atol=1e-12)
    for v, row in zip(vectors, angles):
        np.testing.assert_allclose(Statevector(_encoding_only(4, row)).data, v / np.linalg.norm(v), atol=1e-12)


def test_amplitude_angles_give_finite_gradients_through_zero_blocks():
    vectors = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0]])
    vectors.requires_grad_(True)
    amplitude_angles(vectors).sum().backward()
    assert torch.isfinite(vectors.grad).all()


def test_amplitude_angles_reject_a_width_that_is_not_a_power_of_two():
    with pytest.raises(ValueError, match="amplitude encoding needs a power-of-two width, got 6"):
        amplitude_angles(np.ones((2, 6)))


@pytest.mark.parametrize(("encoding", "entangler", "readout"), ALL_CONFIGS)
def test_readout_matrix_turns_probabilities_into_the_observables_expectation_values(encoding, entangler, readout):
    ansatz = build_ansatz(AnsatzConfig(n_qubits=3, depth=2, encoding=encoding, entangler=entangler, readout=readout))
    values = np.random.default_rng(1).uniform(-np.pi, np.pi, len(ansatz.parameters))
    state = Statevector(_bind(ansatz, values))
    expectation = np.array([state.expectation_value(obs).real for obs in ansatz.observables])
    readout_values = ansatz.postprocess(expectation[None, :])[0]
    np.testing.assert_allclose(state.probabilities() @ ansatz.readout_matrix, readout_values, atol=1e-12)
    if readout == "probs":
        np.testing.assert_allclose(readout_values, state.probabilities(), atol=1e-12)
    else:
        np.testing.assert_array_equal(readout_values, expectation)


@pytest.mark.parametrize(("readout", "expected"), [("z", ["IIZ", "IZI", "ZII"]), ("zz", ["IZZ", "ZIZ", "ZZI"])])
def test_readout_observables_are_z_strings_in_qiskit_order(readout, expected):
    assert [obs.paulis[0].to_label() for obs in readout_observables(3, readout)] == expected


def test_probs_postprocess_gives_probabilities_that_sum_to_one():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="probs"))
    states = [Statevector(_bind(ansatz, v)) for v in np.random.default_rng(2).normal(size=(3, len(ansatz.parameters)))]
    expectation = np.array([[s.expectation_value(o).real for o in ansatz.observables] for s in states])
    probs = ansatz.postprocess(expectation)
    assert probs.shape == (3, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(probs, np.array([s.probabilities() for s in states]), atol=1e-12)


def test_unknown_readout_is_rejected_by_readout_observables():
    with pytest.raises(ValueError, match="readout must be one of z, zz, probs; got 'y'"):
        readout_observables(2, "y")


def test_config_round_trips_through_a_dict():
    config = AnsatzConfig(n_qubits=3, depth=4, encoding="amplitude", entangler="cz_line", readout="zz", reupload=False)
    data = config.to_dict()
    assert data == {
        "n_qubits": 3,
        "depth": 4,
        "encoding": "amplitude",
        "entangler": "cz_line",
        "readout": "zz",
        "reupload": False,
    }
    assert AnsatzConfig.from_dict(data) == config


def test_from_dict_names_unknown_settings():
    with pytest.raises(ValueError, match="unknown ansatz settings: layers, qubits"):
        AnsatzConfig.from_dict({"qubits": 3, "layers": 2})
