"""Run intents, entities, sentiment and topics together, with as few encoder passes as the models allow.

The assistant and the news monitor ask several models about every text (the assistant: intents,
entities and sentiment; the monitor: sentiment, entities and topics). This module is the one
place that decides which models share a pass (:func:`plan_passes`); callers run the plan, in turn
(:func:`analyze`) or with the passes that need no plain encoder on worker threads
(``agent.nlu.NLU``), and get the same :class:`Analysis` either way.

- Models trained on frozen features share one pass of the plain encoder. With a frozen tagger
  among them it is an :meth:`Encoder.encode_all` pass: sentence features for the classifiers and
  word features for the tagger at once.
- Models trained together on one LoRA adapter (:mod:`finetune.training.joint`) share one pass of
  that adapted encoder the same way: the tagger's, read by the classifiers that carry its adapter.
- Any other model with its own adapter computes different features, so it runs its own pass
  through ``predict`` (an ensemble runs one per member).

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

    def predict_features(self, features: torch.Tensor, texts: Sequence[str] | None = None) -> list[Any]: ...

    def predict_encoded(self, features: torch.Tensor, texts: Sequence[str] | None = None) -> list[Any]: ...

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
    topic: Any | None = None  # finetune.models.classifier.Prediction


PLAIN, SHARED, OWN = "plain", "shared", "own"
ROLES = ("intents", "entities", "sentiment", "topics")
# The sentence classifiers: any of them trained on the tagger's adapter reads the tagger's pass.
SENTENCE_ROLES = ("intents", "sentiment", "topics")


@dataclass(frozen=True)
class EncoderPass:
    """One pass over the texts and the models (by role) that read it.

    Attributes:
        kind: ``plain`` (the plain encoder), ``shared`` (the tagger's adapted encoder, read by the
            classifiers trained on the same adapter) or ``own`` (one model's own ``predict``).
        readers: The roles (``intents``, ``entities``, ``sentiment``, ``topics``) that read this pass.
        words: Whether the pass also computes word features (a tagger reads it).
    """

    kind: str
    readers: tuple[str, ...]
    words: bool = False


@dataclass(frozen=True)
class PassPlan:
    """The passes one batch of texts takes, the plain one first (None when nothing needs it)."""

    plain: EncoderPass | None
    others: tuple[EncoderPass, ...]

    @property
    def passes(self) -> tuple[EncoderPass, ...]:
        return ((self.plain,) if self.plain else ()) + self.others


def plan_passes(models: dict[str, Any], *, need_features: bool = False) -> PassPlan:
    """Decide which of ``models`` (``{role: model or None}``) share an encoder pass.

    Args:
        models: The intent classifier, entity tagger, sentiment and topic classifiers by role; None skips one.
        need_features: Run the plain pass even when no frozen model reads it (the caller wants
            its sentence features, e.g. as the knowledge-base query vector).
    """
    asked = {role: model for role, model in models.items() if model is not None}
    frozen = tuple(role for role in ROLES if role in asked and asked[role].uses_frozen_encoder)
    plain = None
    if frozen or need_features:
        plain = EncoderPass(PLAIN, frozen, words="entities" in frozen)
    others: list[EncoderPass] = []
    tagger = asked.get("entities")
    adapted = [role for role in ROLES if role in asked and role not in frozen]
    if tagger is not None and "entities" in adapted:
        joint = tuple(role for role in SENTENCE_ROLES if role in adapted
                      and asked[role].shares_encoder_with(tagger))
        if joint:
            others.append(EncoderPass(SHARED, ("entities", *joint), words=True))
            adapted = [role for role in adapted if role not in ("entities", *joint)]
    others += [EncoderPass(OWN, (role,), words=role == "entities") for role in adapted]
    return PassPlan(plain, tuple(others))


PassResult = tuple[dict[str, list[Any]], "torch.Tensor | None"]


def run_pass(step: EncoderPass, texts: list[str], models: dict[str, Any], encoder: Encoder) -> PassResult:
    """Run one pass over ``texts`` (non-empty); returns each reader's predictions by role, and the
    sentence features of a plain pass (None for the others)."""
    if step.kind == OWN:
        (role,) = step.readers
        return {role: models[role].predict(texts)}, None
    source = encoder if step.kind == PLAIN else models["entities"].encoder
    words: list[WordFeatures] | None = None
    if step.words:
        sentences, words = source.encode_all(texts, words=[words_with_offsets(t) for t in texts])
    else:  # no tagger reads this pass: word features would be computed for nothing
        sentences = source.encode(texts)
    out: dict[str, list[Any]] = {}
    for role in step.readers:
        model = models[role]
        if role == "entities":
            out[role] = model.predict_words(texts, words)
        elif step.kind == PLAIN:
            out[role] = model.predict_features(sentences, texts)
        else:
            out[role] = model.predict_encoded(sentences, texts)
    return out, sentences if step.kind == PLAIN else None


def assemble(n_texts: int, predictions: dict[str, list[Any]]) -> list[Analysis]:
    """One :class:`Analysis` per text from every pass's predictions by role."""
    none: list[Any] = [None] * n_texts
    entities = predictions.get("entities") or [[] for _ in range(n_texts)]
    return [Analysis(intent=i, entities=e, sentiment=s, topic=t)
            for i, e, s, t in zip(predictions.get("intents", none), entities, predictions.get("sentiment", none),
                                  predictions.get("topics", none))]


def analyze(
    texts: Sequence[str],
    *,
    encoder: Encoder,
    intents: SentenceModel | None = None,
    entities: WordModel | None = None,
    sentiment: SentenceModel | None = None,
    topics: SentenceModel | None = None,
) -> list[Analysis]:
    """Run the given models over ``texts``, one :class:`Analysis` per text.

    See :func:`analyze_with_features` for the arguments; this drops the shared features.
    """
    return analyze_with_features(texts, encoder=encoder, intents=intents, entities=entities, sentiment=sentiment,
                                 topics=topics)[0]


def analyze_with_features(
    texts: Sequence[str],
    *,
    encoder: Encoder,
    intents: SentenceModel | None = None,
    entities: WordModel | None = None,
    sentiment: SentenceModel | None = None,
    topics: SentenceModel | None = None,
    need_features: bool = False,
) -> tuple[list[Analysis], torch.Tensor | None]:
    """Like :func:`analyze`, and also return the plain encoder's sentence features ``[N, D]``.

    The assistant searches its knowledge base with the same frozen sentence vectors the frozen
    models read, so one encoder pass serves both (``None`` when no frozen model ran and
    ``need_features`` is False). The passes run one after the other, as :func:`plan_passes` planned.

    Args:
        texts: Raw texts; empty ones are fine, long ones are truncated with a logged warning.
        encoder: The plain (adapter-free) encoder the frozen models were loaded with; it runs
            once for all of them together.
        intents: Intent classifier, or None to skip.
        entities: Entity tagger, or None to skip.
        sentiment: Sentiment classifier, or None to skip.
        topics: Topic classifier (its prediction is :attr:`Analysis.topic`), or None to skip.
        need_features: Run the plain pass for its features even when no frozen model reads it.
    """
    texts = checked_texts(texts, encoder)
    models = {"intents": intents, "entities": entities, "sentiment": sentiment, "topics": topics}
    predictions: dict[str, list[Any]] = {}
    sentences = None
    if texts:
        for step in plan_passes(models, need_features=need_features).passes:
            found, features = run_pass(step, texts, models, encoder)
            predictions.update(found)
            sentences = features if features is not None else sentences
    return assemble(len(texts), predictions), sentences


def checked_texts(texts: Sequence[str], encoder: Encoder) -> list[str]:
    """``texts`` as a list, refusing a lone string and an encoder that carries an adapter."""
    if isinstance(texts, str):
        raise TypeError("analyze takes a list of texts; wrap a single text in a list")
    if encoder.has_adapter:
        raise ValueError("analyze needs the plain encoder; models with adapters run their own pass")
    return list(texts)
