"""``@tracked_run("finetune")``: a typer command whose every invocation is a recorded run.

The decorator adds ``--detach`` (and, for training commands, ``--checkpoint-every``) to the
command, records the run (:func:`~finetune.runs.recorder.run_record`) around the command's body,
and stores what the command returns (its summary or report) as the run's metrics and artifacts.
A training command passes ``**training_hooks(ctx)`` on to its trainer, so progress and
checkpoints land in the run::

    @app.command("intents")
    @friendly_errors
    @tracked_run("finetune", checkpoints=True)
    def intents(ctx: typer.Context, ...) -> dict:
        ...
        train_classifier(..., **training_hooks(ctx))
        return summary

The same command is what ``--detach`` and ``agent jobs resume`` start in a child process; the
environment variables of :mod:`finetune.runs.launch` tell it which run to continue.
"""

from __future__ import annotations

import functools
import inspect
import os
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from finetune.runs.launch import ENV_LOCK_FD, ENV_RUN_ID, launch
from finetune.runs.lock import RunLock
from finetune.runs.recorder import DEFAULT_CHECKPOINT_EVERY, ActiveRun, run_record
from finetune.runs.registry import LOCK, RunRegistry

F = TypeVar("F", bound=Callable[..., Any])
RUN_KEY = "qagent.run"  # where the active run sits in the typer context's ``meta``
_CTX = "run_context"

DetachOption = Annotated[bool, typer.Option(
    "--detach", help="Run in the background (survives closing the terminal); follow it with `agent jobs`.")]
CheckpointEveryOption = Annotated[int, typer.Option(
    min=0, help="Save a resumable checkpoint every N training steps, and at every epoch end (0: epoch ends only).")]
# Values that are results but not metrics to compare.
_NOT_METRICS = ("history", "per_class", "files", "confusion_matrix", "confusion_labels")


def tracked_run(kind: str, *, checkpoints: bool = False) -> Callable[[F], F]:
    """Make a typer command a recorded run (see the module docstring).

    Args:
        kind: ``finetune`` or ``eval``: the command group, as in ``agent finetune intents``.
        checkpoints: Add ``--checkpoint-every`` (training commands).
    """

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        hints = typing.get_type_hints(command, include_extras=True)
        # The run needs the typer context (the command's name and parsed options); typer hands it
        # to the parameter annotated typer.Context, which the command may not have of its own.
        own_ctx = next((name for name, hint in hints.items() if hint is typer.Context), None)
        keyword = inspect.Parameter.KEYWORD_ONLY
        extra = [inspect.Parameter("detach", keyword, default=False, annotation=DetachOption)]
        if checkpoints:
            extra.append(inspect.Parameter("checkpoint_every", keyword, default=DEFAULT_CHECKPOINT_EVERY,
                                           annotation=CheckpointEveryOption))
        if own_ctx is None:
            extra.append(inspect.Parameter(_CTX, keyword, annotation=typer.Context))

        @functools.wraps(command)
        def wrapper(*args: Any, detach: bool = False, checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
                    **kwargs: Any) -> Any:
            ctx = kwargs[own_ctx] if own_ctx is not None else kwargs.pop(_CTX)
            return _run(kind, command, ctx, args, kwargs, detach=detach, checkpoint_every=checkpoint_every)

        # typer reads the options from the signature: the command's own, plus ours.
        wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *extra])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {**hints, **{param.name: param.annotation for param in extra}}
        return wrapper  # type: ignore[return-value]

    return decorate


def training_hooks(ctx: typer.Context) -> dict[str, Any]:
    """``callbacks`` and ``checkpointing`` for the trainer of the run in progress ({} outside one)."""
    run: ActiveRun | None = ctx.meta.get(RUN_KEY)
    return run.training_hooks() if run is not None else {}


def command_argv(ctx: typer.Context, prefix: Sequence[str], skip: Sequence[str] = ("detach",)) -> list[str]:
    """The command as argv with every option spelled out (defaults included), ``prefix`` first."""
    # Spelled from the command's own name: test runners and `python -m` name the program differently.
    parts = [*prefix, ctx.info_name or ctx.command.name or ""]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or param.name in skip:
            continue
        # Duck-typed: typer's options need not subclass the installed click's classes.
        if param.param_type_name == "argument":
            parts += [str(item) for item in (value if isinstance(value, (list, tuple)) else [value])]
            continue
        if param.is_flag:
            if param.secondary_opts:
                parts.append(param.opts[0] if value else param.secondary_opts[0])
            elif value:
                parts.append(param.opts[0])
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:
            parts += [param.opts[0], str(item)]
    return parts


def _run(kind: str, command: Callable[..., Any], ctx: typer.Context, args: tuple, kwargs: dict[str, Any], *,
         detach: bool, checkpoint_every: int) -> Any:
    task = ctx.info_name or ctx.command.name or ""
    argv = command_argv(ctx, ("agent", kind))
    config = {name: _plain(value) for name, value in ctx.params.items() if name != "detach"}
    backend = config.get("backend") or "exact"
    registry = RunRegistry()
    # Set by a launcher (detached start, resume) for this process alone, not for what it starts.
    run_id, lock_fd = os.environ.pop(ENV_RUN_ID, None), os.environ.pop(ENV_LOCK_FD, None)
    if detach and run_id is None:
        record, lock = registry.create(kind, task, argv, os.getcwd(), config, backend)
        child = launch(registry, record, lock, detach=True)
        _echo_started(record.id, child.pid, json_output=bool(ctx.params.get("json_output")))
        return None
    lock = None
    if run_id is not None and lock_fd is not None:
        lock = RunLock.adopt(registry.path(run_id) / LOCK, int(lock_fd))
    elif run_id is None:
        try:
            record, lock = registry.create(kind, task, argv, os.getcwd(), config, backend)
        except OSError as exc:  # a read-only or full home must not stop the work itself
            typer.echo(f"warning: cannot record this run in {registry.root} ({exc.strerror or exc}); "
                       "it runs without a record", err=True)
            return command(*args, **kwargs)
        run_id = record.id
    with run_record(kind, task, argv, config, backend=backend, registry=registry, run_id=run_id, lock=lock,
                    checkpoint_every=checkpoint_every) as run:
        ctx.meta[RUN_KEY] = run
        result = command(*args, **kwargs)
        if isinstance(result, dict):
            run.finish("succeeded", metrics=metrics_of(result), artifacts=_artifacts(kind, result))
    return result


def metrics_of(result: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a command's summary or report, nested keys joined with dots."""
    metrics: dict[str, float] = {}
    for key, value in result.items():
        if key in _NOT_METRICS:
            continue
        if isinstance(value, dict):
            metrics.update(metrics_of(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[prefix + key] = value
    return metrics


def _artifacts(kind: str, result: dict[str, Any]) -> dict[str, str]:
    files = {name: os.path.abspath(path) for name, path in (result.get("files") or {}).items()}
    if kind == "finetune" and result.get("model"):
        model = Path(result["model"])
        files["model"] = os.path.abspath(model)
        if (model / "tensorboard").is_dir():
            files["tensorboard"] = os.path.abspath(model / "tensorboard")
    return files


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _echo_started(run_id: str, pid: int, *, json_output: bool) -> None:
    if json_output:
        from finetune.cli.console import echo_json

        echo_json({"run": run_id, "pid": pid, "status": "queued"})
        return
    typer.echo(f"started run {run_id} in the background (pid {pid})")
    typer.echo(f"  progress: agent jobs show {run_id}")
    typer.echo(f"  log:      agent jobs logs {run_id} --follow")
