"""A run in progress: statuses, log, progress and checkpoints from a real Trainer, faults."""

from __future__ import annotations

import os
import shutil
import signal

import pytest
import torch
import typer

from finetune.models.heads import Head, HeadConfig
from finetune.runs.recorder import RunCancelled, run_record
from finetune.runs.registry import RunBusyError, RunError, RunNotFoundError, RunRegistry
from finetune.training.trainer import Trainer, TrainerCallback, TrainingArguments

COMMAND = ["agent", "finetune", "intents", "--epochs", "3"]


def record_run(registry, **kwargs):
    return run_record("finetune", "intents", COMMAND, {"epochs": 3}, registry=registry, **kwargs)


def toy_fit(run, callbacks=(), epochs=3):
    """A real (tiny) training: 40 examples, batch 8 → 5 steps per epoch."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, generator=generator)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(0)
    head = Head(HeadConfig(kind="linear", in_features=4, n_classes=2, dropout=0.0))
    hooks = run.training_hooks()
    trainer = Trainer(head, TrainingArguments(epochs=epochs, batch_size=8, lr=0.05, progress=False),
                      callbacks=[*hooks["callbacks"], *callbacks], checkpointing=hooks["checkpointing"])
    return trainer.fit(x[:40], y[:40], x[40:], y[40:])


def test_a_successful_run_records_status_times_and_its_log(tmp_path, capsys):
    registry = RunRegistry(tmp_path)
    with record_run(registry) as run:
        assert registry.load(run.id).status == "running"
        print("hello from the run")
    record = registry.load(run.id)
    assert record.status == "succeeded" and record.pid == os.getpid()
    assert record.started_at and record.ended_at and record.error is None
    assert [a["status"] for a in record.attempts] == ["succeeded"]
    log = (registry.path(run.id) / "run.log").read_text()
    assert "hello from the run" in log and f"run {run.id} succeeded" in log
    assert "hello from the run" in capsys.readouterr().out  # the terminal still sees it
    assert not registry.is_alive(run.id)


@pytest.mark.parametrize(
    ("raised", "status", "error"),
    [(ValueError("file not found: x.csv"), "failed", "file not found: x.csv"),
     (KeyboardInterrupt(), "cancelled", "interrupted (Ctrl-C)"),
     (typer.Exit(2), "failed", "exit code 2"),
     (typer.Exit(0), "succeeded", None)],
)
def test_how_a_run_ends_is_recorded(tmp_path, raised, status, error):
    registry = RunRegistry(tmp_path)
    with pytest.raises(type(raised)), record_run(registry) as run:
        raise raised
    record = registry.load(run.id)
    assert (record.status, record.error) == (status, error)


def test_sigterm_cancels_the_run_and_the_old_handler_comes_back(tmp_path):
    registry = RunRegistry(tmp_path)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunCancelled), record_run(registry) as run:
        os.kill(os.getpid(), signal.SIGTERM)
    assert registry.load(run.id).status == "cancelled"
    assert signal.getsignal(signal.SIGTERM) == before


def test_training_progress_and_checkpoints_land_in_the_record(tmp_path):
    registry = RunRegistry(tmp_path)
    seen = []

    class Peek(TrainerCallback):
        def on_step(self, epoch, step, total_steps):
            if step == 7:
                seen.append(registry.load(run.id).progress)

    with record_run(registry, checkpoint_every=3) as run:
        toy_fit(run, [Peek()])
    record = registry.load(run.id)
    assert seen[0]["checkpoint_step"] == 6 and seen[0]["total_steps"] == 15  # 6 = periodic, 5 = epoch end
    assert record.progress["step"] == 15 and record.progress["checkpoint_step"] == 15
    assert record.progress["last_epoch"]["epoch"] == 3
    assert (registry.path(run.id) / record.checkpoint).is_file()
    log = (registry.path(run.id) / "run.log").read_text()
    assert "epoch 3: train loss" in log


def test_a_second_attempt_resumes_from_the_first_attempts_checkpoint(tmp_path):
    registry = RunRegistry(tmp_path)
    with record_run(registry) as expected_run:
        expected = toy_fit(expected_run)

    class Crash(TrainerCallback):
        def on_step(self, epoch, step, total_steps):
            if step == 8:
                raise RuntimeError("machine on fire")

    with pytest.raises(RuntimeError), record_run(registry, checkpoint_every=3) as run:
        toy_fit(run, [Crash()])
    assert registry.load(run.id).status == "failed"
    with record_run(registry, run_id=run.id, checkpoint_every=3) as again:
        assert again.training_hooks()["checkpointing"].resume_from == registry.path(run.id) / "checkpoints" / "trainer_state.safetensors"
        result = toy_fit(again)
    record = registry.load(run.id)
    assert record.status == "succeeded"
    assert [(a["status"], a["resumed_from_step"]) for a in record.attempts] == [("failed", None), ("succeeded", 6)]
    assert [r["val_loss"] for r in result.history] == [r["val_loss"] for r in expected.history]


def test_a_run_goes_on_when_its_folder_is_deleted(tmp_path, capsys):
    registry = RunRegistry(tmp_path)

    class DeleteFolder(TrainerCallback):
        def on_step(self, epoch, step, total_steps):
            if step == 4:
                shutil.rmtree(registry.path(run.id))

    with record_run(registry, checkpoint_every=2) as run:
        result = toy_fit(run, [DeleteFolder()])
    assert len(result.history) == 3  # training finished
    err = capsys.readouterr().err
    assert err.count(f"run folder {registry.path(run.id)} was deleted; run {run.id} goes on without a record") == 1
    with pytest.raises(RunNotFoundError):
        registry.load(run.id)
    assert not registry.path(run.id).exists()  # not re-created half-way by the checkpoints or the record


def test_a_run_cannot_be_entered_twice(tmp_path):
    registry = RunRegistry(tmp_path)
    with record_run(registry) as run:
        with pytest.raises(RunBusyError, match=f"run {run.id} is already running \\(pid {os.getpid()}\\)"):
            with record_run(registry, run_id=run.id):
                pass
    with pytest.raises(RunError, match="is `agent finetune intents`, not `agent eval intents`"):
        with run_record("eval", "intents", ["agent", "eval", "intents"], {}, registry=registry, run_id=run.id):
            pass


def test_an_ibm_job_is_on_disk_before_anyone_waits_for_it(tmp_path):
    registry = RunRegistry(tmp_path)
    with record_run(registry) as run:
        run.submitted("key-1", "job-abc", "ibm:ibm_brisbane")
        on_disk = registry.load(run.id).ibm_jobs
        assert [(j["job_id"], j["status"]) for j in on_disk] == [("job-abc", "SUBMITTED")]
        assert run.find("key-1") == "job-abc" and run.find("key-2") is None
        run.updated("job-abc", "ERROR")
        assert run.find("key-1") is None  # a failed job is paid for again, not reused
