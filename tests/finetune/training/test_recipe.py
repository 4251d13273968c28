"""The shared recipe's steps: seeded heads, adapters, settings and metrics records, saved checkpoints."""

from __future__ import annotations

import time

import torch

from finetune.models.checkpoint import load_checkpoint
from finetune.models.heads import HeadConfig
from finetune.models.lora import LoraSettings
from finetune.training.recipe import build_head, fit, mode_settings, run_metrics, save_model
from finetune.training.trainer import TrainingArguments


class _Dim:
    """What build_head reads of an encoder: its feature width and device."""

    dim = 8
    device = torch.device("cpu")


def test_a_seeded_head_starts_from_the_same_weights():
    first = build_head(HeadConfig(kind="linear"), _Dim(), 3, "exact", seed=7)
    second = build_head(HeadConfig(kind="linear"), _Dim(), 3, "exact", seed=7)
    other = build_head(HeadConfig(kind="linear"), _Dim(), 3, "exact", seed=8)
    for a, b, c in zip(first.state_dict().values(), second.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, c) for a, c in zip(first.state_dict().values(), other.state_dict().values()))


def test_settings_say_the_mode_and_the_adapter_shape():
    assert mode_settings(None, entity_types=["date"]) == {"mode": "frozen", "entity_types": ["date"]}
    lora = mode_settings(LoraSettings(r=4, alpha=8))
    assert lora["mode"] == "lora" and lora["lora"]["r"] == 4 and lora["lora"]["target_modules"] == ("query", "value")


def test_fit_trains_records_metrics_and_saves_a_loadable_checkpoint(tmp_path, base_encoder):
    torch.manual_seed(0)
    x = torch.randn(40, base_encoder.dim)
    y = (x[:, 0] > 0).long()
    head = build_head(HeadConfig(kind="linear"), base_encoder, 2, "exact", seed=0)
    started = time.perf_counter()
    _, result = fit(head, TrainingArguments(epochs=3, batch_size=8, progress=False), (x[:30], y[:30]), (x[30:], y[30:]))
    assert not head.training  # left in eval mode
    metrics = run_metrics(result, started, head, "val_macro_f1", note=1)
    assert list(metrics) == ["best_epoch", "val_macro_f1", "train_seconds", "head_parameters", "note", "history"]
    assert 0.0 <= metrics["val_macro_f1"] <= 1.0 and metrics["head_parameters"] > 0
    path = save_model(tmp_path / "m", task="sentiment", head=head, labels=["a", "b"], encoder=base_encoder,
                      training={"data": "toy"}, settings=mode_settings(None), metrics=metrics, command=None,
                      with_adapter=False)
    checkpoint = load_checkpoint(path)
    assert checkpoint.labels == ["a", "b"] and checkpoint.adapter_dir is None
