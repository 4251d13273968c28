"""Start a recorded run in another process (``--detach``, ``agent jobs resume``) and stop one.

A run is started again by running its recorded command line (``agent …`` with every option
spelled out) in its recorded folder, with ``QAGENT_RUN_ID`` telling the command to continue that
run instead of making a new one; its training resumes from the run's last checkpoint. The
launcher takes the run's lock first and hands it to the child (``QAGENT_RUN_LOCK_FD``), so no
second launcher can slip in between.

A detached child gets its own session (``start_new_session``): closing the terminal sends it no
SIGHUP, and ``agent jobs cancel`` can signal its whole process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from finetune.quantum.jobs import FINAL, UNUSABLE, RuntimeJobStore
from finetune.runs.lock import RunLock
from finetune.runs.registry import LOG, RunError, RunRecord, RunRegistry, now

ENV_RUN_ID, ENV_LOCK_FD = "QAGENT_RUN_ID", "QAGENT_RUN_LOCK_FD"
# Progress bars redraw many times a second; in a log file one line every few seconds is plenty.
DETACHED_TQDM_INTERVAL = "5"


def agent_argv(command: list[str]) -> list[str]:
    """The recorded ``agent …`` command as this interpreter runs it (``python -m agent …``)."""
    if not command or command[0] != "agent":
        raise RunError(f"cannot re-run {' '.join(command[:3])!r}: not an `agent` command")
    return [sys.executable, "-m", "agent", *command[1:]]


def launch(registry: RunRegistry, record: RunRecord, lock: RunLock, *, detach: bool) -> subprocess.Popen:
    """Run ``record``'s command in a child process that continues the run.

    Args:
        registry: Where the record lives.
        record: The run; saved here as ``queued`` before the child starts.
        lock: The run's lock, held by the caller; the child takes it over and it is released here.
        detach: Background the child (own session, output to the run log) or keep it attached to
            this terminal.
    """
    if lock.fd is None:
        raise RunError(f"run {record.id}: launch needs the run's lock")
    record.status, record.detached, record.error = "queued", detach, None
    registry.save(record)  # before the child starts: from then on only the child writes the record
    env = {**os.environ, ENV_RUN_ID: record.id, ENV_LOCK_FD: str(lock.fd), "PYTHONUNBUFFERED": "1"}
    options: dict = {"stdin": subprocess.DEVNULL} if detach else {}
    log = None
    if detach:
        env.setdefault("TQDM_MININTERVAL", DETACHED_TQDM_INTERVAL)
        log = open(registry.path(record.id) / LOG, "ab")
        options.update(stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        child = subprocess.Popen(agent_argv(record.command), cwd=record.cwd, env=env, pass_fds=(lock.fd,), **options)
    except OSError as exc:
        record.status, record.ended_at = "failed", now()
        record.error = f"could not start the run ({exc.strerror or exc}: {record.cwd})"
        registry.save(record)
        raise RunError(f"run {record.id}: {record.error}") from None
    finally:
        if log is not None:
            log.close()
    lock.claim(child.pid)  # until the child writes its record, the lock file names it
    lock.release()  # the child's copy of the open file keeps the lock held
    if detach:
        # Nobody waits for a detached child; should this process outlive it (a test runner, a
        # notebook), this thread reaps it instead of leaving a zombie behind.
        threading.Thread(target=child.wait, name=f"reap-{record.id}", daemon=True).start()
    return child


def cancel(registry: RunRegistry, ref: str, *, grace: float = 30.0) -> RunRecord:
    """Stop run ``ref``: SIGTERM (the run records itself ``cancelled``), SIGKILL after ``grace``
    seconds; a run whose process is already gone is just marked ``cancelled``.

    Raises:
        RunError: The run already ended.
    """
    record = registry.load(ref)
    if not record.active:
        raise RunError(f"run {record.id} already ended ({record.status}); nothing to cancel")
    if registry.is_alive(record.id):
        pid = registry.holder(record.id) or record.pid
        if pid:
            _signal(pid, signal.SIGTERM, group=record.detached)
            if not _wait_until(lambda: not registry.is_alive(record.id), grace):
                _signal(pid, signal.SIGKILL, group=record.detached)
                _wait_until(lambda: not registry.is_alive(record.id), 10.0)
    lock = registry.lock(record.id)
    if lock.acquire(claim=False):
        try:
            record = registry.load(record.id)
            if record.active:  # killed before it could write anything itself
                record.status, record.ended_at = "cancelled", now()
                record.error = "cancelled (`agent jobs cancel`)"
                if record.attempts:
                    record.attempts[-1].update(status="cancelled", ended_at=record.ended_at)
                for job in record.ibm_jobs:
                    if job.get("status") not in (*FINAL, *UNUSABLE):
                        job.update(status=_cancel_orphan(job), updated_at=now())
                registry.save(record)
        finally:
            lock.release()
    return registry.load(record.id)


def _cancel_orphan(job: dict) -> str:
    """The status of a job whose run was killed while waiting for it: a local simulation died
    with the process; a job on real hardware is cancelled at IBM Runtime, if that can be reached.

    (A run that handles the SIGTERM cancels its job itself; one stuck in native code, e.g. a long
    local simulation holding the GIL, is killed after the grace period and lands here.)
    """
    if ":fake_" in job.get("backend", ""):
        return "CANCELLED"
    try:
        from finetune.quantum.ibm import open_service

        RuntimeJobStore(open_service()).cancel(job["job_id"])
    except Exception:  # noqa: BLE001 - no account or no network: `agent jobs show` keeps the last status
        return job.get("status", "SUBMITTED")
    return "CANCELLED"


def _signal(pid: int, signum: int, *, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, signum)  # a detached run leads its own process group
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()
