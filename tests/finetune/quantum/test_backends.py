"""Backends agree with each other: exact, Aer (shots, noise) and the IBM Runtime path offline."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from finetune.quantum.ansatz import AnsatzConfig, build_ansatz
from finetune.quantum.backends import get_backend
from finetune.quantum.device import BackendConfigError, BackendSpec, QuantumBackend, parse_backend

# A 5-qubit fake keeps the noisy tests fast; the 127-qubit one runs in the slow twins.
SMALL_FAKE = "fake_manila"
BIG_FAKE = "fake_sherbrooke"


def _values(ansatz, batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, (batch, len(ansatz.parameters)))


@pytest.fixture(scope="module")
def exact():
    return get_backend("exact")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("exact", BackendSpec("exact")),
        ("aer", BackendSpec("aer")),
        ("aer:shots=1024", BackendSpec("aer", shots=1024)),
        ("aer:noise=fake_sherbrooke", BackendSpec("aer", noise="fake_sherbrooke")),
        ("aer:noise=fake_sherbrooke,shots=1024", BackendSpec("aer", shots=1024, noise="fake_sherbrooke")),
        ("ibm:ibm_brisbane", BackendSpec("ibm", shots=4096, device="ibm_brisbane")),
        ("ibm:fake_manila,shots=100,seed=7", BackendSpec("ibm", shots=100, device="fake_manila", seed=7)),
        ("ibm:ibm_brisbane,resilience=2,twirling=on,dd=XY4",
         BackendSpec("ibm", shots=4096, device="ibm_brisbane", resilience=2, twirling=True, dd="XY4")),
        ("ibm:fake_manila,resilience=0,twirling=off,dd=off",
         BackendSpec("ibm", shots=4096, device="fake_manila", resilience=0, twirling=False, dd="off")),
        ("ibm:fake_manila,dd=XpXm", BackendSpec("ibm", shots=4096, device="fake_manila", dd="XpXm")),
    ],
)
def test_parse_backend(spec, expected):
    parsed = parse_backend(spec)
    assert parsed == expected
    assert parse_backend(str(parsed)) == parsed
    assert BackendSpec.from_dict(parsed.to_dict()) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "valid backends"),
        ("qpu", "valid backends"),
        ("exact:shots=10", "options of exact: none"),
        ("aer:shots=0", "positive integer"),
        ("aer:shots=-5", "positive integer"),
        ("aer:shots=lots", "positive integer"),
        ("aer:foo=1", "options of aer"),
        ("aer:shots=10,shots=20", "given twice"),
        ("ibm", "needs a device"),
        ("ibm:fake_manila,noise=fake_lima", "options of ibm"),
        ("aer:noise=fake_nowhere", "valid: fake_"),
        ("ibm:fake_nowhere", "valid: fake_"),
        ("ibm:fake_manila,resilience=3", "bad value '3' for resilience .*allowed: 0, 1, 2"),
        ("ibm:fake_manila,twirling=yes", "bad value 'yes' for twirling .*allowed: on, off"),
        ("ibm:fake_manila,dd=YY", "bad value 'YY' for dd .*allowed: XY4, XX, XpXm, off"),
        ("ibm:fake_manila,dd=xy4", "allowed: XY4, XX, XpXm, off"),
        ("ibm:fake_manila,zne=on", "options of ibm: shots=, seed=, resilience=, twirling=, dd="),
        ("aer:resilience=1", "options of aer"),
    ],
)
def test_bad_specs_fail_with_one_line(spec, message):
    with pytest.raises(BackendConfigError, match=message) as info:
        parse_backend(spec)
    assert "\n" not in str(info.value)


def test_unknown_fake_device_lists_the_valid_ones():
    with pytest.raises(BackendConfigError) as info:
        get_backend("aer:noise=fake_nowhere")
    assert "fake_sherbrooke" in str(info.value) and "fake_manila" in str(info.value)


@pytest.mark.parametrize(
    "spec", ["exact", "aer", "aer:shots=10", f"aer:noise={SMALL_FAKE}", f"ibm:{SMALL_FAKE}"]
)
def test_backends_follow_the_protocol(spec):
    backend = get_backend(spec)
    assert isinstance(backend, QuantumBackend)
    assert backend.name == str(parse_backend(spec))
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="z"))
    n_params = len(ansatz.parameters)
    with pytest.raises(ValueError, match=rf"values must be \[batch, {n_params}\]"):
        backend.expectations(ansatz, np.zeros((3, 5)))
    assert backend.expectations(ansatz, np.zeros((0, n_params))).shape == (0, 2)


@pytest.mark.parametrize(
    "config",
    [
        AnsatzConfig(n_qubits=3, depth=2, readout="z"),
        AnsatzConfig(n_qubits=3, depth=2, readout="zz", entangler="cz_line"),
        AnsatzConfig(n_qubits=3, depth=2, readout="probs"),
        AnsatzConfig(n_qubits=3, depth=1, readout="probs", encoding="amplitude"),
    ],
)
def test_aer_exact_matches_exact(config, exact):
    ansatz = build_ansatz(config)
    values = _values(ansatz, 8)
    out = get_backend("aer").expectations(ansatz, values)
    assert out.dtype == np.float64 and out.shape == (8, config.n_outputs)
    np.testing.assert_allclose(out, exact.expectations(ansatz, values), atol=1e-6)


@pytest.mark.parametrize("readout", ["z", "zz", "probs"])
def test_aer_shots_within_four_standard_errors(readout, exact):
    shots = 8192
    ansatz = build_ansatz(AnsatzConfig(n_qubits=3, depth=2, readout=readout))
    values = _values(ansatz, 6, seed=1)
    truth = exact.expectations(ansatz, values)
    out = get_backend(f"aer:shots={shots}").expectations(ansatz, values)
    # Every readout is a ±1 (z, zz) or 0/1 (probs) average over shots.
    variance = truth * (1 - truth) if readout == "probs" else 1 - truth**2
    stderr = np.sqrt(np.maximum(variance, 1e-4) / shots)
    assert np.all(np.abs(out - truth) < 4 * stderr + 1e-9)
    assert not np.allclose(out, truth, atol=1e-6)  # real shot noise, not exact values


def test_aer_shots_are_reproducible_per_seed():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="z"))
    values = _values(ansatz, 4)
    first = get_backend("aer:shots=100,seed=3").expectations(ansatz, values)
    again = get_backend("aer:shots=100,seed=3").expectations(ansatz, values)
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize("exact_spec", ["aer", f"aer:noise={SMALL_FAKE}"])
def test_aer_shot_noise_has_the_binomial_spread(exact_spec):
    # Shots are drawn from the exact outcome probabilities: over many rows of the same circuit
    # the spread of each ⟨Z_q⟩ estimate is the binomial one, sqrt((1 - ⟨Z_q⟩²) / shots), and the
    # estimates are averages of whole shots.
    shots, rows = 256, 2000
    ansatz = build_ansatz(AnsatzConfig(n_qubits=3, depth=2, readout="z"))
    values = np.repeat(_values(ansatz, 1, seed=5), rows, axis=0)
    truth = get_backend(exact_spec).expectations(ansatz, values[:1])[0]
    sep = "," if ":" in exact_spec else ":"
    out = get_backend(f"{exact_spec}{sep}shots={shots}").expectations(ansatz, values)
    np.testing.assert_allclose((out + 1) / 2 * shots, np.round((out + 1) / 2 * shots), atol=1e-9)
    expected = np.sqrt((1 - truth**2) / shots)
    assert np.all(expected > 0.01), truth  # a non-degenerate case
    ratio = out.std(axis=0) / expected
    assert np.all((ratio > 0.85) & (ratio < 1.15)), ratio
    assert np.all(np.abs(out.mean(axis=0) - truth) < 5 * expected / np.sqrt(rows))


def test_draw_shots_counts_repeat_per_seed():
    from finetune.quantum.aer import draw_shots

    probs = np.random.default_rng(0).dirichlet(np.ones(8), size=50)
    first = draw_shots(probs, 1000, seed=11)
    np.testing.assert_array_equal(first, draw_shots(probs, 1000, seed=11))
    assert not np.array_equal(first, draw_shots(probs, 1000, seed=12))
    counts = first * 1000
    np.testing.assert_array_equal(counts, np.round(counts))
    np.testing.assert_allclose(counts.sum(axis=1), 1000)
    # Consecutive jobs of one backend draw fresh noise; the same backend seed repeats them.
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="probs"))
    values = _values(ansatz, 4)
    backend, twin = get_backend("aer:shots=100,seed=3"), get_backend("aer:shots=100,seed=3")
    jobs = [backend.expectations(ansatz, values) for _ in range(2)]
    assert not np.array_equal(jobs[0], jobs[1])
    for job in jobs:
        np.testing.assert_array_equal(job, twin.expectations(ansatz, values))


def test_every_batch_is_one_job():
    jobs: list[str] = []
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="probs"))
    for spec in ("aer", "aer:shots=64", f"aer:noise={SMALL_FAKE}", f"aer:noise={SMALL_FAKE},shots=64"):
        get_backend(spec, on_job=jobs.append).expectations(ansatz, _values(ansatz, 16))
    assert len(jobs) == 4 and len(set(jobs)) == 4


def _noise_check(fake: str, exact, n_qubits: int, bound: float) -> np.ndarray:
    ansatz = build_ansatz(AnsatzConfig(n_qubits=n_qubits, depth=2, readout="z"))
    values = _values(ansatz, 8, seed=2)
    truth = exact.expectations(ansatz, values)
    noisy = get_backend(f"aer:noise={fake}").expectations(ansatz, values)
    error = np.abs(noisy - truth).max()
    assert 1e-3 < error < bound, error  # noise moves the numbers, but not wildly
    return noisy


def test_aer_noise_small_device(exact):
    _noise_check(SMALL_FAKE, exact, 3, 0.5)


@pytest.mark.slow
def test_aer_noise_127_qubit_device(exact):
    _noise_check(BIG_FAKE, exact, 4, 0.35)


@pytest.mark.parametrize("fake", [SMALL_FAKE, pytest.param(BIG_FAKE, marks=pytest.mark.slow)])
@pytest.mark.parametrize("spec", ["aer:noise={},shots=4096", "ibm:{},shots=4096", "aer:noise={}"])
def test_noisy_paths_keep_logical_qubit_order(fake, spec):
    # RY(π) on qubit 0 (re-uploaded 3 times) and CX lines map |0000> to a basis state with a
    # mixed sign pattern, so each ⟨Z_q⟩ is ±1 and a permuted qubit order would flip a sign.
    ansatz = build_ansatz(AnsatzConfig(n_qubits=4, depth=3, readout="z", entangler="cx_line"))
    values = np.zeros((1, len(ansatz.parameters)))
    values[0, 0] = np.pi
    out = get_backend(spec.format(fake)).expectations(ansatz, values)
    expected = get_backend("exact").expectations(ansatz, values)
    np.testing.assert_allclose(np.abs(expected), 1, atol=1e-9)
    assert len(set(np.sign(expected[0]))) == 2
    assert np.all(np.sign(out) == expected) and np.all(np.abs(out) > 0.5), out


@pytest.mark.parametrize("fake", [SMALL_FAKE, pytest.param(BIG_FAKE, marks=pytest.mark.slow)])
def test_noisy_density_matrix_matches_noisy_sampler(fake):
    # The exact noisy result (density matrix + readout errors) is what shots converge to.
    shots = 8192
    ansatz = build_ansatz(AnsatzConfig(n_qubits=3, depth=2, readout="probs"))
    values = _values(ansatz, 4, seed=3)
    exact_noisy = get_backend(f"aer:noise={fake}").expectations(ansatz, values)
    sampled = get_backend(f"aer:noise={fake},shots={shots}").expectations(ansatz, values)
    stderr = np.sqrt(np.maximum(exact_noisy * (1 - exact_noisy), 1e-4) / shots)
    assert np.all(np.abs(sampled - exact_noisy) < 4 * stderr + 1e-9)


def test_noisy_shots_too_large_for_a_density_matrix_use_the_sampler(monkeypatch):
    from finetune.quantum import aer

    monkeypatch.setattr(aer, "MAX_DENSITY_QUBITS", 1)
    shots, jobs = 8192, []
    ansatz = build_ansatz(AnsatzConfig(n_qubits=3, depth=2, readout="probs"))
    values = _values(ansatz, 4, seed=3)
    backend = get_backend(f"aer:noise={SMALL_FAKE},shots={shots}", on_job=jobs.append)
    sampled = backend.expectations(ansatz, values)
    assert backend.compiled(ansatz).mode == "sample" and len(jobs) == 1
    monkeypatch.setattr(aer, "MAX_DENSITY_QUBITS", 12)
    exact_noisy = get_backend(f"aer:noise={SMALL_FAKE}").expectations(ansatz, values)
    stderr = np.sqrt(np.maximum(exact_noisy * (1 - exact_noisy), 1e-4) / shots)
    assert np.all(np.abs(sampled - exact_noisy) < 4 * stderr + 1e-9)


@pytest.mark.parametrize("fake", [SMALL_FAKE, pytest.param(BIG_FAKE, marks=pytest.mark.slow)])
def test_ibm_fake_runs_offline_close_to_aer_noise(fake):
    shots = 4096
    jobs: list[str] = []
    ansatz = build_ansatz(AnsatzConfig(n_qubits=3, depth=2, readout="zz"))
    values = _values(ansatz, 4, seed=4)
    backend = get_backend(f"ibm:{fake},shots={shots}", on_job=jobs.append)
    out = backend.expectations(ansatz, values)
    reference = get_backend(f"aer:noise={fake}").expectations(ansatz, values)
    assert len(jobs) == 1
    stderr = np.sqrt((1 - reference**2 + 1e-4) / shots)
    assert np.all(np.abs(out - reference) < 4 * stderr + 0.01), (out, reference)


def test_ansatz_larger_than_device_is_refused():
    ansatz = build_ansatz(AnsatzConfig(n_qubits=6, depth=1, readout="z"))
    with pytest.raises(BackendConfigError, match="only 5"):
        get_backend(f"aer:noise={SMALL_FAKE}").expectations(ansatz, _values(ansatz, 1))


# --- IBM credentials (never the network) -----------------------------------------------------


def _service_raising(monkeypatch, error: Exception) -> None:
    import qiskit_ibm_runtime

    def service(*args, **kwargs):
        raise error

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", service)


def test_missing_ibm_credentials_fail_at_once_with_one_line(monkeypatch):
    from qiskit_ibm_runtime.accounts import AccountNotFoundError

    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    _service_raising(monkeypatch, AccountNotFoundError("Unable to find account."))
    with pytest.raises(BackendConfigError) as info:
        get_backend("ibm:ibm_brisbane")
    message = str(info.value)
    assert "\n" not in message
    assert "QiskitRuntimeService.save_account(token=..., instance=...)" in message
    assert "QISKIT_IBM_TOKEN" in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_ibm_token_never_leaks(monkeypatch, caplog):
    token = "tok-SECRET-0123456789abcdef"
    monkeypatch.setenv("QISKIT_IBM_TOKEN", token)
    _service_raising(monkeypatch, RuntimeError(f"401 Unauthorized for token {token}"))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BackendConfigError) as info:
        get_backend("ibm:ibm_brisbane")
    assert token not in str(info.value) and "***" in str(info.value)
    assert "401 Unauthorized" in str(info.value)
    assert token not in caplog.text
