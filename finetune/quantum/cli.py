"""``agent backends``: what quantum backends this machine can use.

The root CLI mounts :data:`app` as ``backends``; ``agent backends list [--json]`` prints one row
per backend spec: ``exact``, ``aer``, ``aer:shots=1024``, ``aer:noise=<fake>`` for every fake IBM
device, and the real IBM devices when an account is configured.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from finetune.quantum.device import BackendConfigError, fake_devices

app = typer.Typer(help="Quantum backends for the quantum heads.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Quantum backends for the quantum heads."""
    # A callback keeps `list` a sub-command: typer would otherwise run a lone command directly.


def backend_rows(include_ibm: bool = True) -> tuple[list[dict[str, Any]], str | None]:
    """Rows ``{spec, kind, qubits, description}`` and a note when IBM is not available."""
    rows = [
        _row("exact", None, "torch statevector, exact gradients"),
        _row("aer", None, "Aer, exact expectation values"),
        _row("aer:shots=1024", None, "Aer, 1024 shots"),
    ]
    for name, qubits in sorted(fake_devices().items()):
        rows.append(_row(f"aer:noise={name}", qubits, "Aer with the noise of a fake IBM device"))
    note = None
    if include_ibm:
        from finetune.quantum.ibm import list_ibm_devices

        try:
            for device in list_ibm_devices():
                rows.append(_row(f"ibm:{device['name']}", device["qubits"], "IBM Quantum device"))
        except BackendConfigError as exc:
            note = str(exc)
    return rows, note


def _row(spec: str, qubits: int | None, description: str) -> dict[str, Any]:
    return {"spec": spec, "kind": spec.split(":")[0], "qubits": qubits, "description": description}


@app.command("list")
def list_backends(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    ibm: Annotated[bool, typer.Option(help="Ask IBM Quantum for its devices (needs an account).")] = True,
) -> None:
    """List the backend specs that ``--backend`` accepts."""
    try:
        rows, note = backend_rows(include_ibm=ibm)
    except Exception as exc:  # one line and exit 1: a traceback helps no CLI user here
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({"backends": rows, "ibm_note": note}, indent=2))
        return
    width = max(len(row["spec"]) for row in rows)
    for row in rows:
        qubits = "" if row["qubits"] is None else f"{row['qubits']:>4} qubits  "
        typer.echo(f"{row['spec']:<{width}}  {qubits}{row['description']}")
    if note:
        typer.echo(note)
