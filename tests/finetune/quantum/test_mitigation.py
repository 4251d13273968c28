"""Error mitigation on Aer: the spec keys, folding, extrapolation, and M3 against a real noisy run."""

from __future__ import annotations

import numpy as np
import pytest

from finetune.models.calibration import backend_key
from finetune.quantum.ansatz import AnsatzConfig, build_ansatz
from finetune.quantum.backends import get_backend
from finetune.quantum.device import BackendConfigError, BackendSpec, parse_backend
from finetune.quantum.mitigation import extrapolate, fold_global

NOISY = "aer:noise=fake_manila"  # a 5-qubit device: its noise model loads in a fraction of a second


@pytest.mark.parametrize(("spec", "expected"), [
    ("aer:noise=fake_manila,shots=1024,readout=m3",
     BackendSpec("aer", shots=1024, noise="fake_manila", readout="m3")),
    ("aer:noise=fake_manila,zne=1,3,5", BackendSpec("aer", noise="fake_manila", zne=(1, 3, 5))),
    ("aer:noise=fake_manila,zne=1,3,shots=64,zne_fit=richardson",
     BackendSpec("aer", shots=64, noise="fake_manila", zne=(1, 3), zne_fit="richardson")),
    ("aer:noise=fake_manila,shots=8,readout=off", BackendSpec("aer", shots=8, noise="fake_manila")),
])
def test_mitigation_keys_parse(spec, expected):
    parsed = parse_backend(spec)
    assert parsed == expected
    assert parse_backend(str(parsed)) == parsed  # the printed spec reads back the same
    assert BackendSpec.from_dict(parsed.to_dict() | {"zne": list(parsed.zne or [])} if parsed.zne else parsed.to_dict()) == parsed


def test_mitigation_keys_are_part_of_the_calibration_key():
    assert backend_key("aer:zne=1,3,5,shots=1024,noise=fake_manila,readout=m3") == \
        "aer:noise=fake_manila,readout=m3,shots=1024,zne=1,3,5"
    assert backend_key("aer:noise=fake_manila,shots=1024,readout=off") == "aer:noise=fake_manila,shots=1024"


@pytest.mark.parametrize(("spec", "message"), [
    ("aer:shots=1024,readout=m3", "give noise= and shots="),
    ("aer:noise=fake_manila,readout=m3", "give noise= and shots="),
    ("aer:noise=fake_manila,shots=9,readout=best", "readout must be one of m3, off"),
    ("aer:noise=fake_manila,zne=1,2", "odd scale factors"),
    ("aer:noise=fake_manila,zne=3,1", "odd scale factors"),
    ("aer:noise=fake_manila,zne=1", "at least two"),
    ("aer:noise=fake_manila,zne=1,3,11", "from 1 to 9"),
    ("aer:noise=fake_manila,zne=one", "zne takes odd integer scale factors"),
    ("aer:shots=64,zne=1,3", "give noise="),
    ("aer:noise=fake_manila,zne_fit=linear", "zne_fit= needs zne="),
    ("aer:noise=fake_manila,zne=1,3,zne_fit=cubic", "zne_fit must be one of linear, richardson"),
    ("ibm:fake_manila,readout=m3", "bad option 'readout=m3'"),
])
def test_bad_mitigation_keys_are_one_line(spec, message):
    with pytest.raises(BackendConfigError, match=message) as info:
        parse_backend(spec)
    assert "\n" not in str(info.value)


def test_extrapolation_recovers_the_zero_noise_value():
    scales = (1, 3, 5)
    true = np.array([[0.8, -0.5]])
    linear = np.stack([true * (1 - 0.05 * s) for s in scales])
    np.testing.assert_allclose(extrapolate(scales, linear, "linear"), true, atol=1e-12)
    quadratic = np.stack([true * (1 - 0.05 * s + 0.004 * s * s) for s in scales])
    np.testing.assert_allclose(extrapolate(scales, quadratic, "richardson"), true, atol=1e-12)
    assert not np.allclose(extrapolate(scales, quadratic, "linear"), true, atol=1e-3)  # a line misses the curve


def test_folding_keeps_the_operation_and_multiplies_the_gates():
    from qiskit.quantum_info import Operator

    from finetune.quantum.device import compile_for_device, fake_device

    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="z"))
    device = fake_device("fake_manila")
    isa = compile_for_device(ansatz, device, seed=1).circuit
    bound = isa.assign_parameters(np.linspace(0.1, 1.0, len(isa.parameters)))
    folded = fold_global(bound, 3, device)
    assert Operator(folded).equiv(Operator(bound))
    assert set(folded.count_ops()) - {"barrier"} <= set(device.target.operation_names)  # no sxdg left for the noise model to skip
    gates = sum(n for name, n in bound.count_ops().items() if name in ("sx", "x", "ecr", "cx"))
    folded_gates = sum(n for name, n in folded.count_ops().items() if name in ("sx", "x", "ecr", "cx"))
    assert folded_gates >= 3 * gates


def _errors(ansatz, values, specs):
    exact = get_backend("exact").expectations(ansatz, values)
    return {spec: float(np.abs(get_backend(spec).expectations(ansatz, values) - exact).mean()) for spec in specs}


@pytest.mark.slow  # ~5 s alone, ~30 s on a loaded machine (M3's calibration circuits run on Aer)
def test_m3_reduces_the_readout_error_of_a_noisy_run():
    # One layer, many shots: readout errors dominate and shot noise (~0.003) is small beside them.
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="z"))
    values = np.random.default_rng(0).uniform(-np.pi, np.pi, (16, len(ansatz.parameters)))
    plain, mitigated = f"{NOISY},shots=100000", f"{NOISY},shots=100000,readout=m3"
    errors = _errors(ansatz, values, [plain, mitigated])
    assert errors[mitigated] < 0.6 * errors[plain], errors


@pytest.mark.slow
def test_zne_reduces_the_gate_error_of_an_exact_noisy_run():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=3, depth=2, readout="z"))
    values = np.random.default_rng(1).uniform(-np.pi, np.pi, (8, len(ansatz.parameters)))
    plain, zne = NOISY, f"{NOISY},zne=1,3,5,zne_fit=richardson"
    errors = _errors(ansatz, values, [plain, zne])
    assert errors[zne] < 0.6 * errors[plain], errors
    assert get_backend(zne).circuits_per_row() == 3 and get_backend(plain).circuits_per_row() == 1
