"""`agent finetune calibrate`: a copy with calibration.json, checksums that verify, eval that applies it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agent.cli import app

runner = CliRunner()
FAST = ["--head", "hybrid", "--qubits", "2", "--depth", "1", "--circuits", "1", "--epochs", "2",
        "--batch-size", "8", "--lr", "0.02"]


@pytest.fixture()
def model(intents_csv, tmp_path):
    out = tmp_path / "model"
    result = runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), *FAST, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    return out


def test_calibrate_writes_a_copy_that_eval_applies(model, intents_csv, tmp_path):
    out = tmp_path / "calibrated"
    result = runner.invoke(app, ["finetune", "calibrate", str(model), "--backend", "exact", "--data", str(intents_csv),
                                 "--limit", "3", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["backend"] == "exact" and summary["n"] == 3 and summary["temperature"] > 0
    assert summary["ece_before"] >= 0 and summary["ece_after"] >= 0
    assert 0.0 < summary["clarify_margin"] <= 0.3  # re-chosen for the router (intents model)
    assert not (model / "calibration.json").exists()  # the source stays as it was
    stored = json.loads((out / "calibration.json").read_text())["backends"]["exact"]
    assert stored["temperature"] == summary["temperature"] and stored["data"].endswith("validation")

    result = runner.invoke(app, ["finetune", "checksums", str(out)])
    assert result.exit_code == 0 and "checksums verified" in result.output

    result = runner.invoke(app, ["eval", "intents", str(out), "--data", str(intents_csv), "--json",
                                 "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["calibration"]["backend"] == "exact"
    assert report["calibration"]["temperature"] == summary["temperature"]
    assert 0.0 <= report["calibration"]["ece_uncalibrated"] <= 1.0

    result = runner.invoke(app, ["eval", "intents", str(model), "--data", str(intents_csv), "--json",
                                 "--out", str(tmp_path / "plain")])
    assert json.loads(result.stdout)["calibration"] is None


@pytest.mark.parametrize(("args", "message"), [
    (["nowhere", "--backend", "exact"], "model directory not found"),
    (["default", "--backend", "aer:colour=red", "--out", "x"], "bad option 'colour=red'"),
    (["default", "--backend", "exact"], "needs --out"),
    (["default", "--backend", "exact", "--out", "x", "--split", "test"], "not test"),
])
def test_errors_are_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["finetune", "calibrate", *args])
    assert result.exit_code == 1
    assert message in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_an_existing_out_folder_is_not_overwritten(model, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["finetune", "calibrate", str(model), "--backend", "exact", "--out", str(taken)])
    assert result.exit_code == 1 and "already exists" in result.output
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
