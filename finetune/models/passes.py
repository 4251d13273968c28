"""Run intents, entities and sentiment together, with as few encoder passes as the models allow.

The assistant and the news monitor ask all three models about every text. Models trained on
frozen features share one :meth:`Encoder.encode_all` pass, which yields sentence features (for
the classifiers) and word features (for the tagger) at once. Models trained together on one
LoRA adapter (:mod:`finetune.training.joint`) share one pass of that adapted encoder the same way. Any other model with its own adapter computes
different features and so runs its own pass through ``predict``.

Usage::

    encoder = Encoder.load()
    intents = TextClassifier.load("agent/assets/models/intents", encoder=encoder)
    sentiment = TextClassifier.load("agent/assets/models/chat-sentiment", encoder=encoder)
    entities = EntityTagger.load("agent/assets/models/ner", encoder=encoder)
    analyze(["Send 20 pounds to Anna"], encoder=encoder, intents=intents, entities=entities, sentiment=sentiment)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from finetune.models.encoder import Encoder, WordFeatures
from finetune.models.tagger import Entity
from finetune.data.tagging import words_with_offsets


class SentenceModel(Protocol):
    """What ``analyze`` needs of a text classifier (:class:`finetune.models.classifier.TextClassifier`)."""

    uses_frozen_encoder: bool

    def predict(self, texts: Sequence[str]) -> list[Any]: ...

    def predict_features(self, features: torch.Tensor) -> list[Any]: ...

    def predict_encoded(self, features: torch.Tensor) -> list[Any]: ...

    def shares_encoder_with(self, other: Any) -> bool: ...


class WordModel(Protocol):
    """What ``analyze`` needs of an entity tagger (:class:`finetune.models.tagger.EntityTagger`)."""

    uses_frozen_encoder: bool
    encoder: Encoder

    def predict(self, texts: Sequence[str]) -> list[list[Entity]]: ...

    def predict_words(self, texts: Sequence[str], word_features: Sequence[WordFeatures]) -> list[list[Entity]]: ...


@dataclass(frozen=True)
class Analysis:
    """Everything the NLU models say about one text; a model not asked gives None (or no entities)."""

    intent: Any | None = None  # finetune.models.classifier.Prediction
    entities: list[Entity] = field(default_factory=list)
    sentiment: Any | None = None  # finetune.models.classifier.Prediction


def analyze(
    texts: Sequence[str],
    *,
    encoder: Encoder,
    intents: SentenceModel | None = None,
    entities: WordModel | None = None,
    sentiment: SentenceModel | None = None,
) -> list[Analysis]:
    """Run the given models over ``texts``, one :class:`Analysis` per text.

    See :func:`analyze_with_features` for the arguments; this drops the shared features.
    """
    return analyze_with_features(texts, encoder=encoder, intents=intents, entities=entities, sentiment=sentiment)[0]


def analyze_with_features(
    texts: Sequence[str],
    *,
    encoder: Encoder,
    intents: SentenceModel | None = None,
    entities: WordModel | None = None,
    sentiment: SentenceModel | None = None,
    need_features: bool = False,
) -> tuple[list[Analysis], torch.Tensor | None]:
    """Like :func:`analyze`, and also return the plain encoder's sentence features ``[N, D]``.

    The assistant searches its knowledge base with the same frozen sentence vectors the frozen
    models read, so one encoder pass serves both (``None`` when no frozen model ran and
    ``need_features`` is False).

    Args:
        texts: Raw texts; empty ones are fine, long ones are truncated with a logged warning.
        encoder: The plain (adapter-free) encoder the frozen models were loaded with; it runs
            once for all of them together.
        intents: Intent classifier, or None to skip.
        entities: Entity tagger, or None to skip.
        sentiment: Sentiment classifier, or None to skip.
    """
    if isinstance(texts, str):
        raise TypeError("analyze takes a list of texts; wrap a single text in a list")
    texts = list(texts)
    if encoder.has_adapter:
        raise ValueError("analyze needs the plain encoder; models with adapters run their own pass")
    models = [m for m in (intents, entities, sentiment) if m is not None]
    sentences: torch.Tensor | None = None
    words: list[WordFeatures] | None = None
    if texts and (need_features or any(m.uses_frozen_encoder for m in models)):
        if entities is not None and entities.uses_frozen_encoder:
            sentences, words = encoder.encode_all(texts, words=[words_with_offsets(t) for t in texts])
        else:  # no frozen tagger: word features would be computed for nothing
            sentences = encoder.encode(texts)
    # Classifiers trained on the tagger's own adapter read the tagger's pass.
    joint = [m for m in (intents, sentiment) if m is not None and entities is not None
             and not entities.uses_frozen_encoder and m.shares_encoder_with(entities)]
    joint_sentences: torch.Tensor | None = None
    joint_words: list[WordFeatures] | None = None
    if texts and joint:
        joint_sentences, joint_words = entities.encoder.encode_all(texts, words=[words_with_offsets(t) for t in texts])

    def sentence_model(model: SentenceModel | None) -> list[Any]:
        if model is None:
            return [None] * len(texts)
        if not texts:
            return []
        if model in joint:
            return model.predict_encoded(joint_sentences)
        return model.predict_features(sentences) if model.uses_frozen_encoder else model.predict(texts)

    if entities is None or not texts:
        found: list[list[Entity]] = [[] for _ in texts]
    elif entities.uses_frozen_encoder:
        found = entities.predict_words(texts, words)
    elif joint_words is not None:
        found = entities.predict_words(texts, joint_words)
    else:
        found = entities.predict(texts)
    analyses = [
        Analysis(intent=i, entities=e, sentiment=s)
        for i, e, s in zip(sentence_model(intents), found, sentence_model(sentiment))
    ]
    return analyses, sentences
