"""IBM Runtime jobs recorded before waiting, and fetched (not paid for again) by a resumed run.

Offline: the IBM code path runs on a fake device in qiskit-ibm-runtime's local mode, and a
stand-in job store plays the part of the IBM Runtime service, which keeps jobs by id across
processes (local-mode jobs live only in the process that ran them).
"""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest

from finetune.quantum.ansatz import AnsatzConfig, build_ansatz
from finetune.quantum.ibm import IBMRuntimeBackend
from finetune.quantum.jobs import JobNotFoundError, RuntimeJobStore
from finetune.runs.recorder import RunCancelled, run_record
from finetune.runs.registry import RunRegistry

NAME = "ibm:fake_manila,shots=256,seed=7"


class StandInStore:
    """Jobs by id, as the service keeps them; counts what was submitted (paid for)."""

    def __init__(self):
        self.results, self.statuses, self.submitted, self.cancelled = {}, {}, [], []
        self.before_status = self.before_result = None

    def submit(self, primitive, pubs):
        job = primitive.run(list(pubs))  # the fake device runs it here and now
        self.results[job.job_id()] = job.result()
        self.submitted.append(job.job_id())
        return job.job_id()

    def status(self, job_id):
        if self.before_status is not None:
            self.before_status(job_id)
        if job_id not in self.results:
            raise JobNotFoundError(job_id)
        return self.statuses.pop(job_id, "DONE")  # a status set by a test is seen once, then the job is done

    def result(self, job_id):
        if self.before_result is not None:
            self.before_result(job_id)
        return self.results[job_id]

    def cancel(self, job_id):
        self.cancelled.append(job_id)


@pytest.fixture(scope="module")
def device():
    from qiskit_ibm_runtime.fake_provider import FakeManilaV2

    return FakeManilaV2()


@pytest.fixture(scope="module")
def ansatz():
    return build_ansatz(AnsatzConfig(n_qubits=2, depth=1, encoding="angle", readout="z"))


def batches(ansatz, n=3):
    rng = np.random.default_rng(0)
    return [rng.uniform(-1, 1, size=(4, len(ansatz.parameters))) for _ in range(n)]


def attempt(registry, run_id=None):
    return run_record("eval", "intents", ["agent", "eval", "intents", "m"], {}, backend=NAME, registry=registry,
                      run_id=run_id)


def test_a_resumed_run_fetches_the_jobs_it_already_submitted(tmp_path, device, ansatz, capsys):
    registry, store = RunRegistry(tmp_path), StandInStore()
    values = batches(ansatz)
    with pytest.raises(RuntimeError), attempt(registry) as run:
        backend = IBMRuntimeBackend(device, shots=256, seed=7, name=NAME, job_store=store)
        first = [backend.expectations(ansatz, v) for v in values[:2]]
        raise RuntimeError("connection lost")  # the run dies after two jobs
    assert len(store.submitted) == 2
    store.statuses[store.submitted[1]] = "QUEUED"  # the second one still waits in the queue

    with attempt(registry, run.id):
        backend = IBMRuntimeBackend(device, shots=256, seed=7, name=NAME, job_store=store)  # a new process
        again = [backend.expectations(ansatz, v) for v in values]
    assert len(store.submitted) == 3  # only the third job was paid for
    np.testing.assert_array_equal(again[0], first[0])
    np.testing.assert_array_equal(again[1], first[1])
    err = capsys.readouterr().err
    assert f"IBM job {store.submitted[0]}: DONE (submitted by an earlier attempt; fetching its result" in err
    assert f"IBM job {store.submitted[1]}: QUEUED (submitted by an earlier attempt" in err
    record = registry.load(run.id)
    assert [job["job_id"] for job in record.ibm_jobs] == store.submitted
    assert [job["status"] for job in record.ibm_jobs] == ["DONE"] * 3
    assert [job["attempt"] for job in record.ibm_jobs] == [1, 1, 2]


def test_a_job_is_recorded_before_the_run_waits_for_it(tmp_path, device, ansatz):
    registry, store = RunRegistry(tmp_path), StandInStore()
    on_disk = []
    store.before_status = lambda job_id: on_disk.append(  # the first look at the job, before any wait
        {job["job_id"]: job["status"] for job in registry.load(run.id).ibm_jobs}.get(job_id))
    jobs_seen = []
    with attempt(registry) as run:
        backend = IBMRuntimeBackend(device, shots=256, seed=7, name=NAME, job_store=store)
        backend.on_job = jobs_seen.append
        backend.expectations(ansatz, batches(ansatz, 1)[0])
    assert on_disk == ["SUBMITTED"] and jobs_seen == store.submitted


def test_a_run_cancelled_while_waiting_cancels_its_job(tmp_path, device, ansatz):
    registry, store = RunRegistry(tmp_path), StandInStore()

    def cancelled(job_id):
        raise RunCancelled()  # SIGTERM from `agent jobs cancel` arrives during the wait

    store.before_result = cancelled
    with pytest.raises(RunCancelled), attempt(registry) as run:
        IBMRuntimeBackend(device, shots=256, seed=7, name=NAME, job_store=store).expectations(ansatz, batches(ansatz, 1)[0])
    record = registry.load(run.id)
    assert store.cancelled == store.submitted and record.status == "cancelled"
    assert record.ibm_jobs[0]["status"] == "CANCELLED"


def test_cancel_interrupts_a_wait_even_when_the_signal_lands_on_another_thread(tmp_path, device, ansatz):
    registry, store = RunRegistry(tmp_path), StandInStore()
    # A local simulation runs in a worker thread; the kernel may deliver SIGTERM to that thread.
    timer = threading.Timer(1.0, lambda: signal.pthread_kill(threading.get_ident(), signal.SIGTERM))

    waiting_since = []

    def queued_for_ever(job_id):
        store.statuses[job_id] = "QUEUED"
        if not waiting_since:
            waiting_since.append(time.monotonic())
            timer.start()  # `agent jobs cancel` a second after the wait began

    store.before_status = queued_for_ever
    with pytest.raises(RunCancelled), attempt(registry) as run:
        IBMRuntimeBackend(device, shots=256, seed=7, name=NAME, job_store=store).expectations(ansatz, batches(ansatz, 1)[0])
    assert time.monotonic() - waiting_since[0] < 4.0  # not the job's whole queue time
    assert len(store.submitted) == 1 and store.cancelled == store.submitted
    assert [job["status"] for job in registry.load(run.id).ibm_jobs] == ["CANCELLED"]


def test_a_local_simulation_job_of_an_earlier_process_is_run_again(tmp_path, device, ansatz):
    registry = RunRegistry(tmp_path)
    values = batches(ansatz, 1)[0]
    with pytest.raises(RuntimeError), attempt(registry) as run:
        first = IBMRuntimeBackend(device, shots=256, seed=7, name=NAME).expectations(ansatz, values)
        raise RuntimeError("killed")
    with attempt(registry, run.id):  # RuntimeJobStore without a service: earlier jobs are gone
        again = IBMRuntimeBackend(device, shots=256, seed=7, name=NAME).expectations(ansatz, values)
    np.testing.assert_array_equal(again, first)  # same seed, same job number: the same shots
    statuses = [job["status"] for job in registry.load(run.id).ibm_jobs]
    assert statuses == ["NOT_FOUND", "DONE"]


def test_runtime_job_store_asks_the_service_for_jobs_it_did_not_submit():
    class Job:
        def status(self):
            return "QUEUED"

    class Service:
        def job(self, job_id):
            if job_id != "d1":
                raise RuntimeError("no such job")
            return Job()

    store = RuntimeJobStore(Service())
    assert store.status("d1") == "QUEUED"
    with pytest.raises(JobNotFoundError, match="IBM Runtime has no job d2"):
        store.status("d2")
    with pytest.raises(JobNotFoundError, match="local simulation"):
        RuntimeJobStore().status("d1")


@pytest.mark.slow
def test_training_on_a_fake_ibm_device_resumes_without_paying_twice(tmp_path):
    """A head trained through the IBM path is killed mid-epoch and resumed from its checkpoint:
    the jobs submitted after that checkpoint are fetched, and the model ends as if never killed."""
    import torch

    from finetune.models.heads import Head, HeadConfig
    from finetune.training.trainer import Trainer, TrainerCallback, TrainingArguments

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(30, 4, generator=generator)
    y = (x[:, 0] > 0).long()

    class Crash(TrainerCallback):
        def on_step(self, epoch, step, total_steps):
            if step == 5:  # after the checkpoint at step 4 and one more job
                raise RuntimeError("killed")

    def train(registry, store, run_id=None, callbacks=()):
        with run_record("finetune", "intents", ["agent", "finetune", "intents"], {}, registry=registry,
                        run_id=run_id, checkpoint_every=2) as run:
            torch.manual_seed(0)
            head = Head(HeadConfig(kind="quantum", in_features=4, n_classes=2, n_circuits=1, dropout=0.0,
                                   ansatz=AnsatzConfig(n_qubits=2, depth=1, encoding="angle", readout="z")),
                        backend="ibm:fake_manila,shots=128")
            head.quantum.circuit.backend.jobs = store  # the stand-in for the IBM Runtime service
            hooks = run.training_hooks()
            trainer = Trainer(head, TrainingArguments(epochs=2, batch_size=8, lr=0.1, progress=False),
                              callbacks=[*hooks["callbacks"], *callbacks], checkpointing=hooks["checkpointing"])
            result = trainer.fit(x[:24], y[:24], x[24:], y[24:])
        return result, run.id

    expected, _ = train(RunRegistry(tmp_path / "a"), reference := StandInStore())
    registry, store = RunRegistry(tmp_path / "b"), StandInStore()
    with pytest.raises(RuntimeError):
        train(registry, store, callbacks=[Crash()])
    killed = len(store.submitted)
    result, run_id = train(registry, store, run_id=registry.ids()[0])
    assert [r["val_loss"] for r in result.history] == [r["val_loss"] for r in expected.history]
    # Step 5's job was submitted after the step-4 checkpoint; the resume fetched it instead.
    assert 0 < killed < len(reference.submitted)
    assert len(store.submitted) == len(reference.submitted)  # every job paid for exactly once
    assert len(registry.load(run_id).ibm_jobs) == len(reference.submitted)
