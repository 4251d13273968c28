"""Score news items: sentiment of the headline and of the body's sentences, who is named, and the topic.

:class:`ModelScorer` runs the shipped sentiment classifier, entity tagger and topic classifier
(through :func:`finetune.models.passes.analyze`, one batched call for a whole batch of items; models
trained on one adapter share one encoder pass) and the watch-list matcher. Engines only need the :class:`Scorer` protocol, so unit tests can hand in a
fake; the integration tests use the real models.

Per item:

* ``headline``: the classifier on the title;
* ``body``: the classifier on each of the body's first ``max_sentences`` sentences, probabilities
  averaged;
* ``overall``: ``headline_weight`` × headline + the rest × body (the headline alone without a body).
  Alerts count an item as negative when ``overall.label`` is ``negative``.
* ``topic``: the topic classifier's label of the headline and its probability (None without a
  topic model). Body sentences do not vote: the model learnt topics from headlines, a body's
  later sentences drift to background (markets, quotes) that would outvote the story's subject,
  and the headline is what a reader files a story under.

``score`` is P(positive) − P(negative), in [-1, 1]. Probabilities are rounded to 4 decimals: what
the store keeps, and what makes two engines' rows compare equal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from agent.monitor.items import FeedItem
from agent.monitor.watchlist import Mention, Watchlist, merge_mentions
from agent.shipped import NEWS_NER_MODEL, NEWS_SENTIMENT_MODEL, NEWS_TOPICS_MODEL

LABELS = ("negative", "neutral", "positive")
DIGITS = 4
# Abbreviations that end in a full stop without ending the sentence, common in business news.
_ABBREVIATIONS = re.compile(r"(?:\b(?:Inc|Corp|Co|Ltd|Plc|LLC|Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|No|approx|est|Jan|Feb|Mar|Apr|"
                            r"Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)|\b[A-Z](?:\.[A-Z])*)\.$")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"”’)]*\s+(?=[\"“'(\[]?[A-Z0-9$])")
_MAX_SENTENCE_CHARS = 600  # ~128 sub-tokens, what the encoder reads; longer sentences are cut there anyway


@dataclass(frozen=True)
class ScoringConfig:
    """How items are scored.

    Attributes:
        body: Score the body's sentences too (False: headline only).
        max_sentences: Body sentences read per item (leads carry the story; long bodies cost time).
        tag_body: Run the entity tagger on the body's sentences too (the watch-list always reads the
            whole body). Off by default: the tagger is the costlier model and finds mostly names
            the headline already gave.
        headline_weight: Share of the headline in the overall sentiment when there is a body.
        min_entity_score: Tagger entities below this mean tag probability are ignored.
        sentiment_model: Sentiment checkpoint directory, or ``default`` (the news sentiment model).
        ner_model: Entity-tagger checkpoint directory, ``default`` (the news tagger, trained with
            the news sentiment model on one shared adapter: one encoder pass for both), or
            ``none`` (watch-list only). ``agent/assets/models/ner`` is the assistant's stand-alone tagger.
        topic_model: Topic-classifier checkpoint directory, ``default`` (the news topic model,
            trained on the news pair's adapter: it reads the same encoder pass) or ``none``. When
            the default model is not installed, items are scored without a topic.
        threads: Threads of this process's models (None: one per core, fastest on an idle
            machine; 1 degrades least on a machine busy with other work; BENCHMARKS.md).
        runtime: Where the encoder passes run: ``onnx-int8`` (ONNX Runtime with int8 weights;
            fastest, its accuracy is measured in BENCHMARKS.md), ``onnx`` (float32, the torch
            numbers) or ``torch``.
        encoder_batch_size: Texts per encoder pass. Headlines are short; batches of 32 (sorted
            by length) scored about 20 % faster than 64 here (BENCHMARKS.md).
        device: Where the torch encoder and the heads run: ``cpu`` or ``cuda`` (resolved by
            :func:`finetune.models.device.resolve_device`). The ONNX runtimes run on the CPU only.
    """

    body: bool = True
    max_sentences: int = 8
    tag_body: bool = False
    headline_weight: float = 0.5
    min_entity_score: float = 0.5
    sentiment_model: str = "default"
    ner_model: str = "default"
    topic_model: str = "default"
    threads: int | None = None
    runtime: str = "onnx-int8"
    encoder_batch_size: int = 32
    device: str = "cpu"

    def __post_init__(self) -> None:
        from finetune.models.encoder import RUNTIMES

        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}; got {self.runtime!r}")
        for name in ("sentiment_model", "ner_model", "topic_model"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"{name} must be a checkpoint folder, 'default' or 'none'; got an empty value")
        if self.device != "cpu" and self.runtime != "torch":
            raise ValueError(f"the {self.runtime} runtime runs on the CPU; use --runtime torch with --device {self.device}")
        if self.max_sentences < 1:
            raise ValueError(f"max_sentences must be >= 1, got {self.max_sentences}")
        if not 0.0 <= self.headline_weight <= 1.0:
            raise ValueError(f"headline_weight must be in [0, 1], got {self.headline_weight}")
        if not 0.0 <= self.min_entity_score <= 1.0:
            raise ValueError(f"min_entity_score must be in [0, 1], got {self.min_entity_score}")
        if self.encoder_batch_size < 1:
            raise ValueError(f"encoder_batch_size must be >= 1, got {self.encoder_batch_size}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoringConfig:
        return cls(**data)


@dataclass(frozen=True)
class Sentiment:
    """A sentiment verdict: label, signed score P(pos) − P(neg), and the three probabilities."""

    label: str
    score: float
    probs: dict[str, float]

    @classmethod
    def from_probs(cls, probs: dict[str, float]) -> Sentiment:
        probs = {k: round(float(probs.get(k, 0.0)), DIGITS) for k in LABELS}
        label = max(LABELS, key=lambda k: probs[k])
        return cls(label, round(probs["positive"] - probs["negative"], DIGITS), probs)


@dataclass(frozen=True)
class Topic:
    """A learned topic of a headline: the topic classifier's label and its probability."""

    label: str
    probability: float


@dataclass(frozen=True)
class ItemScore:
    """Everything scored about one item."""

    item_id: str
    headline: Sentiment
    overall: Sentiment
    body: Sentiment | None = None
    body_sentences: int = 0
    mentions: tuple[Mention, ...] = field(default_factory=tuple)
    topic: Topic | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ItemScore:
        return cls(
            item_id=data["item_id"], headline=Sentiment(**data["headline"]), overall=Sentiment(**data["overall"]),
            body=Sentiment(**data["body"]) if data.get("body") else None, body_sentences=int(data["body_sentences"]),
            mentions=tuple(Mention(**m) for m in data["mentions"]),
            topic=Topic(**data["topic"]) if data.get("topic") else None,
        )


class Scorer(Protocol):
    """What an engine needs: scores for a batch of items, in order."""

    def score(self, items: Sequence[FeedItem]) -> list[ItemScore]: ...


def split_sentences(text: str) -> list[str]:
    """Sentences of a news body (full stops after Inc., U.S., initials and months do not split)."""
    parts: list[str] = []
    for piece in _SENTENCE_BREAK.split(text.strip()):
        piece = piece.strip()
        if not piece:
            continue
        if parts and _ABBREVIATIONS.search(parts[-1]):
            parts[-1] = f"{parts[-1]} {piece}"
        else:
            parts.append(piece)
    return [p[:_MAX_SENTENCE_CHARS] for p in parts]


class ModelScorer:
    """Scores items with a sentiment classifier, an optional entity tagger, an optional topic
    classifier and a watch-list.

    Args:
        encoder: The plain encoder the frozen models share.
        sentiment: A :class:`finetune.models.classifier.TextClassifier` whose labels include negative,
            neutral and positive.
        tagger: A :class:`finetune.models.tagger.EntityTagger`, or None for watch-list matching only.
        watchlist: Companies and topics to find.
        config: Scoring settings.
        topics: A :class:`~finetune.models.classifier.TextClassifier` of topics, or None for none.
    """

    def __init__(self, encoder: Any, sentiment: Any, tagger: Any | None, watchlist: Watchlist,
                 config: ScoringConfig | None = None, topics: Any | None = None) -> None:
        missing = set(LABELS) - set(sentiment.labels)
        if missing:
            raise ValueError(f"the sentiment model's labels {sentiment.labels} lack {sorted(missing)}")
        self.encoder, self.sentiment, self.tagger, self.topics = encoder, sentiment, tagger, topics
        self.watchlist = watchlist
        self.config = config or ScoringConfig()

    def score(self, items: Sequence[FeedItem]) -> list[ItemScore]:
        """Score ``items`` in one batched model call; returns one :class:`ItemScore` per item, in order."""
        from finetune.models.passes import analyze

        sentences = [self._body_sentences(item) for item in items]
        # Identical texts (syndicated headlines, boilerplate lines) are scored once.
        titles = list(dict.fromkeys(item.title for item in items))
        known = set(titles)
        body = [s for s in dict.fromkeys(s for ss in sentences for s in ss) if s not in known]
        tagged = titles + body if self.config.tag_body else titles
        # Headlines (and, with tag_body, body sentences) in one call: topic, sentiment and entities
        # read one encoder pass when their models share an adapter.
        by_text = dict(zip(tagged, analyze(tagged, encoder=self.encoder, sentiment=self.sentiment, entities=self.tagger,
                                           topics=self.topics)))
        if not self.config.tag_body and body:
            by_text.update(zip(body, analyze(body, encoder=self.encoder, sentiment=self.sentiment)))
        return [self._item_score(item, ss, by_text) for item, ss in zip(items, sentences)]

    def _body_sentences(self, item: FeedItem) -> list[str]:
        if not self.config.body or not item.body:
            return []
        title = item.title.casefold().strip(" .")
        kept = [s for s in split_sentences(item.body) if s.casefold().strip(" .") != title]
        return kept[: self.config.max_sentences]

    def _item_score(self, item: FeedItem, sentences: list[str], by_text: dict[str, Any]) -> ItemScore:
        headline = Sentiment.from_probs(by_text[item.title].sentiment.probs)
        body = None
        if sentences:
            mean = {k: sum(by_text[s].sentiment.probs.get(k, 0.0) for s in sentences) / len(sentences) for k in LABELS}
            body = Sentiment.from_probs(mean)
            w = self.config.headline_weight
            overall = Sentiment.from_probs({k: w * headline.probs[k] + (1 - w) * body.probs[k] for k in LABELS})
        else:
            overall = headline
        mentions = [replace(m, field="title") for m in self.watchlist.find(item.title)]
        mentions += self._tagged(item.title, by_text[item.title].entities, mentions, "title")
        if item.body:
            body_mentions = [replace(m, field="body") for m in self.watchlist.find(item.body)]
            mentions += body_mentions
            offset = 0
            for sentence in sentences if self.config.tag_body else []:
                start = item.body.find(sentence[:80], offset)
                base = start if start >= 0 else offset
                shifted = [replace(e, start=e.start + base, end=e.end + base) for e in by_text[sentence].entities]
                mentions += self._tagged(item.body, shifted, body_mentions, "body")
                offset = base
        found = by_text[item.title].topic
        topic = None if found is None else Topic(found.label, round(float(found.confidence), DIGITS))
        return ItemScore(item.id, headline, overall, body, len(sentences), tuple(merge_mentions(mentions)), topic)

    def _tagged(self, text: str, entities: Sequence[Any], found: Sequence[Mention], where: str) -> list[Mention]:
        """Tagger company names not already found by the watch-list at an overlapping span."""
        out = []
        for entity in entities:
            if entity.type != "company_name" or entity.score < self.config.min_entity_score:
                continue
            if any(m.kind == "company" and m.start < entity.end and entity.start < m.end for m in found):
                continue
            name = _clean_name(entity.text)
            if not name:
                continue
            canonical = self.watchlist.canonical(name)
            ticker = self.watchlist.company(canonical).ticker if canonical else ""
            out.append(Mention("company", canonical or name, entity.text, entity.start, entity.end, "tagger", ticker,
                               round(float(entity.score), DIGITS), where))
        return out


def _clean_name(text: str) -> str:
    """The tagger's span as a company key: possessive and surrounding punctuation dropped."""
    name = re.sub(r"['’]s?$", "", text.strip())
    return " ".join(name.strip(" \t,.;:!?\"'()[]-–—").split())


# The monitor's default models: a sentiment classifier and a tagger trained together on one
# adapter, so a headline takes one encoder pass for both (BENCHMARKS.md, "News monitor"). The
# assistant keeps its own pair (agent/assets/models/chat-sentiment and ner): its stand-alone tagger is
# steadier on chat messages, and its frozen sentiment head shares the pass retrieval needs anyway.
# The most accurate sentiment model, agent/assets/models/sentiment (an ensemble of two LoRA models),
# is one --sentiment-model away at two extra passes a headline.
NEWS_SENTIMENT_DIR = NEWS_SENTIMENT_MODEL
NEWS_TAGGER_DIR = NEWS_NER_MODEL
NEWS_TOPICS_DIR = NEWS_TOPICS_MODEL


def model_dir(name: str, default: Path) -> Path:
    """A model option's directory: ``default`` for the word ``default``, else the path given."""
    return default if name == "default" else Path(name)


def topic_model_dir(config: ScoringConfig) -> Path | None:
    """The topic model ``config`` names, or None: ``none``, or ``default`` while the default model is
    not installed (items are then scored without a topic; :func:`topics_note` says so)."""
    if config.topic_model == "none":
        return None
    path = model_dir(config.topic_model, NEWS_TOPICS_DIR)
    if config.topic_model == "default" and not (path / "config.json").is_file():
        return None
    return path


def topic_labels(config: ScoringConfig) -> list[str] | None:
    """The labels the topic model of ``config`` gives (its ``labels.json``), or None without one."""
    import json

    path = topic_model_dir(config)
    if path is None or not (path / "labels.json").is_file():
        return None
    return [str(label) for label in json.loads((path / "labels.json").read_text(encoding="utf-8"))]


def topics_note(config: ScoringConfig) -> str | None:
    """One line to show once per run when the default topic model is missing, else None."""
    if config.topic_model == "default" and topic_model_dir(config) is None:
        return (f"note: no topic model at {NEWS_TOPICS_DIR}; scoring without topics "
                "(give --topic-model DIR, or --topic-model none to silence this)")
    return None


def load_scorer(config: ScoringConfig, watchlist: Watchlist) -> ModelScorer:
    """Load the encoder and models named in ``config`` (from local files) into a :class:`ModelScorer`."""
    import torch

    from finetune.models.encoder import Encoder
    from finetune.models.loading import load_classifier, load_tagger

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    encoder = Encoder.load().to(config.device)
    sentiment = load_classifier(model_dir(config.sentiment_model, NEWS_SENTIMENT_DIR), task="sentiment",
                                encoder=encoder).to(config.device)
    tagger = None
    if config.ner_model != "none":
        tagger = load_tagger(model_dir(config.ner_model, NEWS_TAGGER_DIR), encoder=encoder).to(config.device)
    topics = None
    topics_dir = topic_model_dir(config)
    if topics_dir is not None:
        topics = load_classifier(topics_dir, encoder=encoder).to(config.device)
    # The encoders the models run on (a frozen model's is the plain one), each set up once. A topic
    # model on the tagger's adapter only ever reads the tagger's pass: its own copy never runs.
    running = [sentiment, tagger]
    if topics is not None and not (tagger is not None and topics.shares_encoder_with(tagger)):
        running.append(topics)
    for model_encoder in {id(e): e for m in running if m is not None for e in m.encoders}.values():
        model_encoder.config.batch_size = config.encoder_batch_size
        model_encoder.use_runtime(config.runtime)
    return ModelScorer(encoder, sentiment, tagger, watchlist, config, topics)
