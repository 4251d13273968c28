"""What every loaded fine-tuned model shares: a checkpoint, its head, and the encoder it runs on.

:class:`~finetune.models.classifier.TextClassifier` and :class:`~finetune.models.tagger.EntityTagger` both
subclass :class:`CheckpointModel`; it owns the encoder plumbing (a caller's shared encoder, or one
loaded lazily, with the checkpoint's LoRA adapter when it has one) so the two stay in step.
"""

from __future__ import annotations

import copy
import hashlib
from abc import ABC, abstractmethod
from functools import cached_property

from finetune.models.checkpoint import Checkpoint
from finetune.models.encoder import Encoder, EncoderConfig
from finetune.models.heads import Head


class CheckpointModel(ABC):
    """A loaded checkpoint with its head in eval mode and the encoder it was trained on.

    Subclasses say which shared encoders they accept in :meth:`_check_encoder` (each keeps its own
    error message) and attach one with :meth:`_attach`.

    Attributes:
        checkpoint: The loaded model directory.
        head: The checkpoint's head, in eval mode.
        encoder_config: The encoder the head was trained on (the default when the checkpoint says none).
    """

    def __init__(self, checkpoint: Checkpoint, encoder: Encoder | None = None) -> None:
        self.checkpoint = checkpoint
        self.head: Head = checkpoint.head.eval()
        self.encoder_config = EncoderConfig.from_dict(checkpoint.encoder) if checkpoint.encoder else EncoderConfig()
        # Taken as is: a caller's shared encoder goes through _attach, which checks and copies it.
        self._encoder = encoder
        self.device = "cpu"

    def to(self, device: str) -> CheckpointModel:
        """Run the head, and the encoder this model owns, on ``device`` (already resolved, e.g. by
        :func:`finetune.models.device.resolve_device`); features still come back on the CPU."""
        self.device = device
        self.head.to(device)
        if self._encoder is not None:
            self._encoder.to(device)
        return self

    @property
    def uses_frozen_encoder(self) -> bool:
        """False when the model has its own LoRA adapter (and so needs its own encoder pass)."""
        return self.checkpoint.adapter_dir is None

    @cached_property
    def adapter_digest(self) -> str | None:
        """SHA-256 of the checkpoint's adapter weights (None without an adapter)."""
        if self.checkpoint.adapter_dir is None:
            return None
        return hashlib.sha256((self.checkpoint.adapter_dir / "adapter_model.safetensors").read_bytes()).hexdigest()

    def shares_encoder_with(self, other: CheckpointModel) -> bool:
        """True when both models carry the same adapter on the same encoder (trained together by
        :mod:`finetune.training.joint`), so one encoder pass serves both."""
        return (self.adapter_digest is not None and self.adapter_digest == other.adapter_digest
                and self.encoder_config == other.encoder_config)

    @property
    def encoder(self) -> Encoder:
        """The encoder this model runs on (loaded, with its adapter, on first use)."""
        if self._encoder is None:
            encoder = Encoder.load(self.encoder_config)
            if self.checkpoint.adapter_dir is not None:
                encoder.load_adapter(self.checkpoint.adapter_dir)
            self._encoder = encoder.to(self.device)
        return self._encoder

    def adopt_encoder(self, encoder: Encoder) -> None:
        """Run on ``encoder`` as it is, unchecked and uncopied: the encoder this model was just trained
        with (the shared frozen one, or the one now carrying its adapter), so no reload is needed."""
        self._encoder = encoder

    @property
    def encoders(self) -> list[Encoder]:
        """The encoders this model runs on: one (an ensemble of models has several)."""
        return [self.encoder]

    def use_runtime(self, runtime: str) -> None:
        """Run this model's encoder passes on ``runtime`` (``torch``, ``onnx``, ``onnx-int8``)."""
        self.encoder.use_runtime(runtime)

    def set_backend(self, backend: str) -> None:
        """Run the head's circuits elsewhere from now on (same weights)."""
        self.head.set_backend(backend)

    def _attach(self, encoder: Encoder) -> None:
        """Run on a caller's plain encoder, after :meth:`_check_encoder` accepts it.

        With a LoRA adapter the model works on a deep copy, so the caller's encoder (shared with
        frozen models) never changes.

        Raises:
            CheckpointError: The encoder is not the one this model was trained on.
        """
        self._check_encoder(encoder)
        if self.checkpoint.adapter_dir is not None:
            encoder = copy.deepcopy(encoder)
            encoder.load_adapter(self.checkpoint.adapter_dir)
            encoder.to(self.device)  # this copy is the model's own
        self._encoder = encoder

    @abstractmethod
    def _check_encoder(self, encoder: Encoder) -> None:
        """Raise :class:`~finetune.models.checkpoint.CheckpointError` unless ``encoder`` fits this model."""
