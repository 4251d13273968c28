"""Text classification (intents, sentiment): the model a caller loads once and asks many times.

A trained classifier is a checkpoint directory (see :mod:`finetune.models.checkpoint`): a head on
sentence features of the encoder, optionally a LoRA adapter of the encoder, and task settings
such as the out-of-scope threshold. Training lives in :mod:`finetune.training.classifier`.

Usage::

    clf = TextClassifier.load("agent/assets/models/intents")   # the shipped intents model
    clf.predict(["I lost my card"])[0].label           # 'lost_or_stolen_card'

When several models share the frozen encoder, run it once and hand each the features::

    features = encoder.encode(texts)
    intents.predict_features(features); sentiment.predict_features(features)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from finetune.models.calibration import Calibration, backend_key, parse_calibrations
from finetune.models.checkpoint import CALIBRATION, Checkpoint, CheckpointError, load_checkpoint
from finetune.data.loaders import OUT_OF_SCOPE
from finetune.models.encoder import Encoder, FeatureCache
from finetune.models.device import module_device
from finetune.models.heads import Head
from finetune.models.lexical import LexicalModel
from finetune.models.base import CheckpointModel
from finetune.data.oos import abstain

TASKS = ("intents", "sentiment", "topics")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """One text's prediction; ``label`` is ``out_of_scope`` when the classifier abstains."""

    label: str
    confidence: float
    probs: dict[str, float]


class EncodedClassifier(nn.Module):
    """Encoder + head as one module taking a list of texts (for LoRA training and inference)."""

    def __init__(self, encoder: Encoder, head: Head) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        sentence, _ = self.encoder(self.encoder.tokenize(list(texts)))
        return self.head(sentence)


class TextClassifier(CheckpointModel):
    """A loaded classifier: labels, head, optional own encoder (LoRA), optional threshold.

    Build one with :meth:`load`. ``predict`` runs the encoder; ``predict_features`` takes frozen
    sentence features computed elsewhere (only for models whose encoder is frozen).
    """

    def __init__(self, checkpoint: Checkpoint, encoder: Encoder | None = None, backend: str = "exact") -> None:
        super().__init__(checkpoint, encoder)
        self.labels: list[str] = list(checkpoint.labels)
        self.task: str = checkpoint.task
        threshold = checkpoint.settings.get("threshold")
        self.threshold: float | None = None if threshold is None else float(threshold)
        self.model_threshold = self.threshold  # the checkpoint's own, chosen on the exact backend
        self.calibrations: dict[str, Calibration] = parse_calibrations(
            checkpoint.calibration, checkpoint.path / CALIBRATION)
        self.calibration: Calibration | None = None  # the entry in use, for the head's backend
        # Output layers retrained for a backend's noise (calibration entries with head_weights):
        # the file in use (None: the checkpoint's own), those read so far, and a copy of the own
        # ones, taken the first time another set is swapped in.
        self._output_layers_in_use: str | None = None
        self._adapted_output_layers: dict[str, dict[str, torch.Tensor]] = {}
        self._own_output_layers: dict[str, torch.Tensor] | None = None
        self.backend = backend
        self._apply_calibration(backend)
        # A word n-gram part (finetune.models.lexical) read beside the head, when the checkpoint has one.
        self.lexical: LexicalModel | None = LexicalModel.load(checkpoint.path)
        if self.lexical is not None and self.lexical.labels != self.labels:
            raise CheckpointError(f"{checkpoint.path}: the lexical part's labels differ from the model's; remove it "
                                  f"(agent finetune lexical {checkpoint.path} --remove) and fit it again")

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        encoder: Encoder | None = None,
        backend: str = "exact",
    ) -> TextClassifier:
        """Load a classifier directory.

        Args:
            model_dir: A checkpoint directory written by ``agent finetune intents|sentiment``.
            encoder: A loaded frozen encoder to share (it is copied, never changed, when the
                model carries a LoRA adapter). Loaded on first use when not given.
            backend: Where the head's circuits run (``exact``, ``aer:noise=fake_sherbrooke,shots=1024``…).
        """
        path = Path(model_dir)
        checkpoint = load_checkpoint(path, backend=backend)
        if checkpoint.task not in TASKS:
            raise CheckpointError(f"{path} holds a {checkpoint.task!r} model, not a text classifier")
        classifier = cls(checkpoint, backend=backend)
        if encoder is not None:
            classifier._attach(encoder)
        return classifier

    def encode(
        self, texts: Sequence[str], *, cache: FeatureCache | None = None, progress: bool = False
    ) -> torch.Tensor:
        """Sentence features ``[N, D]`` of this model's encoder (cached on disk when ``cache`` is given)."""
        if cache is not None:
            return cache.get_or_compute(self.encoder, list(texts), progress=progress)
        return self.encoder.encode(list(texts), progress=progress)

    @torch.no_grad()
    def logits(self, features: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """The head's raw logits ``[N, C]`` on its backend, before any calibration."""
        if features.ndim != 2 or features.shape[1] != self.head.config.in_features:
            raise ValueError(
                f"features must be [N, {self.head.config.in_features}], got {list(features.shape)}"
            )
        self.head.eval()
        device = module_device(self.head)
        chunks = [self.head(features[i : i + batch_size].to(device)).cpu() for i in range(0, len(features), batch_size)]
        return (torch.cat(chunks) if chunks else torch.zeros(0, len(self.labels))).float()

    def head_probabilities(self, features: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """The head's class probabilities ``[N, C]`` (labels in ``self.labels`` order) from sentence
        features, with the temperature of the backend's calibration when the model has one."""
        logits = self.logits(features, batch_size)
        if self.calibration is not None:
            logits = logits / self.calibration.temperature
        return torch.softmax(logits, dim=-1).numpy()

    def probabilities(self, features: torch.Tensor, batch_size: int = 256, *,
                      texts: Sequence[str] | None = None) -> np.ndarray:
        """Class probabilities ``[N, C]`` from sentence features: the head's, joined with the word
        n-gram part's when the model has one (it reads ``texts``, the texts of ``features``)."""
        probs = self.head_probabilities(features, batch_size)
        if self.lexical is None or self.lexical.weight == 0:
            return probs
        if texts is None:
            raise ValueError(f"{self.checkpoint.path} also reads each text's words (lexical.json): pass texts=")
        return self.lexical.fuse(probs, list(texts))

    def set_backend(self, backend: str) -> None:
        """Run the head's circuits elsewhere from now on, with that backend's calibration (if any)."""
        super().set_backend(backend)
        self.backend = backend
        self._apply_calibration(backend)

    def _apply_calibration(self, backend: str) -> None:
        found = self.calibrations.get(backend_key(backend)) if self.calibrations else None
        self._use_output_layers(found)
        self.calibration = found
        self.threshold = found.threshold if found is not None and found.threshold is not None else self.model_threshold
        if found is not None:
            logger.info(found.describe())

    def _use_output_layers(self, entry: Calibration | None) -> None:
        """The head's output layers for this backend: retrained ones when its calibration names
        them (read once, then kept), the checkpoint's own otherwise."""
        from finetune.models.noise_adapt import load_output_layers, output_layers, read_weights

        wanted = entry.head_weights if entry is not None else None
        if wanted == self._output_layers_in_use:
            return
        if self._own_output_layers is None:
            self._own_output_layers = output_layers(self.head)
        if wanted is None:
            load_output_layers(self.head, self._own_output_layers)
        else:
            if wanted not in self._adapted_output_layers:
                self._adapted_output_layers[wanted] = read_weights(self.checkpoint.path, wanted)
            try:
                load_output_layers(self.head, self._adapted_output_layers[wanted])
            except ValueError as exc:
                raise CheckpointError(f"{self.checkpoint.path / wanted}: {exc}; "
                                      "run agent finetune calibrate … --adapt-head again") from None
        self._output_layers_in_use = wanted

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[Prediction]:
        """Predict every text (empty strings are fine; long texts are truncated with a warning)."""
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts; wrap a single text in a list")
        if not texts:
            return []
        features = torch.cat(
            [self.encoder.encode(list(texts[i : i + batch_size])) for i in range(0, len(texts), batch_size)]
        )
        return self._predictions(self.probabilities(features, texts=texts))

    def predict_features(self, features: torch.Tensor, texts: Sequence[str] | None = None) -> list[Prediction]:
        """Predict from precomputed frozen sentence features ``[N, D]`` (one shared encoder pass);
        ``texts`` (those of ``features``) are needed when the model has a word n-gram part."""
        if not self.uses_frozen_encoder:
            raise ValueError("this model has a LoRA adapter: call predict(texts), not predict_features")
        return self.predict_encoded(features, texts)

    def predict_encoded(self, features: torch.Tensor, texts: Sequence[str] | None = None) -> list[Prediction]:
        """Predict from sentence features ``[N, D]`` of this model's own encoder, adapter included
        (e.g. a pass shared with a tagger trained on the same adapter); ``texts`` as in
        :meth:`predict_features`."""
        return self._predictions(self.probabilities(features, texts=texts))

    def decide(self, probs: np.ndarray) -> list[str]:
        """Labels for probability rows, abstaining (``out_of_scope``) below the threshold."""
        index = abstain(probs, self.labels, self.threshold)
        return [OUT_OF_SCOPE if i < 0 else self.labels[i] for i in index]

    def _predictions(self, probs: np.ndarray) -> list[Prediction]:
        out = []
        for row, label in zip(probs, self.decide(probs)):
            distribution = {name: float(p) for name, p in zip(self.labels, row)}
            out.append(Prediction(label, float(row.max()), distribution))
        return out

    def _check_encoder(self, encoder: Encoder) -> None:
        # Pooling and normalization shape the sentence features the head was fitted on, so they must match too.
        want, have = self.encoder_config, encoder.config
        if (want.model_id, want.pooling, want.normalize) != (have.model_id, have.pooling, have.normalize):
            raise CheckpointError(
                f"{self.checkpoint.path} was trained on encoder {want.model_id} "
                f"(pooling={want.pooling}, normalize={want.normalize}); the given encoder differs"
            )
        if encoder.has_adapter:
            raise CheckpointError("pass the plain (frozen) encoder; the model adds its own adapter")
