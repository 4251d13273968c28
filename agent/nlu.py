"""Understanding one customer message: intent, entities and sentiment, in one call.

:class:`NLU` holds the three models and the plain encoder they share. Each message costs one
pass of each LoRA-adapted model (models trained together on one adapter, ``agent finetune joint``,
cost one pass together) plus one pass of the plain encoder, whose sentence vector also
serves the knowledge-base search (it is the vector the index was built with), so retrieval adds
no encoder pass of its own.

Messages are cut to ``max_chars`` before the models see them: a 20,000-character paste would
otherwise be truncated by the tokenizer anyway, after paying to tokenize it all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from finetune.models.tagger import Entity

OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class Understanding:
    """What the models say about one message.

    Attributes:
        text: The message as the models read it (cut to ``max_chars``).
        intent: Predicted intent, ``"out_of_scope"`` when the classifier abstains, None without a model.
        confidence: Probability of the top intent.
        alternatives: The three most likely in-scope intents with their probabilities, best first.
        entities: Entities found; offsets index into ``text``.
        sentiment: ``negative``/``neutral``/``positive`` or None.
        sentiment_score: Probability of that sentiment label.
        vector: The plain encoder's sentence vector (for retrieval), or None.
    """

    text: str
    intent: str | None = None
    confidence: float = 0.0
    alternatives: tuple[tuple[str, float], ...] = ()
    entities: tuple[Entity, ...] = ()
    sentiment: str | None = None
    sentiment_score: float = 0.0
    vector: torch.Tensor | None = field(default=None, repr=False, compare=False)

    @property
    def margin(self) -> float:
        """Gap between the two most likely in-scope intents (1.0 with fewer than two)."""
        if len(self.alternatives) < 2:
            return 1.0
        return self.alternatives[0][1] - self.alternatives[1][1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "intent": self.intent, "confidence": round(self.confidence, 4),
            "alternatives": [[name, round(p, 4)] for name, p in self.alternatives],
            "entities": [entity_dict(e) for e in self.entities],
            "sentiment": None if self.sentiment is None else {"label": self.sentiment, "score": round(self.sentiment_score, 4)},
        }


def entity_dict(entity: Entity) -> dict[str, Any]:
    return {"type": entity.type, "text": entity.text, "start": entity.start, "end": entity.end,
            "score": round(float(entity.score), 4)}


class NLU:
    """Runs the intent, entity and sentiment models over messages.

    Args:
        encoder: The plain (adapter-free) encoder; also embeds retrieval queries.
        intents: Intent classifier (``finetune.models.classifier.TextClassifier``) or None.
        entities: Entity tagger (``finetune.models.tagger.EntityTagger``) or None.
        sentiment: Sentiment classifier or None.
        max_chars: Longer messages are cut to this many characters before the models run.
    """

    def __init__(self, encoder: Any, intents: Any = None, entities: Any = None, sentiment: Any = None,
                 *, max_chars: int = 2000, parallel: bool = True) -> None:
        if max_chars < 1:
            raise ValueError(f"max_chars must be >= 1, got {max_chars}")
        self.encoder, self.intents, self.entities, self.sentiment = encoder, intents, entities, sentiment
        self.max_chars = max_chars
        self.parallel = parallel
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def load(cls, *, intents_dir: str | Path | None = None, entities_dir: str | Path | None = None,
             sentiment_dir: str | Path | None = None, backend: str = "exact", encoder: Any = None,
             device: str = "cpu") -> NLU:
        """Load the shipped models (or the given checkpoint directories) around one shared encoder.

        The default sentiment model is :data:`agent.shipped.CHAT_SENTIMENT_MODEL`; ``sentiment_dir`` may also name an
        ensemble folder (:mod:`finetune.models.ensemble`). ``device`` (``cpu``, ``cuda``; already
        resolved) is where the encoder and heads run.
        """
        from finetune.models.encoder import Encoder
        from agent.shipped import CHAT_SENTIMENT_MODEL, INTENTS_MODEL, NER_MODEL
        from finetune.models.loading import load_classifier, load_tagger

        encoder = (encoder if encoder is not None else Encoder.load()).to(device)
        return cls(
            encoder,
            intents=load_classifier(intents_dir or INTENTS_MODEL, task="intents", encoder=encoder, backend=backend).to(device),
            entities=load_tagger(entities_dir or NER_MODEL, encoder=encoder, backend=backend).to(device),
            sentiment=load_classifier(sentiment_dir or CHAT_SENTIMENT_MODEL, task="sentiment", encoder=encoder,
                                      backend=backend).to(device),
        )

    def understand(self, message: str) -> Understanding:
        """Understand one message (empty or whitespace-only gives an empty :class:`Understanding`)."""
        return self.understand_batch([message])[0]

    @torch.no_grad()
    def understand_batch(self, messages: Sequence[str]) -> list[Understanding]:
        """Understand many messages with batched model passes."""
        if isinstance(messages, str):
            raise TypeError("understand_batch takes a list of messages")
        texts = [(m or "")[: self.max_chars] for m in messages]
        live = [i for i, t in enumerate(texts) if t.strip()]
        out = [Understanding(text=t) for t in texts]
        if not live:
            return out
        analyses, vectors = self._analyze([texts[i] for i in live])
        for row, (i, analysis) in enumerate(zip(live, analyses)):
            out[i] = _understanding(texts[i], analysis, None if vectors is None else vectors[row])
        return out

    def _analyze(self, texts: list[str]) -> tuple[list[Any], torch.Tensor | None]:
        """Run the pass plan (:func:`finetune.models.passes.plan_passes`) over ``texts``.

        With ``parallel``, every pass but the plain one runs on a worker thread while this thread
        runs the plain pass: torch releases the GIL inside its kernels, so on a 2-core machine with
        one torch thread per pass the passes overlap instead of queueing."""
        from finetune.models.passes import analyze_with_features, assemble, checked_texts, plan_passes, run_pass

        models = {"intents": self.intents, "entities": self.entities, "sentiment": self.sentiment}
        plan = plan_passes(models, need_features=True)
        if not (self.parallel and plan.others):
            return analyze_with_features(texts, encoder=self.encoder, need_features=True, **models)
        texts = checked_texts(texts, self.encoder)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qagent-nlu")
        futures = [self._pool.submit(_no_grad(run_pass), step, texts, models, self.encoder) for step in plan.others]
        predictions, vectors = run_pass(plan.plain, texts, models, self.encoder) if plan.plain else ({}, None)
        for future in futures:
            predictions.update(future.result()[0])
        return assemble(len(texts), predictions), vectors


def _no_grad(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``function`` without autograd: grad mode is per thread, so workers must set it themselves."""

    def run(*args: Any) -> Any:
        with torch.no_grad():
            return function(*args)

    return run


def _understanding(text: str, analysis: Any, vector: torch.Tensor | None) -> Understanding:
    intent, confidence, alternatives = None, 0.0, ()
    if analysis.intent is not None:
        intent, confidence = analysis.intent.label, analysis.intent.confidence
        ranked = sorted(((k, v) for k, v in analysis.intent.probs.items() if k != OUT_OF_SCOPE),
                        key=lambda kv: -kv[1])
        alternatives = tuple(ranked[:3])
    sentiment, sentiment_score = None, 0.0
    if analysis.sentiment is not None:
        sentiment, sentiment_score = analysis.sentiment.label, analysis.sentiment.confidence
    return Understanding(text, intent, confidence, alternatives, tuple(analysis.entities), sentiment,
                         sentiment_score, vector)
