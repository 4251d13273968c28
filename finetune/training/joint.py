"""Train the sentiment classifier and the entity tagger together, on one shared LoRA adapter.

The news monitor and the assistant ask both models about every text. Trained apart, each model
has its own adapter and so its own encoder pass; trained together, they share one adapter, and
:func:`finetune.models.passes.analyze` runs the encoder once for both. Fine-tuning the encoder on
sentiment is also what lifts it past frozen features (0.81 on the finance tweets).
Without help the tweets give the shared adapter no tagging signal, and it forgets how to tag news
text: measured (BENCHMARKS.md), such a tagger finds company names in far fewer news headlines than
a tagger trained alone. So a *teacher* tagger (the one trained alone) can tag the tweets first;
its entities become tagging targets for the sentiment examples (pseudo-labels, weighted by
``JointSpec.pseudo_tagging_weight``), and the shared adapter keeps more of the teacher's news
tagging. With ``warm_start`` the shared adapter and the tagger head also start as the teacher's.
The news monitor's pair (`agent/assets/models/news-*`) is trained that way; BENCHMARKS.md has the numbers of each variant.

One :class:`JointModel` reads both kinds of example in the same batches. Its logits pack the two
tasks into one tensor ``[B, T + S, 1 + n_words]`` so the ordinary :class:`~finetune.training.trainer.Trainer`
(checkpoints, resume, early stopping) drives it: position 0 holds the sentence's sentiment
logits in the last ``S`` class slots, positions ``1…`` hold each word's tag logits in the first
``T``. :func:`joint_loss` reads each task from its own slots, so neither sees the other's classes.

The result is two ordinary checkpoint directories (``sentiment`` and ``ner`` tasks), each with a
copy of the same adapter; either loads and runs alone like any other model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from finetune.models.classifier import TextClassifier
from finetune.models.lora import LoraSettings
from finetune.data.loaders import TaggedDataset, TextDataset, TextExample
from finetune.models.encoder import Encoder
from finetune.models.heads import Head, HeadConfig, count_parameters
from finetune.models.tag_transitions import constrained_decode
from finetune.models.tagger import IGNORE, EntityTagger, bio_tags, gather_words
from finetune.models.tagger import TASK as NER_TASK
from finetune.data.tagging import entity_f1, recorded_data_warnings
from finetune.training.tagger import bio_rows, fit_decoding, padded_tag_rows
from finetune.data.tagging import Span, Word, bio_to_spans, spans_to_bio
from finetune.training.recipe import add_adapter, build_head, fit, mode_settings, save_model
from finetune.training.trainer import Checkpointing, TrainerCallback, TrainingArguments, TrainResult

Item = tuple[str, list[Word] | None]  # (text, words) for a tagging example, (text, None) for a sentiment one


@dataclass(frozen=True)
class JointSpec:
    """What to train beyond the trainer's arguments.

    Args:
        sentiment_head: Sentence head shape (``in_features``/``n_classes`` are filled in).
        tagger_head: Word head shape (likewise).
        lora: The shared adapter's shape.
        tagging_repeat: How many times each tagging example appears per epoch. The tagging set
            is a fifth of the tweets' size; repeating it keeps the tagger's share of the steps.
        tagging_weight: Weight of the tagging loss beside the sentiment loss.
        sentiment_smoothing: Label smoothing of the sentiment loss (the tagger gets none).
        pseudo_tagging_weight: Weight of the tagging loss on the sentiment texts' pseudo-labels
            (used only when ``train_joint`` gets a teacher tagger).
    """

    sentiment_head: HeadConfig = field(default_factory=HeadConfig)
    tagger_head: HeadConfig = field(default_factory=lambda: HeadConfig(kind="linear"))
    lora: LoraSettings = field(
        default_factory=lambda: LoraSettings(r=16, alpha=32, target_modules=("query", "key", "value", "dense"))
    )
    tagging_repeat: int = 2
    tagging_weight: float = 1.0
    sentiment_smoothing: float = 0.1
    pseudo_tagging_weight: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.tagging_repeat, int) or self.tagging_repeat < 1:
            raise ValueError(f"tagging_repeat must be a positive integer, got {self.tagging_repeat!r}")
        if self.tagging_weight <= 0:
            raise ValueError(f"tagging_weight must be > 0, got {self.tagging_weight}")
        if not 0.0 <= self.sentiment_smoothing < 1.0:
            raise ValueError(f"sentiment_smoothing must be in [0, 1), got {self.sentiment_smoothing}")
        if self.pseudo_tagging_weight < 0:
            raise ValueError(f"pseudo_tagging_weight must be >= 0, got {self.pseudo_tagging_weight}")


@dataclass
class TrainedJoint:
    """What ``train_joint`` produced: both checkpoint directories, the loaded models, the run."""

    sentiment_path: Path
    ner_path: Path
    sentiment: TextClassifier
    tagger: EntityTagger
    result: TrainResult
    metrics: dict[str, Any]


class JointModel(nn.Module):
    """Encoder (with the shared adapter) + sentiment head + tagger head, packed logits (see module doc)."""

    def __init__(self, encoder: Encoder, sentiment_head: Head, tagger_head: Head, n_words: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.sentiment_head = sentiment_head
        self.tagger_head = tagger_head
        self.n_words = n_words
        self.n_tags = tagger_head.config.n_classes
        self.n_sentiment = sentiment_head.config.n_classes

    def forward(self, items: Sequence[Item]) -> torch.Tensor:
        texts = [text for text, _ in items]
        batch = self.encoder.tokenize(texts, words=[words or [] for _, words in items])
        sentence, hidden = self.encoder(batch)
        words = self.tagger_head(gather_words(hidden, batch["word_index"], self.n_words))  # [B, W, T]
        sentiment = self.sentiment_head(sentence)  # [B, S]
        # Unused slots hold zeros; the loss and the scorer never read them.
        out = sentence.new_zeros(len(items), self.n_tags + self.n_sentiment, 1 + self.n_words)
        out[:, self.n_tags :, 0] = sentiment
        out[:, : self.n_tags, 1:] = words.transpose(1, 2)
        return out


def joint_loss(
    n_tags: int, *, tagging_weight: float = 1.0, smoothing: float = 0.0, pseudo_weight: float = 0.0,
) -> Callable[..., torch.Tensor]:
    """Loss over packed logits: sentiment cross-entropy at position 0, plus weighted tagging
    cross-entropy on the tagging examples, plus ``pseudo_weight`` times the tagging cross-entropy on
    sentiment examples that carry word tags (a teacher's pseudo-labels).

    Each term is averaged over its own labelled positions; a batch without one of them skips it.
    """

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        total = logits.new_zeros(())
        sentiment = labels[:, 0]
        rows = sentiment != IGNORE
        if rows.any():
            total = total + F.cross_entropy(logits[rows, n_tags:, 0], sentiment[rows] - n_tags, label_smoothing=smoothing)
        tags = labels[:, 1:]
        for weight, part in ((tagging_weight, ~rows), (pseudo_weight, rows)):
            if weight and (tags[part] != IGNORE).any():
                total = total + weight * F.cross_entropy(logits[part, :n_tags, 1:], tags[part], ignore_index=IGNORE)
        return total

    return loss


def _warm_start(encoder: Encoder, teacher: EntityTagger | None, tags: list[str], backend: str) -> tuple[LoraSettings, Head]:
    """Give ``encoder`` a trainable copy of the teacher's adapter; return its LoRA shape and a copy of its head."""
    if teacher is None or teacher.checkpoint.adapter_dir is None:
        raise ValueError("warm_start needs a teacher tagger that has a LoRA adapter")
    if list(teacher.tags) != list(tags):
        raise ValueError(f"warm_start needs a teacher with the entity data's tags; the teacher has "
                         f"{len(teacher.tags)} tags, the data {len(tags)}")
    encoder.load_adapter(teacher.checkpoint.adapter_dir, trainable=True)
    head = Head(teacher.head.config, backend=backend)
    head.load_state_dict(teacher.head.state_dict())
    head.to(encoder.device)  # the run's device (see build_head)
    settings = teacher.checkpoint.settings.get("lora", {})
    return LoraSettings(**{k: v for k, v in settings.items() if k in ("r", "alpha", "dropout", "target_modules")}), head


def pseudo_tag_rows(teacher: EntityTagger, texts: Sequence[str], tags: Sequence[str], *, progress: bool = False) -> list[Any]:
    """``(text, words, word_tags)`` rows of ``texts`` tagged by ``teacher`` (its entity types must be in ``tags``)."""
    unknown = sorted(set(bio_tags(teacher.entity_types)) - set(tags))
    if unknown:
        raise ValueError(f"the teacher tagger has tags {unknown} that the entity data does not; "
                         "train the teacher on the same entity data")
    found = teacher.predict(list(texts), progress=progress)
    return [(text, *spans_to_bio(text, [Span(e.start, e.end, e.type) for e in entities]))
            for text, entities in zip(texts, found)]


def joint_scores(labels: np.ndarray, logits: np.ndarray, tags: Sequence[str]) -> dict[str, float]:
    """Sentiment accuracy and macro-F1, and entity micro-F1 (tagging examples only), from packed labels and logits."""
    from sklearn.metrics import f1_score

    n_tags = len(tags)
    rows = labels[:, 0] != IGNORE
    gold_sentiment = labels[rows, 0] - n_tags
    predicted_sentiment = logits[rows, n_tags:, 0].argmax(-1)
    gold, predicted = [], []
    for row, scores in zip(labels[~rows, 1:], logits[~rows, :n_tags, 1:]):
        keep = row != IGNORE
        log_probs = scores.T[keep]
        log_probs = log_probs - np.logaddexp.reduce(log_probs, axis=-1, keepdims=True)
        gold.append([tags[i] for i in row[keep]])
        predicted.append([tags[i] for i in constrained_decode(log_probs, tags)])
    return {
        "sentiment_accuracy": float((gold_sentiment == predicted_sentiment).mean()) if rows.any() else 0.0,
        "sentiment_macro_f1": float(f1_score(gold_sentiment, predicted_sentiment, average="macro", zero_division=0))
        if rows.any() else 0.0,
        "entity_f1": entity_f1(gold, predicted) if gold else 0.0,
    }


def train_joint(
    sentiment_data: TextDataset,
    entity_data: TaggedDataset,
    spec: JointSpec,
    args: TrainingArguments,
    encoder: Encoder,
    sentiment_out: str | Path,
    ner_out: str | Path,
    *,
    backend: str = "exact",
    command: str | None = None,
    skipped_spans: int = 0,
    teacher: EntityTagger | None = None,
    warm_start: bool = False,
    callbacks: Sequence[TrainerCallback | Callable[[dict[str, float]], None]] = (),
    checkpointing: Checkpointing | None = None,
) -> TrainedJoint:
    """Train both heads and one shared adapter; write a ``sentiment`` and a ``ner`` checkpoint.

    Early stopping watches the mean of the validation sentiment macro-F1 and entity micro-F1.
    Only the train and validation splits are read; test splits are never looked at.

    Args:
        sentiment_data, entity_data: The two data sets.
        spec: Heads, adapter and how the tasks are mixed.
        args: Trainer settings; ``args.label_smoothing`` is ignored (see ``spec.sentiment_smoothing``).
        encoder: A loaded, adapter-free encoder; the adapter is added to it in place.
        sentiment_out, ner_out: The two checkpoint directories.
        backend: Where the heads' circuits run during training.
        command: The command line to record in both ``config.json`` files.
        skipped_spans: Spans the loader skipped, recorded with the tagger.
        teacher: A tagger whose entities on the sentiment training texts become their tagging
            targets (see the module doc). Validation texts stay untagged, so validation scores
            read gold labels only.
        warm_start: Start the shared adapter and the tagger head from the teacher's own (a LoRA
            tagger with the same tags and head shape): training then begins from a model that
            already tags as the teacher does, and ``spec.lora`` and ``spec.tagger_head`` are not used.
        callbacks, checkpointing: Passed to the :class:`~finetune.training.trainer.Trainer`.
    """
    start = time.perf_counter()
    labels = sorted({ex.label for ex in sentiment_data.train})
    tags = bio_tags(entity_data.entity_types)
    with recorded_data_warnings() as problems:
        tag_train, tag_val = bio_rows(entity_data.train), bio_rows(entity_data.validation)
    n_words = max(len(words) for _, words, _ in tag_train + tag_val)
    # The heads' initial weights are seeded too, so one seed gives one model.
    sentiment_head = build_head(spec.sentiment_head, encoder, len(labels), backend, seed=args.seed)
    tagger_head = build_head(spec.tagger_head, encoder, len(tags), backend)
    lora = spec.lora
    if warm_start:
        lora, tagger_head = _warm_start(encoder, teacher, tags, backend)
    else:
        add_adapter(encoder, lora)

    pseudo = pseudo_tag_rows(teacher, [ex.text for ex in sentiment_data.train], tags, progress=args.progress) if teacher else []
    n_words = max([n_words, *(len(words) for _, words, _ in pseudo)])
    model = JointModel(encoder, sentiment_head, tagger_head, n_words)

    def rows(texts: list[TextExample], tagged: list[Any], repeat: int, pseudo: list[Any]) -> tuple[list[Item], torch.Tensor]:
        items: list[Item] = [(ex.text, None) for ex in texts]
        target = torch.full((len(texts) + repeat * len(tagged), 1 + n_words), IGNORE, dtype=torch.long)
        for i, ex in enumerate(texts):
            target[i, 0] = len(tags) + labels.index(ex.label)
        if pseudo:
            items, target[: len(texts), 1:] = padded_tag_rows(encoder, pseudo, tags, n_words)
        _, word_labels = padded_tag_rows(encoder, tagged, tags, n_words)
        for r in range(repeat):
            lo = len(texts) + r * len(tagged)
            target[lo : lo + len(tagged), 1:] = word_labels
            items += [(text, words) for text, words, _ in tagged]
        return items, target

    items_train, y_train = rows(sentiment_data.train, tag_train, spec.tagging_repeat, pseudo)
    items_val, y_val = rows(sentiment_data.validation, tag_val, 1, [])

    def score(gold: np.ndarray, logits: np.ndarray) -> float:
        scores = joint_scores(gold, logits, tags)
        return (scores["sentiment_macro_f1"] + scores["entity_f1"]) / 2

    loss = joint_loss(len(tags), tagging_weight=spec.tagging_weight, smoothing=spec.sentiment_smoothing,
                      pseudo_weight=spec.pseudo_tagging_weight if teacher else 0.0)
    trainer, result = fit(model, args, (items_train, y_train), (items_val, y_val), score_fn=score, loss_fn=loss,
                          callbacks=callbacks, checkpointing=checkpointing)
    val = joint_scores(y_val.numpy(), trainer.predict_logits(items_val).numpy(), tags)
    seconds = time.perf_counter() - start

    shared = mode_settings(lora, joint={
        "tasks": ["sentiment", NER_TASK], "tagging_repeat": spec.tagging_repeat,
        "tagging_weight": spec.tagging_weight, "sentiment_smoothing": spec.sentiment_smoothing,
        "sentiment_data": sentiment_data.name, "entity_data": entity_data.name,
        "teacher": str(teacher.checkpoint.path) if teacher else None, "warm_start": warm_start,
        "pseudo_tagging_weight": spec.pseudo_tagging_weight if teacher else 0.0,
        "pseudo_tagged_texts": len(pseudo), "pseudo_entities": sum(len(bio_to_spans(w, t)) for _, w, t in pseudo),
    })
    common = {"best_epoch": result.best_epoch, "val_joint_score": result.best_score, "train_seconds": seconds,
              "history": result.history}
    training = {**args.to_dict(), "sentiment_data": sentiment_data.name, "entity_data": entity_data.name,
                "sentiment_train_examples": len(sentiment_data.train), "entity_train_examples": len(entity_data.train)}
    sentiment_path, ner_path = Path(sentiment_out), Path(ner_out)
    save_model(
        sentiment_path, task="sentiment", head=sentiment_head, labels=labels, encoder=encoder,
        training={**training, "data": sentiment_data.name, "train_examples": len(sentiment_data.train)},
        settings={**shared, "joint": {**shared["joint"], "partner": str(ner_path)}},
        metrics={**common, "val_macro_f1": val["sentiment_macro_f1"], "val_accuracy": val["sentiment_accuracy"],
                 "head_parameters": count_parameters(sentiment_head)},
        command=command, with_adapter=True,
    )
    save_model(
        ner_path, task=NER_TASK, head=tagger_head, labels=tags, encoder=encoder,
        training={**training, "data": entity_data.name, "train_examples": len(entity_data.train),
                  "skipped_spans": skipped_spans + len(problems)},
        settings={**shared, "entity_types": entity_data.entity_types,
                  "joint": {**shared["joint"], "partner": str(sentiment_path)}},
        metrics={**common, "val_entity_f1": val["entity_f1"], "head_parameters": count_parameters(tagger_head),
                 "skipped_spans": skipped_spans + len(problems)},
        command=command, with_adapter=True,
    )
    tagger = EntityTagger.load(ner_path, backend=backend)
    tagger.adopt_encoder(encoder)  # carries the trained adapter
    metrics = {**common, "val": val, "skipped_spans": skipped_spans + len(problems),
               "decoding": fit_decoding(tagger, entity_data)}
    return TrainedJoint(sentiment_path, ner_path, TextClassifier.load(sentiment_path, backend=backend), tagger,
                        result, metrics)
