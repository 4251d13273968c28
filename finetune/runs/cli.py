"""``agent jobs …``: see, follow, stop, resume and compare recorded runs.

The root CLI mounts :data:`app` as ``jobs``. Every command takes a run id, a unique prefix or
suffix of one, or ``latest``.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from finetune.cli.console import echo_json, friendly_errors
from finetune.runs.registry import LOG, STATUSES, RunCorruptError, RunError, RunRecord, RunRegistry

app = typer.Typer(no_args_is_help=True, help="Recorded fine-tuning and evaluation runs.")

RunId = Annotated[str, typer.Argument(help="Run id, a unique prefix or suffix of one, or 'latest'.")]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print JSON.")]
FOLLOW_POLL_SECONDS = 0.5


@app.command("list")
@friendly_errors
def list_runs(
    status: Annotated[list[str] | None, typer.Option(help=f"Only runs with this status ({', '.join(STATUSES)}); repeat or comma-separate.")] = None,
    json_output: JsonOutput = False,
) -> None:
    """All runs, oldest first: status, progress, backend, main metric."""
    from finetune.runs.render import format_runs

    wanted = {part.strip() for item in status or [] for part in item.split(",") if part.strip()}
    unknown = wanted - set(STATUSES) - {"corrupt"}
    if unknown:
        raise typer.BadParameter(f"unknown status {', '.join(sorted(unknown))}; valid: {', '.join(STATUSES)}")
    registry = RunRegistry()
    rows: list[RunRecord | tuple[str, str]] = []
    for run_id in registry.ids():
        try:
            row: RunRecord | tuple[str, str] = registry.reconcile(registry.load(run_id))
        except RunCorruptError as exc:
            row = (run_id, str(exc))
        except RunError:
            continue  # deleted while we looked
        if not wanted or (row.status if isinstance(row, RunRecord) else "corrupt") in wanted:
            rows.append(row)
    if json_output:
        echo_json([row.to_dict() if isinstance(row, RunRecord) else {"id": row[0], "status": "corrupt", "error": row[1]}
                   for row in rows])
    elif rows:
        typer.echo(format_runs(rows))
    else:
        typer.echo(f"no runs{' with status ' + ', '.join(sorted(wanted)) if wanted else ''} in {registry.root}")


@app.command("show")
@friendly_errors
def show(run: RunId, json_output: JsonOutput = False) -> None:
    """Everything about one run: command, status, progress, metrics, artifacts, IBM jobs."""
    from finetune.runs.render import format_run

    registry = RunRegistry()
    record = registry.reconcile(registry.load(run))
    if json_output:
        echo_json({**record.to_dict(), "log": str(registry.path(record.id) / LOG)})
        return
    typer.echo(format_run(record, alive=registry.is_alive(record.id)))
    typer.echo(f"{'log':<8}  {registry.path(record.id) / LOG}")


@app.command("logs")
@friendly_errors
def logs(
    run: RunId,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")] = False,
) -> None:
    """Print what the run printed; with --follow, keep going until it ends."""
    from finetune.runs.render import render_log_lines

    registry = RunRegistry()
    record = registry.load(run)
    path = registry.path(record.id) / LOG
    if not path.exists():
        if not (follow and registry.is_alive(record.id)):
            typer.echo(f"run {record.id} has no log yet", err=True)
            return
        while not path.exists() and registry.is_alive(record.id):
            time.sleep(FOLLOW_POLL_SECONDS)
    pending = b""
    with open(path, "rb") as file:
        while True:
            chunk = file.read()
            ended = not chunk and not (follow and registry.is_alive(record.id))
            if ended:
                chunk = file.read()  # what the run wrote just before it ended
            pending += chunk
            complete, _, pending = pending.rpartition(b"\n")
            if complete:
                for line in render_log_lines(complete.decode("utf-8", errors="replace")):
                    typer.echo(line)
            if ended:
                break
            if not chunk:
                time.sleep(FOLLOW_POLL_SECONDS)
    for line in render_log_lines(pending.decode("utf-8", errors="replace")) if pending else []:
        typer.echo(line)


@app.command("cancel")
@friendly_errors
def cancel(
    run: RunId,
    grace: Annotated[float, typer.Option(help="Seconds to wait for a clean stop before killing the process.")] = 30.0,
) -> None:
    """Stop a queued or running run (SIGTERM, then SIGKILL after --grace seconds)."""
    from finetune.runs.launch import cancel as cancel_run

    record = cancel_run(RunRegistry(), run, grace=grace)
    if record.status == "cancelled":
        typer.echo(f"cancelled run {record.id}; resume it with `agent jobs resume {record.id}`")
    else:  # it finished on its own meanwhile
        typer.echo(f"run {record.id} ended {record.status} before it could be cancelled")


@app.command("resume")
@friendly_errors
def resume(
    run: RunId,
    detach: Annotated[bool, typer.Option("--detach", help="Resume in the background.")] = False,
) -> None:
    """Run a failed, cancelled or killed run again from its last checkpoint (IBM jobs it already
    submitted are fetched, not paid for again)."""
    from finetune.runs.launch import launch

    registry = RunRegistry()
    record = registry.reconcile(registry.load(run))
    lock = registry.lock(record.id)
    if not lock.acquire():
        raise registry.busy_error(record.id)
    try:
        record = registry.load(record.id)  # as it is now that no one else can change it
        if record.status == "succeeded":
            raise RunError(f"run {record.id} already succeeded; nothing to resume")
        child = launch(registry, record, lock, detach=detach)
    finally:
        lock.release()
    if detach:
        typer.echo(f"resumed run {record.id} in the background (pid {child.pid}); "
                   f"follow it with `agent jobs logs {record.id} --follow`")
        return
    try:
        code = child.wait()
    except KeyboardInterrupt:  # the child got the same Ctrl-C: let it record itself cancelled
        code = child.wait()
    if code:
        raise typer.Exit(code)


@app.command("compare")
@friendly_errors
def compare(
    runs: Annotated[list[str], typer.Argument(help="Two or more run ids (or unique prefixes/suffixes).")],
    all_settings: Annotated[bool, typer.Option("--all", help="Show every setting, not only those that differ.")] = False,
    json_output: JsonOutput = False,
) -> None:
    """Runs side by side: status, backend, duration, the settings that differ, and every metric."""
    from finetune.runs.compare import compare_runs
    from finetune.runs.render import format_comparison

    if len(runs) < 2:
        raise typer.BadParameter("give two or more run ids to compare")
    registry = RunRegistry()
    table = compare_runs([registry.load(ref) for ref in runs], all_settings=all_settings)
    if json_output:
        echo_json(table)
    else:
        typer.echo(format_comparison(table))
