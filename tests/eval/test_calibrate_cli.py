"""`agent finetune calibrate`: a copy with calibration.json, checksums that verify, eval that applies it."""

from __future__ import annotations

import json

import pytest
import torch
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


def test_calibrate_dry_run_estimates_the_fit_and_copies_nothing(model, intents_csv, tmp_path):
    out = tmp_path / "calibrated"
    argv = ["finetune", "calibrate", str(model), "--backend", "ibm:fake_manila,shots=100", "--data", str(intents_csv),
            "--limit", "3", "--out", str(out)]
    result = runner.invoke(app, [*argv, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    (fit,) = json.loads(result.stdout)["circuits"]
    assert fit["rows"] == 3 and fit["shots"] == 100  # one circuit scores the 3 queries once
    refused = runner.invoke(app, [*argv, "--max-qpu-seconds", "0.001"])
    assert refused.exit_code == 2 and "exceed --max-qpu-seconds" in refused.output
    assert not out.exists()


def test_calibrate_runs_on_the_device_asked_for(model, intents_csv, tmp_path):
    argv = ["finetune", "calibrate", str(model), "--backend", "exact", "--data", str(intents_csv), "--limit", "3"]
    result = runner.invoke(app, [*argv, "--out", str(tmp_path / "cpu"), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, [*argv, "--out", str(tmp_path / "tpu"), "--device", "tpu"])
    assert result.exit_code == 1 and "device must be auto, cpu or cuda" in result.output
    assert not (tmp_path / "tpu").exists()


def test_eval_says_once_when_the_model_has_no_calibration_for_the_backend(model, intents_csv, tmp_path):
    from finetune.models.calibration import Calibration, backend_key, write_calibration

    argv = ["eval", "intents", str(model), "--data", str(intents_csv), "--backend", "aer:shots=64", "--limit", "2",
            "--json", "--out", str(tmp_path / "report")]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("no calibration for aer:shots=64") == 1
    assert "agent finetune calibrate MODEL --backend aer:shots=64" in result.stderr
    write_calibration(model, Calibration(backend=backend_key("aer:shots=64"), temperature=1.5))
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "no calibration" not in result.stderr
    assert json.loads(result.stdout)["calibration"]["temperature"] == 1.5


def test_adapt_head_stores_output_layers_used_on_that_backend_only(model, intents_csv, tmp_path):
    from finetune.models.classifier import TextClassifier
    from finetune.models.noise_adapt import output_layers, read_weights

    out, backend = tmp_path / "adapted", "aer:shots=64"
    argv = ["finetune", "calibrate", str(model), "--backend", backend, "--data", str(intents_csv), "--limit", "4",
            "--adapt-head", "--adapt-epochs", "2", "--out", str(out), "--json"]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["head_weights"].startswith("calibration-") and (out / summary["head_weights"]).is_file()
    assert summary["adapted_on"] > 0 and 0.0 <= summary["accuracy_before"] <= 1.0
    assert len(summary["noise"]["gain"]) == 1 and summary["noise"]["readout"] == "probs"
    manifest = json.loads((out / "checksums.json").read_text())["sha256"]
    assert summary["head_weights"] in manifest
    assert runner.invoke(app, ["finetune", "checksums", str(out)]).exit_code == 0

    adapted = read_weights(out, summary["head_weights"])
    own = output_layers(TextClassifier.load(model).head)
    classifier = TextClassifier.load(out, backend=backend)
    assert "output layers retrained" in classifier.calibration.describe()
    assert all(torch.equal(v, adapted[k]) for k, v in output_layers(classifier.head).items())
    assert any(not torch.equal(adapted[k], own[k]) for k in own)
    classifier.set_backend("exact")  # no entry for exact: the checkpoint's own layers come back
    assert all(torch.equal(v, own[k]) for k, v in output_layers(classifier.head).items())

    result = runner.invoke(app, ["eval", "intents", str(out), "--data", str(intents_csv), "--backend", backend,
                                 "--limit", "2", "--json", "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["calibration"]["head_weights"] == summary["head_weights"]

    # Fitted again without --adapt-head: the entry drops the layers and their file goes with it.
    result = runner.invoke(app, ["finetune", "calibrate", str(out), "--backend", backend, "--data", str(intents_csv),
                                 "--limit", "4", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["head_weights"] is None
    assert not list(out.glob("calibration-*.safetensors"))
    assert runner.invoke(app, ["finetune", "checksums", str(out)]).exit_code == 0


def test_adapt_head_is_refused_where_there_is_no_noise_or_no_circuit(model, intents_csv, tmp_path):
    result = runner.invoke(app, ["finetune", "calibrate", str(model), "--backend", "exact", "--adapt-head",
                                 "--data", str(intents_csv), "--out", str(tmp_path / "a")])
    assert result.exit_code == 1 and "exact backend has no noise" in result.output
    assert result.output.count("\n") == 1 and not (tmp_path / "a").exists()
    linear = tmp_path / "linear"
    trained = runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), "--head", "linear", "--epochs", "1",
                                  "--batch-size", "8", "--out", str(linear), "--json"])
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(app, ["finetune", "calibrate", str(linear), "--backend", "aer:shots=64", "--adapt-head",
                                 "--data", str(intents_csv), "--limit", "3"])
    assert result.exit_code == 1 and "needs a head with circuits" in result.output
    assert result.output.count("\n") == 1
    assert "calibration.json" not in [p.name for p in linear.iterdir()]
