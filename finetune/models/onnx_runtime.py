"""Run an encoder's inference passes through ONNX Runtime instead of PyTorch.

Two runtimes (``python -m eval.runtime_bench`` times them against torch in one run):

- ``onnx``: the same float32 weights; the same hidden states as torch to about 1e-5, faster.
- ``onnx-int8``: the weights of every matrix product quantised to int8 per output channel
  (``onnxruntime.quantization.quantize_dynamic``); faster again, and the models' answers change
  slightly, so their accuracy under it is measured (``agent eval … --runtime onnx-int8``,
  BENCHMARKS.md) before anything uses it.

Training always runs in PyTorch. The transformer (its LoRA adapter merged in) is exported once
per encoder fingerprint to ``$QAGENT_HOME/cache/onnx/<hash>[.int8].onnx`` (written beside the
target, then renamed) and loaded from there afterwards. ONNX files are protobuf weights and
graph: loading one runs no Python code.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxRuntimeError(RuntimeError):
    """ONNX Runtime is missing or the export failed."""


def default_cache_dir() -> Path:
    home = Path(os.environ.get("QAGENT_HOME", Path.home() / ".qagent")).expanduser()
    return home / "cache" / "onnx"


class _LastHidden(torch.nn.Module):
    """Positional inputs in, last hidden state out: the graph ONNX export traces."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state


def export(model: torch.nn.Module, tokenizer: Any, path: Path) -> None:
    """Export ``model`` (a Hugging Face encoder, adapters merged) to ``path`` with dynamic batch and length."""
    model = copy.deepcopy(model).eval()
    # The eager attention graph exports as plain matmuls that Runtime fuses; the SDPA path traces
    # shape-dependent branches.
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if hasattr(base, "set_attn_implementation"):
        base.set_attn_implementation("eager")
    sample = tokenizer(["an example sentence for tracing", "a second one"], padding=True, return_tensors="pt")
    args = tuple(sample.get(name, torch.zeros_like(sample["input_ids"])) for name in INPUTS)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*INPUTS, "last_hidden_state")}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation chatter, not problems of ours
            torch.onnx.export(_LastHidden(model), args, tmp, input_names=list(INPUTS),
                              output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
        os.replace(tmp, path)
    except Exception as exc:  # the exporter raises many types; the caller needs one
        raise OnnxRuntimeError(f"could not export the encoder to ONNX: {exc}".splitlines()[0]) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def quantize(source: Path, target: Path) -> None:
    """Write ``source`` with int8 weights (per output channel) for its matrix products to ``target``."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise OnnxRuntimeError("the onnx-int8 runtime needs the package onnxruntime: pip install onnxruntime") from exc
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.stem, suffix=".tmp")
    os.close(fd)
    try:
        # The quantiser advises, through the root logger, pre-processing the graph first. That is
        # general advice, not a problem with this file: the int8 accuracy in BENCHMARKS.md is
        # measured on the graph exactly as quantised here. Users of `agent monitor` need not see it.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(str(source), tmp, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            root.setLevel(level)
        os.replace(tmp, target)
    except OnnxRuntimeError:
        raise
    except Exception as exc:  # the quantiser raises many types; the caller needs one
        raise OnnxRuntimeError(f"could not quantize the ONNX encoder: {exc}".splitlines()[0]) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class OnnxSession:
    """An ONNX Runtime session computing the last hidden state ``[B, T, D]`` of a tokenised batch.

    Build one with :meth:`for_encoder`; ``threads`` defaults to torch's thread count.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        try:
            import onnxruntime
        except ImportError as exc:
            raise OnnxRuntimeError("the onnx runtime needs the package onnxruntime: pip install onnxruntime") from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.path = path
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    @classmethod
    def for_encoder(cls, model: torch.nn.Module, tokenizer: Any, fingerprint: str, *, int8: bool = False,
                    cache_dir: Path | None = None, threads: int | None = None) -> OnnxSession:
        """Load the cached export of this exact encoder (``int8``: its quantised copy), making it first if needed."""
        import transformers

        key = hashlib.sha256(f"{fingerprint}|torch {torch.__version__}|transformers {transformers.__version__}"
                             .encode()).hexdigest()[:24]
        plain = (cache_dir or default_cache_dir()) / f"{key}.onnx"
        path = plain.with_suffix(".int8.onnx") if int8 else plain

        def build() -> None:
            if not plain.is_file() or path == plain:
                logger.info("exporting the encoder to ONNX: %s", plain)
                export(model, tokenizer, plain)
            if int8:
                quantize(plain, path)

        if not path.is_file():
            build()
        try:
            return cls(path, threads)
        except OnnxRuntimeError:
            raise
        except Exception as exc:  # a truncated or foreign file: make it again once
            logger.warning("cached ONNX encoder %s is unreadable (%s); exporting it again", path, exc)
            plain.unlink(missing_ok=True)
            build()
            return cls(path, threads)

    def __call__(self, batch: Any) -> torch.Tensor:
        ids = batch["input_ids"]
        feeds = {name: (batch[name] if name in batch else torch.zeros_like(ids)).numpy() for name in INPUTS}
        return torch.from_numpy(self.session.run(None, feeds)[0])
