"""IBM Runtime jobs that outlive the process that submitted them.

A job on real hardware can wait in a queue for hours, and is paid for once it runs. So every job
is written down before anyone waits on it, and a resumed run reuses what it finds written down:

- a :class:`JobStore` submits jobs and answers ``status`` and ``result`` by job id
  (:class:`RuntimeJobStore`: the IBM Runtime service; tests hand in a stand-in);
- a :class:`JobLedger` is where job ids are written down: the run record of
  :mod:`finetune.runs`, made active for the length of a run with :func:`recording_jobs`;
- :func:`run_job` ties them together: it looks the job up in the ledger by its key (backend,
  job number, circuit and parameter values), fetches the result of a job an earlier attempt
  already submitted, or submits a new one and records its id *before* waiting on it.

The key holds the job number, so a run that resumes from a checkpoint (which restores each
backend's job count) asks for exactly the jobs it asked for before, in the same order.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

FINAL = ("DONE", "ERROR", "CANCELLED")
# Statuses of a recorded job that a resumed run cannot use: it submits the job again.
UNUSABLE = ("ERROR", "CANCELLED", "NOT_FOUND")
# Status polls while waiting: quick at first (local simulations take well under a second), then
# every few seconds (a queue on real hardware takes minutes to hours).
POLL_FIRST, POLL_MAX = 0.02, 5.0


class JobNotFoundError(LookupError):
    """The store cannot find a job id (e.g. a local simulation job of an earlier process)."""


@runtime_checkable
class JobStore(Protocol):
    """Submits primitive jobs and finds them again by id."""

    def submit(self, primitive: Any, pubs: Sequence[Any]) -> str:
        """Start ``primitive.run(pubs)``; return the job id at once (without waiting)."""
        ...

    def status(self, job_id: str) -> str:
        """``QUEUED``, ``RUNNING``, ``DONE``, ``ERROR``, ``CANCELLED``… (upper case)."""
        ...

    def result(self, job_id: str) -> Any:
        """Wait for the job and return its ``PrimitiveResult``."""
        ...

    def cancel(self, job_id: str) -> None:
        """Ask the service to stop the job (a no-op for finished jobs)."""
        ...


class JobLedger(Protocol):
    """Where a run writes down its jobs (the run record)."""

    def find(self, key: str) -> str | None:
        """The id of a usable job submitted for ``key`` by this run earlier, if any."""
        ...

    def submitted(self, key: str, job_id: str, backend: str) -> None:
        """Record a new job; must be durable when it returns (the caller waits next)."""
        ...

    def updated(self, job_id: str, status: str, *, reused: bool = False) -> None:
        """A job's status changed; ``reused``: an earlier attempt's job is being fetched."""
        ...


_ledger: ContextVar[JobLedger | None] = ContextVar("qagent_job_ledger", default=None)


@contextmanager
def recording_jobs(ledger: JobLedger) -> Iterator[JobLedger]:
    """Make ``ledger`` the one :func:`run_job` records into, inside the ``with`` block.

    A context variable rather than an argument: the backends sit several layers below the
    command that owns the run (head → circuit layer → backend), for training and evaluation alike.
    """
    token = _ledger.set(ledger)
    try:
        yield ledger
    finally:
        _ledger.reset(token)


def active_ledger() -> JobLedger | None:
    """The ledger of the run in progress, or None outside any run."""
    return _ledger.get()


def job_key(backend: str, index: int, circuit: Any, observables: Sequence[Any], values: np.ndarray) -> str:
    """A digest naming one job: same backend, job number, circuit, observables and values."""
    digest = hashlib.sha256()
    for part in (backend, str(index), circuit.name, str(circuit.num_qubits), str(len(circuit.data)),
                 ",".join(str(p) for p in circuit.parameters), ";".join(map(str, observables)), str(values.shape)):
        digest.update(part.encode() + b"\0")
    import numpy as np

    digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return digest.hexdigest()[:32]


def run_job(
    store: JobStore,
    primitive: Any,
    pubs: Sequence[Any],
    *,
    key: str,
    backend: str,
    on_job: Callable[[str], None] | None = None,
) -> Any:
    """The result of the job ``key`` names: an earlier attempt's job if the ledger has one, else a
    new job, recorded before waiting on it.

    A job interrupted while waiting (Ctrl-C, ``agent jobs cancel``) is cancelled at the service,
    so a stopped run leaves nothing queued that no one will read; a run that is killed outright
    cannot do that, and its resume fetches the job instead.
    """
    ledger = active_ledger()
    job_id = ledger.find(key) if ledger is not None else None
    if job_id is not None:
        try:
            status = normalize_status(store.status(job_id))
        except JobNotFoundError:
            status = "NOT_FOUND"
        usable = status not in UNUSABLE
        if ledger is not None:
            ledger.updated(job_id, status, reused=usable)
        if not usable:
            job_id = None  # failed, or not fetchable: pay for it again
    if job_id is None:
        job_id = store.submit(primitive, pubs)
        if ledger is not None:
            ledger.submitted(key, job_id, backend)
        if on_job is not None:
            on_job(job_id)
    try:
        _wait(store, job_id, ledger)
        result = store.result(job_id)
    except BaseException as exc:
        interrupted = not isinstance(exc, Exception)  # Ctrl-C, or SIGTERM turned into an exception
        if interrupted:
            _cancel_quietly(store, job_id)
        if ledger is not None:
            ledger.updated(job_id, "CANCELLED" if interrupted else "ERROR")
        raise
    if ledger is not None:
        ledger.updated(job_id, "DONE")
    return result


def _wait(store: JobStore, job_id: str, ledger: JobLedger | None) -> None:
    """Poll the job's status until it ends, recording each change (QUEUED → RUNNING → DONE).

    Polling in short sleeps, not one blocking ``result()``: a signal that lands on another thread
    (a local simulation runs in one) is only handled once the main thread runs Python code
    again, so a blocking wait would make ``agent jobs cancel`` wait for the whole job.
    """
    delay, last = POLL_FIRST, None
    while True:
        status = normalize_status(store.status(job_id))
        if status != last and ledger is not None:
            ledger.updated(job_id, status)
        last = status
        if status in FINAL:
            return
        time.sleep(delay)
        delay = min(delay * 2, POLL_MAX)


def normalize_status(status: Any) -> str:
    """``JobStatus.DONE`` (local jobs) or ``'DONE'`` (Runtime jobs) as ``'DONE'``."""
    return str(getattr(status, "name", status)).upper()


def _cancel_quietly(store: JobStore, job_id: str) -> None:
    try:
        store.cancel(job_id)
    except Exception:  # noqa: BLE001 - best effort while already unwinding an interruption
        pass


class RuntimeJobStore:
    """Jobs through qiskit-ibm-runtime: those of this process are kept; others are fetched from
    the IBM Runtime service by id.

    Args:
        service: A ``QiskitRuntimeService`` (real devices), or None for local simulation, whose
            jobs live only in the process that ran them.
    """

    def __init__(self, service: Any | None = None) -> None:
        self.service = service
        self._jobs: dict[str, Any] = {}

    def submit(self, primitive: Any, pubs: Sequence[Any]) -> str:
        job = primitive.run(list(pubs))
        self._jobs[job.job_id()] = job
        return job.job_id()

    def job(self, job_id: str) -> Any:
        if job_id in self._jobs:
            return self._jobs[job_id]
        if self.service is None:
            raise JobNotFoundError(f"job {job_id} ran in a local simulation of an earlier process")
        try:
            job = self.service.job(job_id)
        except Exception as exc:
            raise JobNotFoundError(f"IBM Runtime has no job {job_id} for this account ({type(exc).__name__})") from None
        self._jobs[job_id] = job
        return job

    def status(self, job_id: str) -> str:
        return normalize_status(self.job(job_id).status())

    def result(self, job_id: str) -> Any:
        return self.job(job_id).result()

    def cancel(self, job_id: str) -> None:
        self.job(job_id).cancel()
