"""Tests for finetune.models.encoder on the real all-MiniLM-L6-v2 (loaded once per session)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from finetune.models.encoder import (
    DEFAULT_MODEL_ID,
    Encoder,
    EncoderConfig,
    EncoderError,
    FeatureCache,
    split_words,
)


# ---- config --------------------------------------------------------------------------------


def test_config_round_trip_and_ids() -> None:
    config = EncoderConfig(max_length=64, pooling="cls", normalize=True)
    assert EncoderConfig.from_dict(config.to_dict()) == config
    assert EncoderConfig().model_id == DEFAULT_MODEL_ID
    assert EncoderConfig(model="some/dir").model_id == str(Path("some/dir").resolve())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_length": 0}, "max_length"),
        ({"batch_size": -1}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"pooling": "max"}, "pooling"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EncoderConfig(**kwargs)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown"):
        EncoderConfig.from_dict({"pooling": "mean", "pool": "cls"})


@pytest.mark.parametrize("make_dir", [False, True])
def test_bad_model_path_is_a_clear_error(tmp_path: Path, make_dir: bool) -> None:
    path = tmp_path / "model"
    if make_dir:
        path.mkdir()
    with pytest.raises(EncoderError, match="no config.json" if make_dir else "does not exist"):
        Encoder.load(EncoderConfig(model=str(path)))


# ---- sentence features ---------------------------------------------------------------------


def test_encode_shape_dtype_and_determinism(base_encoder: Encoder) -> None:
    texts = ["I lost my card", "What is my balance?", "Transfer $50 to savings"]
    first = base_encoder.encode(texts)
    assert base_encoder.dim == 384
    assert first.shape == (3, 384) and first.dtype == torch.float32
    assert torch.equal(first, base_encoder.encode(texts))
    assert not base_encoder.training and not base_encoder.model.training  # dropout stays off
    sentences, words = base_encoder.encode_all(texts)
    assert torch.allclose(first, sentences, atol=1e-6)
    assert len(words) == 3


def test_paraphrases_are_closer_than_unrelated(base_encoder: Encoder) -> None:
    a, b, c = base_encoder.encode(
        ["My card was stolen", "Someone stole my credit card", "What time does the branch open?"]
    )
    assert F.cosine_similarity(a, b, dim=0) > F.cosine_similarity(a, c, dim=0) + 0.2


def test_normalize_gives_unit_vectors(base_encoder: Encoder) -> None:
    unit = copy.copy(base_encoder)
    unit.config = EncoderConfig(normalize=True)
    norms = unit.encode(["hello", "card declined"]).norm(dim=-1)
    assert torch.allclose(norms, torch.ones(2), atol=1e-5)


def test_empty_string_is_a_valid_feature(base_encoder: Encoder) -> None:
    sentences, words = base_encoder.encode_all(["", "hi"])
    assert torch.isfinite(sentences).all() and sentences[0].abs().sum() > 0
    assert words[0].words == [] and words[0].features.shape == (0, 384)


def test_long_text_is_truncated_with_one_warning(
    base_encoder: Encoder, caplog: pytest.LogCaptureFixture
) -> None:
    long_text = " ".join(["payment"] * 5000)
    with caplog.at_level(logging.WARNING, logger="finetune.models.encoder"):
        features = base_encoder.encode([long_text, "short", long_text])
    assert features.shape == (3, 384)
    truncation = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(truncation) == 1 and truncation[0].getMessage().startswith("2 text(s)")
    batch = base_encoder.tokenize([long_text])
    assert batch["input_ids"].shape[1] == 128


# ---- word features -------------------------------------------------------------------------


def test_word_features_align_with_text(base_encoder: Encoder) -> None:
    text = "I paid $20.50 to Amazon yesterday"
    expected = ["I", "paid", "$", "20", ".", "50", "to", "Amazon", "yesterday"]
    assert [w for w, _, _ in split_words(text)] == expected
    (result,) = base_encoder.encode_words([text])
    assert [w for w, _, _ in result.words] == expected
    assert all(text[start:end] == word for word, start, end in result.words)
    assert result.words[2] == ("$", 7, 8)
    assert result.features.shape == (len(expected), 384)
    # "yesterday" is one sub-token here; its feature must be that token's hidden state.
    batch = base_encoder.tokenize([text], words=[result.words])
    with torch.no_grad():
        _, hidden = base_encoder(batch)
    position = (batch["word_index"][0] == 8).nonzero().item()
    assert torch.allclose(result.features[8], hidden[0, position], atol=1e-5)


def test_caller_words_may_span_several_subtokens(base_encoder: Encoder) -> None:
    text = "Send $20.50 to Amazon"
    words = [("Send", 0, 4), ("$20.50", 5, 11), ("to", 12, 14), ("Amazon", 15, 21)]
    (result,) = base_encoder.encode_words([text], words=[words])
    assert result.words == words and result.features.shape == (4, 384)


def test_truncated_words_are_dropped_with_warning(
    base_encoder: Encoder, caplog: pytest.LogCaptureFixture
) -> None:
    text = " ".join(f"w{i}" for i in range(300))
    with caplog.at_level(logging.WARNING, logger="finetune.models.encoder"):
        (result,) = base_encoder.encode_words([text])
    n = len(result.words)
    assert 0 < n < 300 and result.features.shape == (n, 384)
    assert all(text[s:e] == w for w, s, e in result.words)
    assert any("got no feature" in r.getMessage() for r in caplog.records)


# ---- feature cache -------------------------------------------------------------------------


class _Spy:
    """Counts real encode calls while still running the encoder."""

    def __init__(self, encoder: Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = encoder.encode

        def counting(texts, *, progress=False):
            self.calls += 1
            return real(texts, progress=progress)

        monkeypatch.setattr(encoder, "encode", counting)


def test_feature_cache_hits_misses_and_recovers(
    encoder: Encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    spy = _Spy(encoder, monkeypatch)
    cache = FeatureCache(tmp_path)
    texts = ["freeze my card", "exchange rate for euros"]
    first = cache.get_or_compute(encoder, texts)
    again = cache.get_or_compute(encoder, texts)
    assert spy.calls == 1 and torch.equal(first, again)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    assert not list(tmp_path.glob("*.tmp"))

    cache.get_or_compute(encoder, texts + ["a new one"])
    assert spy.calls == 2

    key = cache.key(encoder.fingerprint, encoder.config, texts)
    cache.path(key).write_bytes(b"not a safetensors file")
    with caplog.at_level(logging.WARNING, logger="finetune.models.encoder"):
        recovered = cache.get_or_compute(encoder, texts)
    assert spy.calls == 3 and torch.equal(recovered, first)
    assert any("unreadable" in r.getMessage() for r in caplog.records)


def test_cache_key_depends_on_everything() -> None:
    config = EncoderConfig()
    base = FeatureCache.key("m", config, ["a", "b"])
    assert base == FeatureCache.key("m", EncoderConfig(), ["a", "b"])
    assert base != FeatureCache.key("m2", config, ["a", "b"])
    assert base != FeatureCache.key("m", EncoderConfig(pooling="cls"), ["a", "b"])
    assert base != FeatureCache.key("m", config, ["ab"])


def test_cache_default_root_follows_qagent_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QAGENT_HOME", str(tmp_path))
    assert FeatureCache().root == tmp_path / "cache" / "features"


# ---- LoRA ----------------------------------------------------------------------------------


def test_lora_trains_only_adapter_and_round_trips(encoder: Encoder, tmp_path: Path) -> None:
    texts = ["block my card", "how do I top up"]
    before = encoder.encode(texts)
    id_before = encoder.fingerprint
    encoder.add_lora(r=4, alpha=8, dropout=0.0)
    trainable = [n for n, p in encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    # LoRA's B matrix starts at zero, so a fresh adapter changes nothing.
    assert torch.allclose(encoder.encode(texts), before, atol=1e-6)

    optimizer = torch.optim.SGD([p for p in encoder.parameters() if p.requires_grad], lr=0.5)
    encoder.train()
    sentence, _ = encoder(encoder.tokenize(texts))
    loss = -F.cosine_similarity(sentence[0], sentence[1], dim=0)
    loss.backward()
    optimizer.step()
    tuned = encoder.encode(texts)
    assert not torch.allclose(tuned, before, atol=1e-4)
    assert encoder.fingerprint != id_before

    adapter_dir = tmp_path / "adapter"
    encoder.save_adapter(adapter_dir)
    files = {p.name for p in adapter_dir.iterdir()}
    assert files == {"adapter_config.json", "adapter_model.safetensors"}  # no model card with a local path
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files)

    fresh = Encoder.load(EncoderConfig())
    fresh.load_adapter(adapter_dir)
    assert torch.allclose(fresh.encode(texts), tuned, atol=1e-6)
    assert not any(p.requires_grad for p in fresh.parameters())


def test_load_adapter_without_files_is_a_clear_error(encoder: Encoder, tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="adapter_model.safetensors"):
        encoder.load_adapter(tmp_path)


def test_a_corrupted_adapter_names_its_file(encoder: Encoder, tmp_path: Path) -> None:
    import shutil

    from agent.shipped import INTENTS_MODEL

    shipped = INTENTS_MODEL / "adapter"
    adapter = shutil.copytree(shipped, tmp_path / "adapter")
    (adapter / "adapter_model.safetensors").write_bytes(b"garbage")
    with pytest.raises(EncoderError, match=r"adapter/adapter_model\.safetensors is unreadable"):
        encoder.load_adapter(adapter)
