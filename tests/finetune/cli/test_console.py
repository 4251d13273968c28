import os
import signal
import time

import pytest
import typer
from typer.testing import CliRunner

from finetune.cli.console import describe, friendly_errors
from finetune.runs.command import tracked_run

app = typer.Typer()


@app.command()
@friendly_errors
def run(kind: str) -> None:
    if kind == "value":
        raise ValueError("shots must be > 0, got -1\nsecond line is dropped")
    if kind == "bug":
        raise KeyError("oops")
    typer.echo("fine")


cancel_app = typer.Typer()


@cancel_app.command()
@friendly_errors
@tracked_run("eval")
def cancelled() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # `agent jobs cancel` during the run
    time.sleep(5)  # interrupted by the signal


def test_errors_become_one_line_and_exit_code_1():
    result = CliRunner().invoke(app, ["value"])
    assert result.exit_code == 1
    assert result.output == "error: shots must be > 0, got -1\n"


def test_unexpected_errors_say_how_to_get_the_traceback(monkeypatch):
    monkeypatch.delenv("QAGENT_DEBUG", raising=False)
    result = CliRunner().invoke(app, ["bug"])
    assert result.exit_code == 1
    assert "unexpected KeyError" in result.output and "QAGENT_DEBUG=1" in result.output


def test_debug_mode_keeps_the_traceback(monkeypatch):
    monkeypatch.setenv("QAGENT_DEBUG", "1")
    result = CliRunner().invoke(app, ["bug"])
    assert isinstance(result.exception, KeyError)


def test_sigterm_prints_one_line_and_exits_143():
    result = CliRunner().invoke(cancel_app, [])
    assert result.exit_code == 143, result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert "cancelled (SIGTERM); no checkpoint was saved; continue with `agent jobs resume" in result.output


def test_success_passes_through():
    assert CliRunner().invoke(app, ["ok"]).output == "fine\n"


def test_describe_keeps_messages_of_our_own_errors():
    assert describe(FileNotFoundError("no such file: x.csv")) == "no such file: x.csv"


def test_echo_json_writes_nan_and_infinity_as_null(capsys):
    import json

    import numpy as np

    from finetune.cli.console import echo_json

    echo_json({"confidence": float("nan"), "scores": np.array([1.0, np.inf]), "top": np.float32("nan"), "n": 3})
    text = capsys.readouterr().out
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON")) == {
        "confidence": None, "scores": [1.0, None], "top": None, "n": 3}
