"""eval.mitigation: capturing a head's circuit inputs, ⟨Z⟩ from a readout, and one real measurement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.mitigation import MitigationConfig, capture_circuit_inputs, format_report, measure_head, z_expectations
from finetune.models.heads import Head, HeadConfig
from finetune.quantum.ansatz import AnsatzConfig, build_ansatz
from finetune.quantum.backends import get_backend


def _head(readout: str = "z", circuits: int = 2) -> Head:
    torch.manual_seed(0)
    ansatz = AnsatzConfig(n_qubits=2, depth=1, encoding="angle", readout=readout)
    return Head(HeadConfig(kind="quantum", in_features=3, n_classes=2, ansatz=ansatz, n_circuits=circuits, dropout=0.0))


def test_the_captured_inputs_reproduce_the_head_readout():
    head = _head()
    features = torch.randn(5, 3)
    ((ansatz, values),) = capture_circuit_inputs(head, features)
    assert values.shape == (5 * 2, len(ansatz.parameters))  # a row per example and circuit
    readout = get_backend("exact").expectations(ansatz, values)
    branch = next(m for m in head.modules() if hasattr(m, "ansatz") and hasattr(m, "circuit"))
    with torch.no_grad():
        expected = branch(features).reshape(10, -1).double().numpy()
    np.testing.assert_allclose(readout, expected, atol=1e-5)


def test_a_head_without_circuits_is_refused():
    head = Head(HeadConfig(kind="linear", in_features=3, n_classes=2))
    with pytest.raises(ValueError, match="no quantum circuit"):
        capture_circuit_inputs(head, torch.randn(2, 3))


def test_z_from_probabilities_matches_the_z_readout():
    values = np.random.default_rng(0).uniform(-1, 1, (4, len(build_ansatz(AnsatzConfig(n_qubits=3, depth=1)).parameters)))
    exact = get_backend("exact")
    z = build_ansatz(AnsatzConfig(n_qubits=3, depth=1, readout="z"))
    probs = build_ansatz(AnsatzConfig(n_qubits=3, depth=1, readout="probs"))
    np.testing.assert_allclose(z_expectations(probs, exact.expectations(probs, values)),
                               exact.expectations(z, values), atol=1e-9)


def test_bad_settings_are_refused_before_anything_runs():
    with pytest.raises(ValueError, match="odd scale factors"):
        MitigationConfig(zne=(1, 2))
    with pytest.raises(ValueError, match="queries must be >= 1"):
        MitigationConfig(queries=0)


@pytest.mark.slow
def test_measure_head_reports_error_and_cost_of_every_variant():
    config = MitigationConfig(noise="fake_manila", shots=4096, zne=(1, 3))
    circuits = capture_circuit_inputs(_head(), torch.randn(4, 3))
    result = measure_head("tiny", circuits, config.specs())
    variants = result["variants"]
    assert list(variants) == ["none", "readout (M3)", "ZNE", "readout + ZNE"]
    assert variants["none"]["circuits_per_row"] == 1 and variants["ZNE"]["circuits_per_row"] == 2
    assert variants["ZNE"]["shots_per_row"] == 2 * 4096
    assert variants["readout (M3)"]["calibration_circuits"] == 4 and variants["none"]["calibration_circuits"] == 0
    assert all(0 < v["mean_abs_z_error"] < 0.5 for v in variants.values())
    assert "readout (M3)" in format_report({"heads": {"tiny": result}})
