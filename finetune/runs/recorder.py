"""A run in progress: its status, progress, log and IBM job ids, kept up to date in its record.

``with run_record(...) as run:`` marks the run ``running``, copies everything printed to the
run's log file, turns SIGTERM (``agent jobs cancel``) into a clean ``cancelled``, and makes the
run the ledger IBM Runtime jobs are recorded in. It ends the run as ``succeeded``, ``failed``
(with the error's one-line message) or ``cancelled`` (Ctrl-C, SIGTERM). ``run.training_hooks()``
gives a :class:`~finetune.training.trainer.Trainer` its progress callback and checkpoint settings.

Bookkeeping never kills a run: when the record cannot be written (the run folder was deleted,
the disk is full) the run says so once on stderr and goes on.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import typer

from finetune.errors import RunCancelled
from finetune.quantum.jobs import UNUSABLE, recording_jobs
from finetune.runs.lock import RunLock
from finetune.runs.registry import CHECKPOINTS, LOG, RunError, RunRecord, RunRegistry, now

# Progress is written at most this often (seconds); checkpoints, epochs and jobs at once.
SAVE_INTERVAL = 1.0
DEFAULT_CHECKPOINT_EVERY = 50


class ActiveRun:
    """The run this process is running (see the module docstring).

    Args:
        registry: Where the record lives.
        record: The run's record (already saved once).
        lock: The run's lock, held by this process.
        checkpoint_every: Training checkpoints every this many steps (and at epoch ends).
    """

    def __init__(self, registry: RunRegistry, record: RunRecord, lock: RunLock,
                 checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY) -> None:
        self.registry = registry
        self.record = record
        self.lock = lock
        self.checkpoint_every = checkpoint_every
        self.dir = registry.path(record.id)
        self.lost = False  # the run folder was deleted: stop writing the record
        self._save_failed = False
        self._last_save = 0.0
        self._clock: tuple[float, int] | None = None  # (time, step) of this attempt's first step
        self._log: TextIO | None = None

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def log_path(self) -> Path:
        return self.dir / LOG

    @property
    def resume_point(self) -> Path | None:
        """The last good training checkpoint of an earlier attempt, if any."""
        if self.record.checkpoint and (self.dir / self.record.checkpoint).is_file():
            return self.dir / self.record.checkpoint
        return None

    def training_hooks(self) -> dict[str, Any]:
        """``callbacks`` and ``checkpointing`` for a :class:`~finetune.training.trainer.Trainer` (or the
        training functions that build one): progress into the record, checkpoints into the run folder,
        resuming from the last checkpoint when an earlier attempt left one."""
        from finetune.training.trainer import Checkpointing

        checkpointing = Checkpointing(self.dir / CHECKPOINTS, every_steps=self.checkpoint_every,
                                      resume_from=self.resume_point)
        return {"callbacks": [self], "checkpointing": checkpointing}

    # --- the record ------------------------------------------------------------------------

    def save(self, force: bool = True) -> None:
        """Write the record (``force=False``: unless written in the last :data:`SAVE_INTERVAL` s)."""
        if self.lost or (not force and time.monotonic() - self._last_save < SAVE_INTERVAL):
            return
        try:
            self.registry.save(self.record)
        except OSError as exc:
            if not self.dir.is_dir():
                self.lost = True
                self.say(f"warning: run folder {self.dir} was deleted; run {self.id} goes on without a record")
            elif not self._save_failed:
                self.say(f"warning: could not update the record of run {self.id} ({exc.strerror or exc}); "
                         "the run goes on")
            self._save_failed = True
            return
        self._save_failed = False
        self._last_save = time.monotonic()

    def start(self) -> None:
        record = self.record
        resumed = bool(record.attempts)
        record.status, record.pid, record.error = "running", os.getpid(), None
        # A detached run leads its own session; its process group is what a cancel signals.
        record.pgid = os.getpgid(0) if os.getsid(0) == os.getpid() else None
        record.started_at = record.started_at or now()
        record.ended_at = None
        checkpoint = self.resume_point
        record.attempts.append({"started_at": now(), "pid": os.getpid(), "status": "running",
                                "resumed_from_step": record.progress.get("checkpoint_step") if checkpoint else None})
        self.save()
        what = "resumed" if resumed else "started"
        where = f" from the checkpoint at step {record.progress.get('checkpoint_step')}" if checkpoint else ""
        self.note(f"run {record.id} {what}{where} (pid {os.getpid()}): {' '.join(record.command)}")

    def finish(self, status: str, *, error: str | None = None, metrics: dict[str, Any] | None = None,
               artifacts: dict[str, str] | None = None) -> None:
        """End the run with ``status`` (``succeeded``, ``failed`` or ``cancelled``)."""
        record = self.record
        record.status, record.error, record.ended_at = status, error, now()
        if metrics is not None:
            record.metrics = metrics
        if artifacts is not None:
            record.artifacts = artifacts
        if record.attempts:
            record.attempts[-1].update(status=status, ended_at=record.ended_at)
        if status == "succeeded":
            record.progress.pop("eta_seconds", None)
        self.save()
        self.note(f"run {record.id} {status}" + (f": {error}" if error else ""))

    def cancelled_line(self) -> str:
        """What a cancelled run tells the user: where its last checkpoint is and how to go on."""
        checkpoint = self.resume_point
        where = (f"last checkpoint (step {self.record.progress.get('checkpoint_step')}) at {checkpoint}"
                 if checkpoint is not None else "no checkpoint was saved")
        return f"run {self.id} cancelled (SIGTERM); {where}; continue with `agent jobs resume {self.id}`"

    # --- messages --------------------------------------------------------------------------

    def note(self, message: str) -> None:
        """A line for the log file only (the terminal has its progress bar)."""
        if self._log is not None:
            # "\r" first: a progress bar may be mid-line, and readers of the log keep what follows
            # a line's last "\r" (as a terminal shows it), so the note replaces the bar's state.
            self._log.write(f"\r[{time.strftime('%H:%M:%S')}] {message}\n")
            self._log.flush()

    def say(self, message: str) -> None:
        """A line for the user on stderr (and so, through the tee, in the log)."""
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

    # --- finetune.training.trainer.TrainerCallback --------------------------------------------------------------

    def on_step(self, epoch: int, step: int, total_steps: int) -> None:
        if self._clock is None:
            self._clock = (time.monotonic(), step - 1)
        started, first = self._clock
        rate = (time.monotonic() - started) / max(1, step - first)
        self.record.progress.update(epoch=epoch, epochs=self.record.config.get("epochs"), step=step,
                                    total_steps=total_steps, eta_seconds=round(rate * (total_steps - step), 1))
        self.save(force=False)

    def on_epoch_end(self, record: dict[str, float]) -> None:
        self.record.progress["last_epoch"] = {key: value for key, value in record.items() if key != "seconds"}
        self.save()
        validation = (f", validation loss {record['val_loss']:.4f}, validation score {record['val_score']:.4f}"
                      if "val_score" in record else " (no validation data)")
        self.note(f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}{validation}")

    def on_checkpoint(self, step: int, path: Path, error: OSError | None) -> None:
        if error is None:
            self.record.checkpoint = str(path.relative_to(self.dir)) if path.is_relative_to(self.dir) else str(path)
            self.record.progress["checkpoint_step"] = step
            self.record.progress.pop("checkpoint_error", None)
        else:
            self.record.progress["checkpoint_error"] = f"step {step}: {error.strerror or error}"
        self.save()

    # --- JobLedger (finetune.quantum.jobs) -------------------------------------------------

    def find(self, key: str) -> str | None:
        for job in reversed(self.record.ibm_jobs):
            if job.get("key") == key and job.get("status") not in UNUSABLE:
                return job["job_id"]
        return None

    def submitted(self, key: str, job_id: str, backend: str) -> None:
        self.record.ibm_jobs.append({"job_id": job_id, "key": key, "backend": backend, "status": "SUBMITTED",
                                     "submitted_at": now(), "attempt": len(self.record.attempts)})
        self.save()  # before anyone waits on the job: a killed run must find it on resume

    def updated(self, job_id: str, status: str, *, reused: bool = False) -> None:
        for job in self.record.ibm_jobs:
            if job["job_id"] == job_id:
                job.update(status=status, updated_at=now())
        if reused:
            self.say(f"IBM job {job_id}: {status} (submitted by an earlier attempt; fetching its result "
                     "instead of submitting it again)")
        self.save()

    # --- process plumbing ------------------------------------------------------------------

    @contextmanager
    def logging(self) -> Iterator[None]:
        """Open the log; copy stdout and stderr into it unless they already go there (detached)."""
        tees = not _writes_to(sys.stdout, self.log_path)
        saved = sys.stdout, sys.stderr
        if tees:
            self._log = open(self.log_path, "a", encoding="utf-8", errors="replace", buffering=1)
            sys.stdout, sys.stderr = _Tee(sys.stdout, self._log), _Tee(sys.stderr, self._log)
        else:  # a detached run: stderr is the log; writing notes there keeps them in order
            self._log = sys.stderr
        try:
            yield
        finally:
            if tees:
                sys.stdout, sys.stderr = saved
                self._log.close()
            self._log = None


@contextmanager
def run_record(
    kind: str,
    task: str,
    command: list[str],
    config: dict[str, Any],
    *,
    backend: str | None = None,
    cwd: str | None = None,
    registry: RunRegistry | None = None,
    run_id: str | None = None,
    lock: RunLock | None = None,
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
) -> Iterator[ActiveRun]:
    """Record a run for the length of the ``with`` block (see the module docstring).

    Args:
        kind, task, command, config, backend, cwd: What the record says about a new run.
        registry: Where records live (default: ``$QAGENT_RUNS_DIR`` / ``$QAGENT_HOME/runs``).
        run_id: Continue this existing run (a resume or a detached start) instead of a new one.
        lock: The run's lock when a launcher already holds it for us.
        checkpoint_every: Training checkpoint interval in steps.

    Raises:
        RunBusyError: ``run_id`` is running in another process.
    """
    registry = registry or RunRegistry()
    if run_id is None:
        record, lock = registry.create(kind, task, command, cwd or os.getcwd(), config, backend)
    else:
        record = registry.load(run_id)
        if (record.kind, record.task) != (kind, task):
            raise RunError(f"run {record.id} is `agent {record.kind} {record.task}`, not `agent {kind} {task}`")
        if lock is None:
            lock = registry.lock(record.id)
            if not lock.acquire():
                raise registry.busy_error(record.id)
    run = ActiveRun(registry, record, lock, checkpoint_every)
    try:
        with run.logging(), _sigterm_cancels(), recording_jobs(run):
            run.start()
            try:
                yield run
            except RunCancelled:
                run.finish("cancelled", error="cancelled (SIGTERM, e.g. `agent jobs cancel`)")
                raise RunCancelled(run.cancelled_line()) from None
            except KeyboardInterrupt:
                run.finish("cancelled", error="interrupted (Ctrl-C)")
                raise
            except (SystemExit, typer.Exit) as exc:  # an exit code, from sys.exit or typer.Exit
                code = exc.exit_code if isinstance(exc, typer.Exit) else exc.code
                code = code if isinstance(code, int) else (0 if code is None else 1)
                if run.record.active:
                    run.finish("succeeded" if code == 0 else "failed", error=None if code == 0 else f"exit code {code}")
                raise
            except typer.Abort:
                run.finish("cancelled", error="aborted")
                raise
            except BaseException as exc:
                from finetune.errors import describe_error as describe

                run.finish("failed", error=describe(exc))
                raise
            if run.record.active:
                run.finish("succeeded")
    finally:
        lock.release()


@contextmanager
def _sigterm_cancels() -> Iterator[None]:
    """SIGTERM raises :class:`RunCancelled` in the main thread (where signals are handled)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise RunCancelled()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _writes_to(stream: Any, path: Path) -> bool:
    """Whether ``stream`` is a file descriptor onto ``path`` (a detached run's stdout)."""
    try:
        return os.path.samestat(os.fstat(stream.fileno()), os.stat(path))
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        return False


class _Tee(io.TextIOBase):
    """Writes to the terminal stream and the log; looks like the terminal to everyone else
    (``isatty``, ``encoding``), so progress bars and colours behave as without it."""

    def __init__(self, stream: TextIO, log: TextIO) -> None:
        self.stream = stream
        self.log = log

    def write(self, text: str) -> int:
        self.stream.write(text)
        if not self.log.closed:
            self.log.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        if not self.log.closed:
            self.log.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True
