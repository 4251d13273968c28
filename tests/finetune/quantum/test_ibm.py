"""The IBM Runtime backend hands the spec's error mitigation to EstimatorV2 (offline, fake devices)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from finetune.quantum.ansatz import AnsatzConfig, build_ansatz
from finetune.quantum.backends import get_backend
from finetune.quantum.device import BackendConfigError, BackendSpec


def test_mitigation_options_reach_the_estimator():
    backend = get_backend("ibm:fake_manila,shots=300,resilience=2,twirling=on,dd=XpXm")
    options = backend._get_estimator().options
    assert options.default_shots == 300
    assert options.resilience_level == 2
    assert options.twirling.enable_gates is True and options.twirling.enable_measure is True
    assert options.dynamical_decoupling.enable is True and options.dynamical_decoupling.sequence_type == "XpXm"
    backend.close()


def test_options_left_out_stay_unset_and_dd_off_disables():
    from qiskit_ibm_runtime.options.utils import Unset

    options = get_backend("ibm:fake_manila,dd=off,twirling=off")._get_estimator().options
    assert options.resilience_level is Unset
    assert options.dynamical_decoupling.enable is False
    assert options.twirling.enable_gates is False and options.twirling.enable_measure is False


def test_a_mitigated_job_runs_in_local_mode_and_names_its_options():
    jobs: list[str] = []
    backend = get_backend("ibm:fake_manila,shots=200,resilience=1,twirling=on,dd=XY4", on_job=jobs.append)
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="z"))
    out = backend.expectations(ansatz, np.zeros((2, len(ansatz.parameters))))
    assert out.shape == (2, 2) and np.all(np.abs(out) <= 1) and len(jobs) == 1
    # The name is what run records and job ledgers store.
    assert backend.name == "ibm:fake_manila,shots=200,resilience=1,twirling=on,dd=XY4"


def test_mitigation_is_recorded_in_the_spec_dict():
    spec = BackendSpec("ibm", device="fake_manila", resilience=1, dd="XX")
    assert spec.to_dict()["resilience"] == 1 and spec.to_dict()["dd"] == "XX"
    assert BackendSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(BackendConfigError, match="ibm options"):
        BackendSpec("aer", twirling=True)


def _ibm_account() -> bool:
    return bool(os.environ.get("QISKIT_IBM_TOKEN")) or (Path.home() / ".qiskit" / "qiskit-ibm.json").is_file()


@pytest.mark.ibm
@pytest.mark.skipif(not _ibm_account(), reason="needs IBM Quantum credentials (QISKIT_IBM_TOKEN or a saved account)")
def test_tiny_mitigated_job_on_real_hardware():
    from finetune.quantum.ibm import open_service

    service = open_service()
    device = service.least_busy(operational=True, simulator=False)
    backend = get_backend(f"ibm:{device.name},shots=100,resilience=1,twirling=on,dd=XY4")
    ansatz = build_ansatz(AnsatzConfig(n_qubits=2, depth=1, readout="z"))
    with backend:
        out = backend.expectations(ansatz, np.zeros((1, len(ansatz.parameters))))
    assert out.shape == (1, 2) and np.all(np.abs(out) <= 1.05)
