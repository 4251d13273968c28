"""LoRA settings and widening a saved adapter to a larger rank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from finetune.models.encoder import Encoder
from finetune.models.lora import LoraSettings, widen_adapter

TEXTS = ["Fed raises rates by 25 basis points", "Acme shares slump after profit warning", "send 20 pounds to Anna"]


def test_lora_settings_validate_themselves():
    with pytest.raises(ValueError, match="r and alpha"):
        LoraSettings(r=0)
    with pytest.raises(ValueError, match="dropout"):
        LoraSettings(dropout=1.0)
    assert LoraSettings.from_options(4, 8, "query, value,").target_modules == ("query", "value")


def test_a_widened_adapter_computes_what_the_old_one_did_and_can_learn_more(encoder: Encoder, tmp_path: Path):
    from agent.shipped import NEWS_TOPICS_MODEL

    source = NEWS_TOPICS_MODEL / "adapter"
    old = json.loads((source / "adapter_config.json").read_text())
    lora = widen_adapter(source, tmp_path, 2 * old["r"], seed=3)
    assert (lora.r, lora.alpha) == (2 * old["r"], 2 * old["lora_alpha"])
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (lora.r, lora.alpha)
    before, after = load_file(str(source / "adapter_model.safetensors")), load_file(str(tmp_path / "adapter_model.safetensors"))
    assert before.keys() == after.keys()
    a = next(name for name in before if name.endswith("lora_A.weight"))
    b = a.replace("lora_A", "lora_B")
    assert torch.equal(after[a][: old["r"]], before[a]) and after[a][old["r"]:].abs().sum() > 0
    assert torch.equal(after[b][:, : old["r"]], before[b]) and not after[b][:, old["r"]:].any()

    reference = Encoder.load()
    reference.load_adapter(source)
    encoder.load_adapter(tmp_path, trainable=True)
    encoder.eval()
    with torch.no_grad():
        assert torch.allclose(encoder.encode(TEXTS), reference.encode(TEXTS), atol=1e-5)
    # The added rank learns: its B columns, zero now, get gradients from the first step.
    encoder.train()
    sentence, _ = encoder(encoder.tokenize(TEXTS))
    sentence.pow(2).sum().backward()
    # (The pooler's dense layer carries an adapter too but mean pooling never reads it.)
    grads = [p.grad[:, old["r"]:] for name, p in encoder.named_parameters()
             if name.endswith("lora_B.default.weight") and "pooler" not in name]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_widening_refuses_a_smaller_rank_and_a_fractional_alpha(encoder: Encoder, tmp_path: Path):
    encoder.add_lora(r=4, alpha=6, dropout=0.0)
    encoder.save_adapter(tmp_path / "r4")
    with pytest.raises(ValueError, match="already has rank 4"):
        widen_adapter(tmp_path / "r4", tmp_path / "out", 4)
    with pytest.raises(ValueError, match="fractional alpha"):
        widen_adapter(tmp_path / "r4", tmp_path / "out", 5)
    assert widen_adapter(tmp_path / "r4", tmp_path / "out", 6).alpha == 9
