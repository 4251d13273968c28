"""Training checkpoints on disk: a full round trip, no pickle, clear errors, full disks."""

from __future__ import annotations

import errno
import os

import pytest
import torch

from finetune.training.train_state import TrainState, TrainStateError, capture_rng, load_train_state, restore_rng, save_train_state


def state(step=3):
    params = [torch.nn.Parameter(torch.ones(2, 2))]
    optimizer = torch.optim.AdamW(params, lr=0.1)
    params[0].sum().backward()
    optimizer.step()
    generator = torch.Generator().manual_seed(5)
    return TrainState(
        step=step, epoch=2, next_batch=1, order=torch.tensor([2, 0, 1]), epoch_loss=0.25,
        model={"w": params[0].detach().clone()}, best=None, optimizer=optimizer.state_dict(),
        scheduler={"last_epoch": step}, rng=capture_rng(generator), modules={"q": {"jobs": 4}},
        best_score=-float("inf"), history=[{"epoch": 1, "val_score": 0.5}], fingerprint={"epochs": 3},
    )


def test_a_checkpoint_round_trips_without_pickle(tmp_path):
    path = save_train_state(tmp_path / "s.safetensors", state())
    assert b"pickle" not in path.read_bytes()[:200]
    loaded = load_train_state(path)
    original = state()
    assert (loaded.step, loaded.epoch, loaded.next_batch, loaded.epoch_loss) == (3, 2, 1, 0.25)
    assert torch.equal(loaded.order, original.order) and torch.equal(loaded.model["w"], original.model["w"])
    assert loaded.best is None and loaded.best_score == -float("inf") and loaded.modules == {"q": {"jobs": 4}}
    assert loaded.optimizer["param_groups"][0]["betas"] == (0.9, 0.999)
    assert torch.equal(loaded.optimizer["state"][0]["exp_avg"], original.optimizer["state"][0]["exp_avg"])
    generator = torch.Generator()
    restore_rng(loaded.rng, generator)
    resumed_draw = torch.rand(3)
    torch.set_rng_state(original.rng["torch"])
    assert torch.equal(resumed_draw, torch.rand(3))
    assert torch.equal(generator.get_state(), original.rng["generator"])


@pytest.mark.parametrize(("content", "message"), [(b"\x00" * 20, "is unreadable"), (None, "not found")])
def test_a_bad_checkpoint_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "s.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(TrainStateError, match=message):
        load_train_state(path)


def test_a_full_disk_leaves_the_previous_checkpoint_usable(tmp_path, monkeypatch):
    path = save_train_state(tmp_path / "s.safetensors", state(step=3))

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        save_train_state(path, state(step=9))
    monkeypatch.undo()
    assert load_train_state(path).step == 3
    assert [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]


def test_a_checkpoint_of_another_setup_names_the_difference(tmp_path):
    with pytest.raises(TrainStateError, match=r"\(epochs: 3 there, 5 now\)"):
        state().check_fingerprint({"epochs": 5}, tmp_path)
