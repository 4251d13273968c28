"""`agent jobs …` through typer's CliRunner, on runs made by real (tiny) commands."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agent.cli import app
from finetune.runs.recorder import run_record
from finetune.runs.registry import RunRegistry

runner = CliRunner()


def jobs(*argv):
    return runner.invoke(app, ["jobs", *argv])


def recorded(task="intents", config=None, metrics=None, status="succeeded"):
    """A finished run record, as a command would leave it."""
    config = {"head": "hybrid", "lr": 0.003, "epochs": 30, "backend": "exact", "out": "m", **(config or {})}
    with run_record("finetune", task, ["agent", "finetune", task], config, backend=config["backend"]) as run:
        run.finish(status, metrics=metrics or {}, error=None if status == "succeeded" else "boom")
    return run.id


def test_a_finetune_run_shows_up_with_its_metrics_artifacts_and_log(intents_csv, tmp_path):
    model = tmp_path / "model"
    result = runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), "--head", "linear", "--epochs", "2",
                                 "--batch-size", "8", "--checkpoint-every", "3", "--out", str(model)])
    assert result.exit_code == 0, result.output

    listed = jobs("list")
    assert listed.exit_code == 0, listed.output
    row = listed.output.splitlines()[1].split()
    assert row[0].endswith("-finetune-intents-" + row[0][-4:]) and row[1] == "succeeded"
    assert "val_macro_f1" in listed.output

    shown = json.loads(jobs("show", "latest", "--json").stdout)
    assert shown["status"] == "succeeded" and shown["backend"] == "exact"
    assert shown["command"][:3] == ["agent", "finetune", "intents"] and "--checkpoint-every" in shown["command"]
    assert "--detach" not in shown["command"]
    assert shown["config"]["epochs"] == 2 and shown["config"]["data"] == str(intents_csv)
    assert shown["metrics"]["best_epoch"] in (1, 2) and 0 <= shown["metrics"]["val_macro_f1"] <= 1
    assert shown["artifacts"]["model"] == str(model)
    assert shown["progress"]["step"] == shown["progress"]["total_steps"] == 6  # 18 examples / 8 → 3 steps × 2
    assert shown["progress"]["checkpoint_step"] == 6

    log = jobs("logs", shown["id"][-4:])
    assert log.exit_code == 0 and "trained intents model (linear head" in log.output
    assert "\r" not in log.output  # progress-bar redraws are reduced to lines


def test_a_failed_command_is_a_failed_run_with_its_reason(tmp_path):
    result = runner.invoke(app, ["finetune", "intents", "--data", str(tmp_path / "missing.csv"), "--out", "x"])
    assert result.exit_code == 1
    shown = json.loads(jobs("show", "latest", "--json").stdout)
    assert shown["status"] == "failed" and shown["error"].startswith("file not found:")
    assert "failed" in jobs("list", "--status", "failed").output
    assert jobs("list", "--status", "succeeded").output.startswith("no runs with status succeeded")


def test_a_command_still_runs_when_runs_cannot_be_recorded(intents_csv, tmp_path, monkeypatch):
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("QAGENT_RUNS_DIR", str(tmp_path / "not-a-folder"))
    result = runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), "--head", "linear", "--epochs", "1",
                                 "--out", str(tmp_path / "model")])
    assert result.exit_code == 0, result.output
    assert "warning: cannot record this run in" in result.output and "it runs without a record" in result.output
    assert (tmp_path / "model" / "head.safetensors").is_file()


def test_eval_commands_are_runs_too(intents_csv, tmp_path):
    model, out = tmp_path / "model", tmp_path / "report"
    assert runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), "--head", "linear", "--epochs", "1",
                               "--out", str(model)]).exit_code == 0
    result = runner.invoke(app, ["eval", "intents", str(model), "--data", str(intents_csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    shown = json.loads(jobs("show", "latest", "--json").stdout)
    assert (shown["kind"], shown["task"], shown["status"]) == ("eval", "intents", "succeeded")
    assert 0 <= shown["metrics"]["accuracy"] <= 1 and "per_class" not in json.dumps(shown["metrics"])
    assert shown["artifacts"]["report"] == str(out / "report.json")


def test_compare_puts_settings_that_differ_and_metrics_side_by_side():
    a = recorded(config={"lr": 0.003}, metrics={"val_macro_f1": 0.91, "best_epoch": 7})
    b = recorded(config={"lr": 0.01, "head": "quantum"}, metrics={"val_macro_f1": 0.88})
    table = json.loads(jobs("compare", a, b, "--json").stdout)
    assert table["runs"] == [a, b]
    assert table["settings"] == {"head": ["hybrid", "quantum"], "lr": [0.003, 0.01]}
    assert table["metrics"] == {"val_macro_f1": [0.91, 0.88], "best_epoch": [7, None]}
    text = jobs("compare", a, b).output
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip() and not line.startswith(" ")}
    assert lines["lr"] == ["0.003", "0.01"] and lines["val_macro_f1"] == ["0.9100", "0.8800"]
    assert lines["best_epoch"] == ["7", "-"]
    assert "epochs" not in lines  # the same in both: shown with --all only
    assert "epochs" in jobs("compare", a, b, "--all").output


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["show", "nope"], "no run 'nope' in "), (["logs", "nope"], "no run 'nope'"), (["resume", "nope"], "no run 'nope'"),
     (["cancel", "nope"], "no run 'nope'"), (["compare", "nope"], "give two or more run ids"),
     (["list", "--status", "done"], "unknown status done")],
)
def test_bad_ids_and_options_are_one_line_and_exit_1(argv, message):
    result = jobs(*argv)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_a_corrupted_record_is_named_and_listed_as_corrupt():
    run_id = recorded()
    (RunRegistry().path(run_id) / "record.json").write_text('{"format": "qagent-run/1", "id": "x"')
    result = jobs("show", run_id)
    assert result.exit_code == 1
    assert f"error: run {run_id}: record.json is corrupted" in result.output and "restore it or remove" in result.output
    listed = jobs("list")
    assert listed.exit_code == 0 and f"{run_id}  corrupt" in listed.output
    assert json.loads(jobs("list", "--json").stdout)[0]["status"] == "corrupt"


def test_resume_refuses_a_running_run_and_a_finished_one():
    registry = RunRegistry()
    record, lock = registry.create("finetune", "intents", ["agent", "finetune", "intents"], "/tmp", {})
    try:  # this process plays the run's process
        result = jobs("resume", record.id)
        assert result.exit_code == 1
        assert f"run {record.id} is already running (pid " in result.output and "agent jobs cancel" in result.output
    finally:
        lock.release()
    done = recorded()
    result = jobs("resume", done)
    assert result.exit_code == 1 and "already succeeded; nothing to resume" in result.output


def test_cancel_marks_a_run_whose_process_is_gone_and_refuses_a_finished_one():
    registry = RunRegistry()
    record, lock = registry.create("finetune", "intents", ["agent", "finetune", "intents"], "/tmp", {})
    lock.release()  # queued, but its process died before it started
    result = jobs("cancel", record.id)
    assert result.exit_code == 0 and f"cancelled run {record.id}" in result.output
    assert registry.load(record.id).status == "cancelled"
    again = jobs("cancel", record.id)
    assert again.exit_code == 1 and "already ended (cancelled); nothing to cancel" in again.output


def test_cancel_closes_the_local_jobs_of_a_run_killed_while_waiting():
    registry = RunRegistry()
    record, lock = registry.create("eval", "intents", ["agent", "eval", "intents"], "/tmp", {})
    record.status = "running"
    record.ibm_jobs = [{"job_id": "j1", "key": "k", "backend": "ibm:fake_lagos,shots=64", "status": "RUNNING"},
                       {"job_id": "j0", "key": "k0", "backend": "ibm:fake_lagos,shots=64", "status": "DONE"}]
    registry.save(record)
    lock.release()  # the process was SIGKILLed inside a long local simulation
    assert jobs("cancel", record.id).exit_code == 0
    assert [job["status"] for job in registry.load(record.id).ibm_jobs] == ["CANCELLED", "DONE"]


def test_logs_render_progress_bars_as_their_last_state():
    run_id = recorded()
    path = RunRegistry().path(run_id) / "run.log"
    path.write_text("start\n\r 10%|#  |\r 50%|#####|\rdone 100%\n\r 1/2\r    \rafter\n\r       \n", encoding="utf-8")
    assert jobs("logs", run_id, "--follow").output.splitlines() == ["start", "done 100%", "after"]
