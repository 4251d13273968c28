"""Runs as text for the terminal: the list table, one run in full, comparisons, logs."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from finetune.runs.compare import duration_seconds, headline
from finetune.runs.registry import RunRecord


def format_runs(rows: list[RunRecord | tuple[str, str]]) -> str:
    """One line per run; ``(run_id, error)`` rows are runs whose record cannot be read."""
    table = [("RUN", "STATUS", "PROGRESS", "BACKEND", "STARTED", "RESULT")]
    for row in rows:
        if isinstance(row, tuple):
            table.append((row[0], "corrupt", row[1], "", "", ""))
            continue
        metric = headline(row)
        result = f"{metric[0]} {_number(metric[1])}" if metric else _shorten(row.error or "", 60)
        table.append((row.id, row.status, progress_text(row), row.backend or "", when(row.started_at or row.created_at),
                      result))
    return _columns(table)


def progress_text(record: RunRecord) -> str:
    """``epoch 2/30, step 120/900, ETA 3m10s`` while running; the duration or error otherwise."""
    p = record.progress
    if record.status == "queued":
        return "waiting to start"
    if record.status == "running":
        if "step" not in p:
            return "starting" if not record.ibm_jobs else f"{len(record.ibm_jobs)} IBM job(s)"
        text = f"epoch {p.get('epoch')}/{p.get('epochs') or '?'}, step {p['step']}/{p.get('total_steps')}"
        return text + (f", ETA {span(p['eta_seconds'])}" if p.get("eta_seconds") is not None else "")
    if record.status == "succeeded":
        seconds = duration_seconds(record)
        return f"done in {span(seconds)}" if seconds is not None else "done"
    if "step" in p:
        return f"stopped at epoch {p.get('epoch')}/{p.get('epochs') or '?'}, step {p['step']}/{p.get('total_steps')}"
    return "stopped before training" if record.kind == "finetune" else "stopped"


def format_run(record: RunRecord, *, alive: bool) -> str:
    """Everything about one run, a field per line."""
    status = record.status
    if record.pid and record.status in ("queued", "running"):
        status += f" (pid {record.pid}{', detached' if record.detached else ''}{'' if alive else ', not alive'})"
    lines = [
        ("run", record.id),
        ("status", status),
        ("command", " ".join(record.command)),
        ("folder", record.cwd),
        ("backend", record.backend or ""),
        ("created", when(record.created_at)),
        ("started", when(record.started_at)),
        ("ended", when(record.ended_at)),
        ("progress", progress_text(record)),
    ]
    if record.progress.get("checkpoint_step") is not None:
        lines.append(("checkpoint", f"step {record.progress['checkpoint_step']} ({record.checkpoint})"))
    if record.progress.get("checkpoint_error"):
        lines.append(("checkpoint error", record.progress["checkpoint_error"]))
    if record.error:
        lines.append(("error", record.error))
    for name, value in record.metrics.items():
        lines.append((f"metric {name}", _number(value)))
    for name, path in record.artifacts.items():
        lines.append((name, path))
    if record.ibm_jobs:
        counts = Counter(job.get("status", "?") for job in record.ibm_jobs)
        lines.append(("ibm jobs", f"{len(record.ibm_jobs)} ({', '.join(f'{n} {s}' for s, n in counts.items())})"))
        for job in record.ibm_jobs[-10:]:
            lines.append(("", f"{job['job_id']}  {job.get('status', '?'):<9}  {job.get('backend', '')}  "
                              f"submitted {when(job.get('submitted_at'))}"))
    if len(record.attempts) > 1:
        for number, attempt in enumerate(record.attempts, 1):
            start = attempt.get("resumed_from_step")
            lines.append((f"attempt {number}", f"{attempt.get('status')}, pid {attempt.get('pid')}, "
                                               f"{when(attempt.get('started_at'))}"
                                               + (f", resumed from step {start}" if start is not None else "")))
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name:<{width}}  {value}".rstrip() for name, value in lines)


def format_comparison(table: dict[str, Any]) -> str:
    """A :func:`~finetune.runs.compare.compare_runs` table, one column per run."""
    header = ["", *(_label(run_id) for run_id in table["runs"])]
    rows: list[tuple[str, ...]] = [tuple(header)]
    for section in ("overview", "settings", "metrics"):
        if not table[section]:
            continue
        if section != "overview":
            rows.append((f"-- {section}",) + ("",) * (len(header) - 1))
        for name, values in table[section].items():
            # Metrics to 4 decimals; settings as given (a learning rate of 1e-05 must not read 0.0000).
            rows.append((name, *(_cell(v, rounded=section == "metrics") for v in values)))
    if not table["settings"]:
        rows.append(("-- settings: all the same (--all shows them)",) + ("",) * (len(header) - 1))
    return _columns(rows)


def render_log_lines(data: str) -> list[str]:
    """Log text as a reader wants it: a progress bar's ``\\r`` redraws reduced to their last state,
    lines that were only progress bars (cleared at the end) dropped."""
    lines = []
    for raw in data.split("\n"):
        if "\r" in raw:
            raw = raw.rsplit("\r", 1)[1]
            if not raw.strip():
                continue
        lines.append(raw)
    return lines


def when(stamp: str | None) -> str:
    """An ISO time as local ``YYYY-MM-DD HH:MM:SS``."""
    if not stamp:
        return ""
    return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def span(seconds: float | None) -> str:
    """``45s``, ``3m10s``, ``2h05m``."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _label(run_id: str) -> str:
    # Ids start with the date and time; the rest (kind, task, suffix) tells columns apart.
    parts = run_id.split("-", 2)
    return parts[2] if len(parts) == 3 else run_id


def _cell(value: Any, rounded: bool) -> str:
    if value is None:
        return "-"
    return _number(value) if rounded else str(value)


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _columns(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
