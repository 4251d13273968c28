"""How commands talk to the terminal: one-line errors and JSON output.

Every ``agent`` command is wrapped in :func:`friendly_errors`, so a user sees what went wrong
and how to fix it in one line with exit code 1, never a traceback (Ctrl-C: 130, SIGTERM: 143,
the shells' 128 + signal number). ``QAGENT_DEBUG=1`` brings the traceback back for bug reports.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from finetune.errors import RunCancelled
from finetune.errors import describe_error as describe
from finetune.strict_json import dumps

F = TypeVar("F", bound=Callable[..., Any])
# Exit statuses of a command stopped by a signal: 128 + SIGINT (2) or SIGTERM (15), as shells report them.
INTERRUPTED_EXIT, TERMINATED_EXIT = 130, 143


def friendly_errors(command: F) -> F:
    """Turn exceptions raised by ``command`` into one line on stderr and exit code 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(INTERRUPTED_EXIT) from None
        except RunCancelled as exc:  # SIGTERM during a recorded run (agent jobs cancel)
            typer.echo(str(exc) or "cancelled (SIGTERM)", err=True)
            raise typer.Exit(TERMINATED_EXIT) from None
        except Exception as exc:  # the whole point: nothing escapes as a traceback
            if os.environ.get("QAGENT_DEBUG"):
                raise
            typer.echo(f"error: {describe(exc)}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (numpy scalars and paths become plain values; NaN
    and infinity become null, which every JSON parser reads)."""
    sys.stdout.write(dumps(data, indent=2, default=_plain, ensure_ascii=False) + "\n")


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
