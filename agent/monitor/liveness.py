"""Whether the process that started a run is still there (to close the rows of killed runs).

A run's row records its process id, host and, where ``/proc`` exists, the process's start time
(clock ticks since boot), so a process id reused by another program after the run was killed
is not taken for the run.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def this_process() -> tuple[int, str, str | None]:
    """(pid, host, start time or None) of the running process."""
    pid = os.getpid()
    return pid, socket.gethostname(), _start_time(pid)


def process_gone(pid: int | None, host: str | None, start: str | None) -> bool:
    """Whether the process (pid, host, start) has ended. A row without a pid (written before runs
    recorded one) counts as gone; a process on another host is never known to be gone."""
    if pid is None:
        return True
    if host != socket.gethostname():
        return False
    if Path("/proc/self/stat").exists():
        now = _start_time(int(pid))
        return now is None or (start is not None and now != start)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    return False


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces and parentheses
    return fields[19] if len(fields) > 19 else None
