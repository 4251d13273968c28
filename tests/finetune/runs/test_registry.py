"""Run records on disk: where they live, atomic updates, ids, corruption, the run lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from finetune.runs.lock import RunLock, holder, is_locked
from finetune.runs.registry import (
    RunCorruptError,
    RunNotFoundError,
    RunRegistry,
    runs_root,
)


def make(registry, task="intents", config=None):
    record, lock = registry.create("finetune", task, ["agent", "finetune", task], "/tmp", config or {"epochs": 2})
    return record, lock


def test_runs_live_under_qagent_home_by_default(tmp_path, monkeypatch):
    monkeypatch.delenv("QAGENT_RUNS_DIR")
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path / "home"))
    assert runs_root() == tmp_path / "home" / "runs"
    record, lock = make(RunRegistry())
    lock.release()
    folder = tmp_path / "home" / "runs" / record.id
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoints", "lock", "record.json"]
    assert json.loads((folder / "record.json").read_text())["status"] == "queued"


def test_an_update_replaces_the_record_whole(tmp_path):
    registry = RunRegistry(tmp_path)
    record, lock = make(registry)
    record.status, record.metrics = "succeeded", {"val_macro_f1": 0.91}
    registry.save(record)
    lock.release()
    loaded = registry.load(record.id)
    assert (loaded.status, loaded.metrics) == ("succeeded", {"val_macro_f1": 0.91})
    assert [p.name for p in registry.path(record.id).iterdir() if p.name.startswith(".")] == []  # no temp files


def test_ids_sort_by_time_and_resolve_by_prefix_suffix_or_latest(tmp_path):
    registry = RunRegistry(tmp_path)
    first, _ = make(registry, "intents")
    second, _ = make(registry, "sentiment")
    assert registry.ids() == [first.id, second.id]  # by creation, to the microsecond
    assert registry.resolve(first.id) == first.id
    assert registry.resolve(first.id[-4:]) == first.id
    assert registry.resolve(first.id[:-5]) == first.id  # "…-finetune-intents": the only intents run
    assert registry.resolve("latest") == second.id


def test_unknown_and_ambiguous_ids_say_what_to_do(tmp_path):
    registry = RunRegistry(tmp_path)
    make(registry)
    make(registry)
    with pytest.raises(RunNotFoundError, match=r"no run 'nope' in .*; `agent jobs list` shows the runs"):
        registry.load("nope")
    with pytest.raises(RunNotFoundError, match="matches 2 runs"):
        registry.load("2")  # every id starts with the year


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "record.json is corrupted"), ('{"format": "qagent-run/1", "id": "x"}', "missing kind, task"),
     ('["a list"]', "expected a JSON object"), ('{"format": "other"}', "unknown format")],
)
def test_a_corrupted_record_is_named_with_its_folder(tmp_path, text, message):
    registry = RunRegistry(tmp_path)
    record, lock = make(registry)
    lock.release()
    (registry.path(record.id) / "record.json").write_text(text)
    with pytest.raises(RunCorruptError, match=message) as error:
        registry.load(record.id)
    assert str(registry.path(record.id)) in str(error.value)


def test_a_run_lock_is_exclusive_until_released(tmp_path):
    registry = RunRegistry(tmp_path)
    record, lock = make(registry)
    assert registry.is_alive(record.id) and registry.holder(record.id) == os.getpid()
    assert not registry.lock(record.id).acquire()
    lock.release()
    assert not registry.is_alive(record.id)
    with registry.lock(record.id) as again:
        assert again.acquire()


def test_the_lock_dies_with_its_process(tmp_path):
    path = tmp_path / "lock"
    script = ("import os, sys, time; from finetune.runs.lock import RunLock; "
              f"RunLock({str(path)!r}).acquire(); print('locked', flush=True); time.sleep(60)")
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout.readline().strip() == "locked"
            assert is_locked(path) and holder(path) == child.pid
            assert not RunLock(path).acquire()
        finally:
            child.send_signal(signal.SIGKILL)
    assert not is_locked(path)  # no stale lock after a SIGKILL: the kernel dropped it
    with RunLock(path) as lock:
        assert lock.acquire()


def test_a_running_record_without_a_live_process_becomes_failed(tmp_path):
    registry = RunRegistry(tmp_path)
    record, lock = make(registry)
    record.status, record.pid = "running", 12345
    registry.save(record)
    assert registry.reconcile(registry.load(record.id)).status == "running"  # lock held: alive
    lock.release()  # the process "died"
    fixed = registry.reconcile(registry.load(record.id))
    assert fixed.status == "failed" and fixed.error.startswith("interrupted: process 12345 ended")
    assert registry.load(record.id).status == "failed"
