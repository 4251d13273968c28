import copy

import pytest
import torch

from finetune.models.onnx_runtime import OnnxSession

TEXTS = ["Shares of Acme plunge after profit warning", "send 20 pounds to Anna tomorrow", "", "word " * 300]


@pytest.fixture(scope="module")
def onnx_encoder(base_encoder, tmp_path_factory):
    encoder = copy.deepcopy(base_encoder)
    encoder.use_runtime("onnx", cache_dir=tmp_path_factory.mktemp("onnx"))
    return encoder


@pytest.mark.slow
def test_onnx_runtime_gives_the_torch_features(onnx_encoder, base_encoder):
    assert onnx_encoder.runtime == "onnx" and base_encoder.runtime == "torch"
    sentences, words = onnx_encoder.encode_all(TEXTS)
    want_sentences, want_words = base_encoder.encode_all(TEXTS)
    assert torch.allclose(sentences, want_sentences, atol=1e-4)
    for got, want in zip(words, want_words):
        assert got.words == want.words and torch.allclose(got.features, want.features, atol=1e-4)


@pytest.mark.slow
def test_the_export_is_cached_and_a_broken_file_is_exported_again(base_encoder, tmp_path):
    first = OnnxSession.for_encoder(base_encoder.model, base_encoder.tokenizer, "id-1", cache_dir=tmp_path)
    stamp = first.path.stat().st_mtime_ns
    again = OnnxSession.for_encoder(base_encoder.model, base_encoder.tokenizer, "id-1", cache_dir=tmp_path)
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp
    first.path.write_bytes(b"not an onnx file")
    repaired = OnnxSession.for_encoder(base_encoder.model, base_encoder.tokenizer, "id-1", cache_dir=tmp_path)
    batch = base_encoder.tokenize(["hello there"])
    assert repaired(batch).shape == (1, batch["input_ids"].shape[1], base_encoder.dim)
    assert list(tmp_path.glob("*.tmp")) == []


@pytest.mark.slow
def test_copies_and_new_adapters_go_back_to_torch(onnx_encoder):
    clone = copy.deepcopy(onnx_encoder)
    assert clone.runtime == "torch" and onnx_encoder.runtime == "onnx"
    clone.use_runtime("onnx", cache_dir=onnx_encoder._onnx.path.parent)
    clone.add_lora(r=2, alpha=4)  # the exported graph holds the old weights
    assert clone.runtime == "torch"


def test_unknown_runtime_is_refused(encoder):
    with pytest.raises(ValueError, match="runtime must be one of torch, onnx"):
        encoder.use_runtime("tensorrt")


def test_a_missing_onnxruntime_says_how_to_install_it(monkeypatch, tmp_path):
    import sys

    from finetune.models.onnx_runtime import OnnxRuntimeError

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(OnnxRuntimeError, match="pip install onnxruntime"):
        OnnxSession(tmp_path / "model.onnx")


@pytest.mark.slow
def test_the_int8_runtime_is_cached_beside_the_float_export_and_stays_close(base_encoder, tmp_path):
    encoder = copy.deepcopy(base_encoder)
    encoder.use_runtime("onnx-int8", cache_dir=tmp_path)
    assert encoder.runtime == "onnx-int8"
    assert len(list(tmp_path.glob("*.int8.onnx"))) == 1 and len(list(tmp_path.glob("*.onnx"))) == 2
    got, want = encoder.encode(TEXTS[:2]), base_encoder.encode(TEXTS[:2])
    assert not torch.equal(got, want)  # int8 weights: other numbers ...
    assert torch.nn.functional.cosine_similarity(got, want).min() > 0.95  # ... close to the same features
