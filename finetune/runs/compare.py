"""Runs side by side: their settings and metrics as rows, one column per run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from finetune.runs.registry import RunRecord

# The metric a run is known by in `agent jobs list`, first found wins.
HEADLINE = ("val_macro_f1", "val_entity_f1", "macro_f1", "micro.f1", "accuracy")
# Settings that say nothing about the model (where output went, how it was shown).
_NOT_SETTINGS = ("json_output", "out", "checkpoint_every", "threads")


def headline(record: RunRecord) -> tuple[str, float] | None:
    """The run's main metric as ``(name, value)``, if it has one."""
    for name in HEADLINE:
        if name in record.metrics:
            return name, record.metrics[name]
    return None


def duration_seconds(record: RunRecord) -> float | None:
    """Wall time from the first start to the end (or to now, while it runs)."""
    if not record.started_at:
        return None
    end = datetime.fromisoformat(record.ended_at) if record.ended_at else datetime.now().astimezone()
    return (end - datetime.fromisoformat(record.started_at)).total_seconds()


def compare_runs(records: list[RunRecord], *, all_settings: bool = False) -> dict[str, Any]:
    """A table of ``records`` side by side.

    Args:
        records: The runs, in column order.
        all_settings: Every setting, not only those that differ between the runs.

    Returns:
        ``{"runs": [ids], "overview": {row: [value per run]}, "settings": {…}, "metrics": {…}}``;
        a run without a value for a row has None there.
    """
    overview = {
        "command": [f"{r.kind} {r.task}" for r in records],
        "status": [r.status for r in records],
        "backend": [r.backend for r in records],
        "seconds": [_round(duration_seconds(r)) for r in records],
    }
    settings: dict[str, list[Any]] = {}
    for name in _union(r.config for r in records):
        if name in _NOT_SETTINGS or name == "backend":
            continue
        values = [r.config.get(name) for r in records]
        if all_settings or len({repr(v) for v in values}) > 1:
            settings[name] = values
    metrics = {name: [r.metrics.get(name) for r in records] for name in _union(r.metrics for r in records)}
    return {"runs": [r.id for r in records], "overview": overview, "settings": settings, "metrics": metrics}


def _union(dicts) -> list[str]:
    names: dict[str, None] = {}
    for d in dicts:
        names.update(dict.fromkeys(d))
    return list(names)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
