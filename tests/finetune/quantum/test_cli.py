"""`agent backends list` through typer's CliRunner (never the network)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from finetune.quantum.cli import app

runner = CliRunner()


@pytest.fixture
def no_ibm_account(monkeypatch):
    """IBM is not configured: the service raises what it raises without a saved account."""
    import qiskit_ibm_runtime
    from qiskit_ibm_runtime.accounts import AccountNotFoundError

    def service(*args, **kwargs):
        raise AccountNotFoundError("Unable to find account.")

    monkeypatch.delenv("QISKIT_IBM_TOKEN", raising=False)
    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", service)


def test_list_shows_exact_aer_and_fake_devices(no_ibm_account):
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("exact") and lines[1].startswith("aer ")
    assert any(line.startswith("aer:shots=1024") for line in lines)
    assert any(line.startswith("aer:noise=fake_sherbrooke") and "127 qubits" in line for line in lines)
    assert "IBM Quantum is not configured" in lines[-1]


def test_list_json_parses(no_ibm_account):
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    specs = {row["spec"]: row for row in data["backends"]}
    assert {"exact", "aer", "aer:shots=1024"} <= set(specs)
    assert specs["aer:noise=fake_manila"]["qubits"] == 5
    assert "save_account" in data["ibm_note"]


def test_list_with_an_ibm_account_shows_its_devices(monkeypatch):
    import qiskit_ibm_runtime

    class Device:
        name, num_qubits = "ibm_test", 127

    class Service:
        def __init__(self, **options):  # open_service names the saved account file
            pass

        def backends(self):
            return [Device()]

    monkeypatch.setattr(qiskit_ibm_runtime, "QiskitRuntimeService", Service)
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    row = {"spec": "ibm:ibm_test", "kind": "ibm", "qubits": 127, "description": "IBM Quantum device"}
    assert row in data["backends"]
    assert data["ibm_note"] is None


def test_list_errors_are_one_line_and_exit_1(monkeypatch):
    import finetune.quantum.cli as cli

    def broken() -> dict:
        raise RuntimeError("fake provider\nexploded")

    monkeypatch.setattr(cli, "fake_devices", broken)
    result = runner.invoke(app, ["list", "--no-ibm"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: fake provider exploded"
    assert "Traceback" not in result.output
