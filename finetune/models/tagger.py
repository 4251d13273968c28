"""Entity tagging: the model a caller loads once and asks for character-offset entities.

A trained tagger is a checkpoint directory (see :mod:`finetune.models.checkpoint`) with task ``ner``: a
head over word features (each word's first sub-token, words from
:func:`finetune.data.tagging.words_with_offsets`), the BIO tag list as its labels, and optionally a
LoRA adapter of the encoder. Training lives in :mod:`finetune.training.tagger`.

Usage::

    tagger = EntityTagger.load("agent/assets/models/ner")   # the shipped tagger (NLU++ banking slots)
    tagger.predict(["send 20 pounds to Anna tomorrow"])[0]
    # [Entity(type='amount_of_money', text='20 pounds', start=5, end=14, score=0.97), ...]

Decoding is constrained Viterbi over the tag probabilities (an ``I-x`` may only follow ``B-x`` or
``I-x``), so every decoded sequence is valid IOB2 and no entity is half-read. A checkpoint may
add a tag-transition prior fitted on its training data (:mod:`finetune.models.tag_transitions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from finetune.models.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from finetune.models.encoder import Encoder, WordFeatures
from finetune.models.device import module_device
from finetune.models.heads import Head
from finetune.models.base import CheckpointModel
from finetune.models.tag_transitions import TransitionPrior, constrained_decode, load_prior
from finetune.data.tagging import Word, words_with_offsets

TASK = "ner"
IGNORE = -100  # label of words the loss skips: padding, and words with no sub-token of their own


@dataclass(frozen=True)
class Entity:
    """One entity found in a text; ``text == original[start:end]``."""

    type: str
    text: str
    start: int
    end: int
    score: float


def bio_tags(entity_types: Sequence[str]) -> list[str]:
    """The tag set of a tagger, in logit order: ``O``, then ``B-x``, ``I-x`` for each type."""
    return ["O"] + [f"{prefix}-{kind}" for kind in entity_types for prefix in "BI"]


def decode_entities(
    text: str, words: Sequence[Word], probs: np.ndarray, tags: Sequence[str], all_words: Sequence[Word] = (),
    prior: TransitionPrior | None = None,
) -> list[Entity]:
    """Entities of ``text`` from per-word tag probabilities ``[len(words), C]``.

    ``all_words`` are the text's words including those without a feature of their own (``th`` of
    ``5th`` shares the sub-token of ``5``): an entity grows over such words glued to its end, so
    it covers the whole token the model saw. The score is the mean probability of the entity's tags.
    """
    path = constrained_decode(np.log(np.clip(probs, 1e-12, None)), tags, prior)
    featured = {start for _, start, _ in words}
    glued = {start: end for _, start, end in all_words if start not in featured}
    out: list[Entity] = []
    i = 0
    while i < len(path):
        tag = tags[path[i]]
        if not tag.startswith("B-"):
            i += 1
            continue
        j = i + 1
        while j < len(path) and tags[path[j]] == f"I-{tag[2:]}":
            j += 1
        start, end = words[i][1], words[j - 1][2]
        while end in glued:
            end = glued[end]
        score = float(np.mean([probs[k, path[k]] for k in range(i, j)]))
        out.append(Entity(tag[2:], text[start:end], start, end, score))
        i = j
    return out


def gather_words(hidden: torch.Tensor, word_index: torch.Tensor, n_words: int) -> torch.Tensor:
    """Word features ``[B, n_words, D]`` from token states ``[B, T, D]`` (zeros for words with no token)."""
    out = hidden.new_zeros(hidden.shape[0], n_words, hidden.shape[-1])
    word_index = word_index.to(hidden.device)  # the tokenizer's index is on the CPU
    rows, cols = ((word_index >= 0) & (word_index < n_words)).nonzero(as_tuple=True)
    return out.index_put((rows, word_index[rows, cols]), hidden[rows, cols])


class EncodedTagger(nn.Module):
    """Encoder + head on ``(text, words)`` pairs, for LoRA training: logits ``[B, C, n_words]``.

    The class axis comes second so ``nn.CrossEntropyLoss`` reads the ``[B, n_words]`` labels directly.
    """

    def __init__(self, encoder: Encoder, head: Head, n_words: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.n_words = n_words

    def forward(self, items: Sequence[tuple[str, list[Word]]]) -> torch.Tensor:
        texts, words = [text for text, _ in items], [w for _, w in items]
        batch = self.encoder.tokenize(texts, words=words)
        _, hidden = self.encoder(batch)
        return self.head(gather_words(hidden, batch["word_index"], self.n_words)).transpose(1, 2)


class EntityTagger(CheckpointModel):
    """A loaded entity tagger; build one with :meth:`load`.

    ``predict`` runs the encoder; ``predict_words`` takes word features of a shared frozen
    encoder pass (see :func:`finetune.models.passes.analyze`).
    """

    def __init__(self, checkpoint: Checkpoint, encoder: Encoder | None = None) -> None:
        if checkpoint.task != TASK:
            raise CheckpointError(f"{checkpoint.path} holds a {checkpoint.task!r} model, not an entity tagger")
        tags = list(checkpoint.labels)
        if any(t != "O" and t[:2] not in ("B-", "I-") for t in tags) or tags[0] != "O":
            raise CheckpointError(f"{checkpoint.path}: labels.json must list BIO tags starting with 'O'")
        super().__init__(checkpoint, encoder)
        self.tags: list[str] = tags
        self.entity_types: list[str] = sorted({t[2:] for t in self.tags if t != "O"})
        try:
            self.prior: TransitionPrior | None = load_prior(checkpoint.path, tags)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from exc

    @classmethod
    def load(
        cls, model_dir: str | Path, *, encoder: Encoder | None = None, backend: str = "exact"
    ) -> EntityTagger:
        """Load a tagger directory.

        Args:
            model_dir: A checkpoint directory written by ``agent finetune ner``.
            encoder: A loaded plain encoder to share (copied, never changed, when the model carries
                a LoRA adapter). Loaded on first use when not given.
            backend: Where the head's circuits run (``exact``, ``aer:shots=1024``…).
        """
        tagger = cls(load_checkpoint(Path(model_dir), backend=backend))
        if encoder is not None:
            tagger._attach(encoder)
        return tagger

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> list[WordFeatures]:
        """Word features of this model's encoder, over :func:`words_with_offsets` words."""
        return self.encoder.encode_words(list(texts), words=[words_with_offsets(t) for t in texts], progress=progress)

    def predict(self, texts: Sequence[str], *, progress: bool = False) -> list[list[Entity]]:
        """Entities of every text. Empty texts give ``[]``; words past ``max_length`` sub-tokens
        are cut off (the encoder logs a warning) and can hold no entity."""
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts; wrap a single text in a list")
        return self.predict_words(texts, self.encode(texts, progress=progress))

    def predict_words(self, texts: Sequence[str], word_features: Sequence[WordFeatures]) -> list[list[Entity]]:
        """Entities from word features computed elsewhere (one shared encoder pass).

        The features must come from ``encode_words``/``encode_all`` over
        ``words_with_offsets(text)`` of the same texts, on this model's encoder.
        """
        if len(texts) != len(word_features):
            raise ValueError(f"got {len(word_features)} word features for {len(texts)} texts")
        probs = self.word_probabilities(word_features)
        return [decode_entities(text, wf.words, rows, self.tags, words_with_offsets(text), self.prior) if len(rows) else []
                for text, wf, rows in zip(texts, word_features, probs)]

    def tag_probabilities(self, texts: Sequence[str], *, progress: bool = False) -> list[tuple[list[Word], np.ndarray]]:
        """Per text: the words that got a feature, and their tag probabilities ``[n_words, C]``
        (``self.tags`` order), before decoding. What an ensemble averages and the prior is fitted on."""
        features = self.encode(texts, progress=progress)
        return [(wf.words, rows) for wf, rows in zip(features, self.word_probabilities(features))]

    @torch.no_grad()
    def word_probabilities(self, word_features: Sequence[WordFeatures]) -> list[np.ndarray]:
        """Tag probabilities ``[n_words, C]`` of each text's word features."""
        sizes = [len(wf.words) for wf in word_features]
        if not sum(sizes):
            return [np.zeros((0, len(self.tags)), dtype=np.float32) for _ in word_features]
        features = torch.cat([wf.features for wf in word_features if len(wf.words)])
        if features.shape[-1] != self.head.config.in_features:
            raise ValueError(f"word features must have width {self.head.config.in_features}, got {features.shape[-1]}")
        self.head.eval()
        device = module_device(self.head)
        probs = torch.cat([torch.softmax(self.head(chunk.to(device)).float(), -1).cpu()
                           for chunk in features.split(1024)]).numpy()
        return np.split(probs, np.cumsum(sizes)[:-1])

    def _check_encoder(self, encoder: Encoder) -> None:
        # Word features are token states, taken before pooling and normalization: only the model must match.
        want = self.encoder_config
        if want.model_id != encoder.config.model_id or encoder.has_adapter:
            raise CheckpointError(
                f"{self.checkpoint.path} was trained on the plain encoder {want.model_id}; "
                f"the given encoder is {encoder.fingerprint}"
            )
