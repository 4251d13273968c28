"""Real background runs: killed with SIGKILL mid-training and resumed, cancelled and resumed,
resumed twice at once; each ends with the model an uninterrupted run with the same seed makes."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch
from safetensors.torch import load_file
from text_data import write_csv
from typer.testing import CliRunner

from agent.cli import app
from finetune.runs.registry import RunRegistry

runner = CliRunner()
# 27 training examples in batches of 2: 14 steps per epoch, 560 in all; checkpoints every 5 steps.
TRAIN = ["--head", "hybrid", "--qubits", "2", "--depth", "1", "--circuits", "1", "--epochs", "40", "--patience", "100",
         "--batch-size", "2", "--checkpoint-every", "5"]
TIMEOUT = 300


def start(data, out):
    result = runner.invoke(app, ["finetune", "intents", "--data", str(data), *TRAIN, "--out", str(out), "--detach", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["run"]


def wait_for(condition, what):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def progress(registry, run_id):
    return registry.load(run_id).progress


def weights(out):
    return load_file(str(out / "head.safetensors"))


@pytest.mark.slow
def test_killed_cancelled_and_resumed_runs_end_like_an_uninterrupted_one(tmp_path, monkeypatch):
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the same arithmetic in every process
    monkeypatch.chdir(tmp_path)  # runs record relative paths against their folder
    data = tmp_path / "intents.csv"
    write_csv(data)
    registry = RunRegistry()
    reference = start(data, "reference")
    killed = start(data, "killed")
    cancelled = start(data, "cancelled")
    try:
        # SIGKILL the whole process group once a checkpoint exists: nothing gets to clean up.
        wait_for(lambda: (progress(registry, killed).get("checkpoint_step") or 0) >= 10, "a checkpoint")
        os.killpg(registry.holder(killed), signal.SIGKILL)
        wait_for(lambda: not registry.is_alive(killed), "the killed run to die")
        record = registry.reconcile(registry.load(killed))
        assert record.status == "failed" and record.error.startswith("interrupted")
        assert record.progress["step"] < 560

        wait_for(lambda: (progress(registry, cancelled).get("step") or 0) >= 3, "the run to train")
        result = runner.invoke(app, ["jobs", "cancel", cancelled])
        assert result.exit_code == 0 and f"cancelled run {cancelled}" in result.output
        assert registry.load(cancelled).status == "cancelled"

        result = runner.invoke(app, ["jobs", "resume", killed, "--detach"])
        assert result.exit_code == 0 and f"resumed run {killed} in the background" in result.output
        twice = runner.invoke(app, ["jobs", "resume", killed])
        assert twice.exit_code == 1 and f"run {killed} is already running" in twice.output

        result = runner.invoke(app, ["jobs", "resume", cancelled])  # in the foreground: waits for it
        assert result.exit_code == 0, result.output
        wait_for(lambda: not any(registry.is_alive(r) for r in (reference, killed)), "the runs to end")
    finally:
        for run_id in (reference, killed, cancelled):
            if registry.is_alive(run_id):
                os.killpg(registry.holder(run_id), signal.SIGKILL)

    records = {run_id: registry.load(run_id) for run_id in (reference, killed, cancelled)}
    assert {r.status for r in records.values()} == {"succeeded"}
    for run_id in (killed, cancelled):
        attempts = records[run_id].attempts
        assert [a["status"] for a in attempts] == [("failed" if run_id == killed else "cancelled"), "succeeded"]
        assert attempts[1]["resumed_from_step"] > 0  # from a checkpoint, not from scratch
        for name in ("val_macro_f1", "best_epoch"):
            assert records[run_id].metrics[name] == records[reference].metrics[name]
        expected, got = weights(tmp_path / "reference"), weights(tmp_path / ("killed" if run_id == killed else "cancelled"))
        assert all(torch.allclose(got[name], expected[name], atol=1e-6) for name in expected)
        history = json.loads((tmp_path / "killed" / "metrics.json").read_text())["history"]
        reference_history = json.loads((tmp_path / "reference" / "metrics.json").read_text())["history"]
        assert [round(r["val_loss"], 6) for r in history] == [round(r["val_loss"], 6) for r in reference_history]

    log = runner.invoke(app, ["jobs", "logs", killed])
    assert f"run {killed} resumed from the checkpoint at step" in log.output
    assert '"model": "killed"' in log.output  # the summary --json printed at the end
