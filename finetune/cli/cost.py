"""``--dry-run`` and ``--max-qpu-seconds``: the cost of an ``ibm:`` run, checked before it starts.

:func:`guard_cost` wraps a command that takes ``--backend``; the command's ``plan`` says which
head circuit runs how often (:mod:`finetune.quantum.cost` does the estimating). It sits outside
the run tracking, so a dry run or a refused run leaves no run record behind. An ensemble's plan names
each member's head (:func:`model_heads`): every member runs its own circuit on every example.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union

import typer

from finetune.cli.console import echo_json

if TYPE_CHECKING:
    from finetune.models.heads import HeadConfig
    from finetune.quantum.cost import Workload

F = TypeVar("F", bound=Callable[..., Any])
Heads = Union["HeadConfig", Mapping[str, "HeadConfig"]]
# A plan names the head and its workloads, or (an ensemble) those of each member by member path.
Planned = Union["tuple[HeadConfig, list[Workload]]", Mapping[str, "tuple[HeadConfig, list[Workload]]"]]
Plan = Callable[[dict[str, Any]], Planned]
# Click's exit status for usage errors: a refused run is the user's setting, not a failure.
USAGE_EXIT = 2


def guard_cost(plan: Plan) -> Callable[[F], F]:
    """Estimate an ``ibm:`` run's QPU time when ``--dry-run`` or ``--max-qpu-seconds`` asks for it.

    ``--dry-run`` prints the estimate and exits 0 without running; ``--max-qpu-seconds N`` exits
    2 with one line when the estimate exceeds ``N``. Other backends cost no QPU time: the limit
    is then moot, and ``--dry-run`` is a usage error.
    """

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            dry_run, limit = kwargs.get("dry_run", False), kwargs.get("max_qpu_seconds")
            if not dry_run and limit is None:
                return command(*args, **kwargs)
            from finetune.quantum.device import parse_backend

            backend = kwargs.get("backend")
            spec = parse_backend(backend) if backend else None
            if spec is None or spec.kind != "ibm":
                if dry_run:
                    _refuse(f"--dry-run estimates IBM QPU time and needs --backend ibm:<device> "
                            f"(ibm:fake_<device> runs offline), got {backend or 'exact'}")
                return command(*args, **kwargs)
            seconds, text, data = _estimate(spec, plan(kwargs))
            if dry_run:
                echo_json(data) if kwargs.get("json_output") else typer.echo(text)
                raise typer.Exit(0)
            if seconds > limit:
                _refuse(f"estimated {seconds:.0f} QPU seconds on {spec.device} exceed --max-qpu-seconds "
                        f"{limit:g}; see --dry-run, or lower shots or the number of examples")
            typer.echo(f"estimated {seconds:.0f} QPU seconds on {spec.device} (limit {limit:g})", err=True)
            return command(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def model_heads(model_dir: str | Path) -> Heads:
    """The head of a checkpoint, or each member's head of an ensemble folder (by member path)."""
    from finetune.models.checkpoint import load_checkpoint
    from finetune.models.ensemble import is_ensemble, read_record

    if not is_ensemble(model_dir):
        return load_checkpoint(model_dir).head.config
    record = read_record(model_dir)
    return {member: load_checkpoint(record.path / member).head.config for member in record.members}


def _estimate(spec: Any, planned: Planned) -> tuple[float, str, dict[str, Any]]:
    if not isinstance(planned, Mapping):
        return _estimate_head(spec, *planned)
    parts = {member: _estimate_head(spec, *plan) for member, plan in planned.items()}
    seconds = sum(part[0] for part in parts.values())
    if not any(part[2]["circuits"] for part in parts.values()):
        text = f"no member of the ensemble runs a circuit: 0 QPU seconds on {spec.device}"
    else:
        text = "\n\n".join(f"member {member}:\n{part[1]}" for member, part in parts.items())
        text += f"\n\nensemble of {len(parts)} members, each scores every example: {seconds:.1f} s QPU time in all"
    data = {"backend": str(spec), "qpu_seconds": seconds, "jobs": sum(part[2]["jobs"] for part in parts.values()),
            "circuits": [{**circuit, "member": member} for member, part in parts.items() for circuit in part[2]["circuits"]],
            "members": {member: part[2] for member, part in parts.items()}}
    return seconds, text, data


def _estimate_head(spec: Any, head: HeadConfig, workloads: list[Workload]) -> tuple[float, str, dict[str, Any]]:
    if not head.uses_circuit:
        text = f"the {head.kind} head runs no circuit: 0 QPU seconds on {spec.device}"
        return 0.0, text, {"backend": str(spec), "qpu_seconds": 0.0, "jobs": 0, "circuits": []}
    from finetune.quantum.ansatz import build_ansatz
    from finetune.quantum.cost import estimate_cost

    estimate = estimate_cost(spec, build_ansatz(head.ansatz), workloads)
    return estimate.qpu_seconds, estimate.format(), estimate.to_dict()


def _refuse(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(USAGE_EXIT)
