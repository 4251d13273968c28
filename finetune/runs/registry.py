"""Run records: one folder per ``agent finetune …`` or ``agent eval …`` run.

Records live under ``$QAGENT_RUNS_DIR``, by default ``$QAGENT_HOME/runs`` (``~/.qagent/runs``)::

    <run-id>/record.json      the record, replaced atomically (temp file, then rename) at each update
    <run-id>/run.log          everything the run printed
    <run-id>/lock             held by the run's process while it runs (finetune.runs.lock)
    <run-id>/checkpoints/     the trainer's mid-run checkpoint (finetune.training.train_state)

Run ids sort by start time and name what ran: ``20250612-143015-finetune-intents-3fa2``. Commands
accept an id, any unique prefix or suffix of one (``3fa2``), or ``latest``.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from finetune.runs.lock import RunLock, holder, is_locked

FORMAT = "qagent-run/1"
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running")
RECORD, LOG, LOCK, CHECKPOINTS = "record.json", "run.log", "lock", "checkpoints"


class RunError(Exception):
    """A run that cannot be found, read or started; the message is the one line users see."""


class RunNotFoundError(RunError):
    """No run matches the id given."""


class RunCorruptError(RunError):
    """A run folder whose record is unreadable."""


class RunBusyError(RunError):
    """The run's process is alive (it holds the run's lock)."""


def runs_root() -> Path:
    """``$QAGENT_RUNS_DIR``, else ``$QAGENT_HOME/runs``, else ``~/.qagent/runs``."""
    explicit = os.environ.get("QAGENT_RUNS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("QAGENT_HOME") or Path.home() / ".qagent").expanduser() / "runs"


def now() -> str:
    # Microseconds: runs started within one second still sort by start (see RunRegistry.resolve).
    return datetime.now(timezone.utc).isoformat()


@dataclass
class RunRecord:
    """Everything known about one run.

    Attributes:
        id: The run id (its folder's name).
        kind: ``finetune`` or ``eval``.
        task: ``intents``, ``sentiment`` or ``ner``.
        command: The command line with every option spelled out; ``agent jobs resume`` runs it again.
        cwd: Where it ran (relative paths in ``command`` are relative to it).
        config: Every option's value, defaults included.
        status: One of :data:`STATUSES`.
        backend: Where the circuits ran (``exact``, ``aer:…``, ``ibm:…``).
        pid: The process running it now, or that ran it last.
        pgid: The process group of a detached run (``agent jobs cancel`` signals all of it).
        detached: Started with ``--detach``.
        progress: ``epoch``, ``epochs``, ``step``, ``total_steps``, ``eta_seconds``, ``checkpoint_step``.
        metrics: Scalar results (``val_macro_f1``, ``accuracy``…), flattened with dots.
        artifacts: Paths the run wrote (model directory, report, plots).
        checkpoint: The last good training checkpoint, relative to the run folder.
        ibm_jobs: Every IBM Runtime job submitted: ``job_id``, ``key``, ``backend``, ``status``, times.
        attempts: One entry per start (the first run and each resume): pid, times, status.
        error: Why it failed or was cancelled.
    """

    id: str
    kind: str
    task: str
    command: list[str]
    cwd: str
    config: dict[str, Any]
    status: str = "queued"
    backend: str | None = None
    created_at: str = field(default_factory=now)
    started_at: str | None = None
    ended_at: str | None = None
    updated_at: str | None = None
    pid: int | None = None
    pgid: int | None = None
    detached: bool = False
    progress: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    checkpoint: str | None = None
    ibm_jobs: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    format: str = FORMAT

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {self.status!r}")

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> RunRecord:
        """Raises ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}, expected {FORMAT}")
        known = {f.name for f in fields(cls)}
        missing = [name for name in ("id", "kind", "task", "command", "cwd", "config") if name not in data]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        return cls(**{key: value for key, value in data.items() if key in known})


class RunRegistry:
    """The run folders under ``root`` (default :func:`runs_root`)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else runs_root()

    def path(self, run_id: str) -> Path:
        return self.root / run_id

    def lock(self, run_id: str) -> RunLock:
        return RunLock(self.path(run_id) / LOCK)

    def create(
        self, kind: str, task: str, command: list[str], cwd: str, config: dict[str, Any], backend: str | None = None
    ) -> tuple[RunRecord, RunLock]:
        """A new ``queued`` run, with its lock already held by the caller."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        while True:
            run_id = f"{stamp}-{kind}-{task}-{secrets.token_hex(2)}"
            try:
                self.path(run_id).mkdir()  # exclusive: a clash just draws another suffix
                break
            except FileExistsError:
                continue
        lock = self.lock(run_id)
        lock.acquire()
        (self.path(run_id) / CHECKPOINTS).mkdir()
        record = RunRecord(id=run_id, kind=kind, task=task, command=list(command), cwd=cwd, config=config,
                           backend=backend)
        self.save(record)
        return record, lock

    def save(self, record: RunRecord) -> None:
        """Replace the record atomically (readers see the old one or the new one, never half).

        Raises:
            FileNotFoundError: The run folder was deleted.
        """
        from finetune.models.checkpoint import write_json  # here: it imports torch, and `agent --help` should not

        record.updated_at = now()
        write_json(self.path(record.id) / RECORD, record.to_dict())

    def ids(self) -> list[str]:
        """Ids of every run folder, oldest first."""
        if not self.root.is_dir():
            return []
        names = [path.name for path in self.root.iterdir() if path.is_dir() and not path.name.startswith(".")]
        # Ids start with their creation second; within one second the record's own time decides.
        return sorted(names, key=lambda name: (name[:15], self._created_at(name)))

    def resolve(self, ref: str) -> str:
        """The id ``ref`` names: an id, a unique prefix or suffix of one, or ``latest``.

        Raises:
            RunNotFoundError: Nothing or several runs match.
        """
        ids = self.ids()
        if ref in ids:
            return ref
        if ref in ("latest", "last") and ids:
            return ids[-1]
        matches = [run_id for run_id in ids if ref and (run_id.startswith(ref) or run_id.endswith(ref))]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise RunNotFoundError(f"{ref!r} matches {len(matches)} runs ({', '.join(matches[:3])}…); give more of the id")
        raise RunNotFoundError(f"no run {ref!r} in {self.root}; `agent jobs list` shows the runs")

    def _created_at(self, run_id: str) -> str:
        try:
            return str(json.loads((self.path(run_id) / RECORD).read_text(encoding="utf-8"))["created_at"])
        except (OSError, ValueError, KeyError, TypeError):
            return ""

    def load(self, ref: str) -> RunRecord:
        """The record of run ``ref`` (see :meth:`resolve`).

        Raises:
            RunNotFoundError: No such run.
            RunCorruptError: Its record is missing or unreadable.
        """
        run_id = self.resolve(ref)
        path = self.path(run_id) / RECORD
        try:
            return RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            if not self.path(run_id).is_dir():
                raise RunNotFoundError(f"run {run_id} was deleted") from None
            raise RunCorruptError(f"run {run_id} has no {RECORD}; remove {self.path(run_id)}") from None
        except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
            detail = " ".join(str(exc).split())
            raise RunCorruptError(
                f"run {run_id}: {RECORD} is corrupted ({detail}); restore it or remove {self.path(run_id)}"
            ) from None

    def is_alive(self, run_id: str) -> bool:
        """Whether a process holds the run's lock (runs it, or is starting it)."""
        return is_locked(self.path(run_id) / LOCK)

    def holder(self, run_id: str) -> int | None:
        return holder(self.path(run_id) / LOCK)

    def busy_error(self, run_id: str) -> RunBusyError:
        """The error for a second start of a run that is running."""
        return RunBusyError(
            f"run {run_id} is already running (pid {self.holder(run_id)}); follow it with "
            f"`agent jobs logs {run_id} --follow` or stop it with `agent jobs cancel {run_id}`"
        )

    def reconcile(self, record: RunRecord) -> RunRecord:
        """A ``queued``/``running`` record whose process is gone becomes ``failed`` (interrupted).

        Only a process that died without a word (SIGKILL, power loss) leaves such a record; the
        check takes the run's lock, so a live run is never touched.
        """
        if not record.active:
            return record
        lock = self.lock(record.id)
        try:
            if not lock.acquire(claim=False):
                return record
        except FileNotFoundError:
            return record
        try:
            fresh = self.load(record.id)
            if fresh.active:
                fresh.status = "failed"
                fresh.ended_at = fresh.ended_at or now()
                fresh.error = (f"interrupted: process {fresh.pid} ended without recording a result (killed, "
                               f"or the machine stopped); `agent jobs resume {fresh.id}` goes on from the last checkpoint")
                if fresh.attempts and fresh.attempts[-1].get("status") in ACTIVE:
                    fresh.attempts[-1].update(status="failed", ended_at=fresh.ended_at)
                try:
                    self.save(fresh)
                except OSError:
                    pass  # read-only or full: the answer is still right for this caller
            return fresh
        finally:
            lock.release()
