"""Train an entity tagger from a :class:`~finetune.data.loaders.TaggedDataset`.

Two modes, as for the text classifiers (:mod:`finetune.training.classifier`):

- frozen: word features are computed once and every word of the training set becomes one row
  ``[N_words, D]`` for the head; fast, but MiniLM's frozen states tell ``date_from`` from
  ``date_to`` poorly (entity F1 about 0.4 on NLU++).
- LoRA: adapters in the encoder train with the head on ``(text, words)`` pairs; this is what the
  shipped model uses.

Either way early stopping watches the validation entity micro-F1 (seqeval, strict IOB2), not the
token accuracy, which ``O`` dominates.
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

from finetune.data.loaders import TaggedDataset
from finetune.data.tagging import TaggedExample, Word, entity_f1, recorded_data_warnings, spans_to_bio
from finetune.models.encoder import Encoder
from finetune.models.heads import HeadConfig
from finetune.models.lora import LoraSettings
from finetune.models.tag_transitions import constrained_decode
from finetune.models.tagger import IGNORE, TASK, EncodedTagger, EntityTagger, bio_tags
from finetune.training.recipe import (add_adapter, build_head, check_shared_adapter, copy_shared_adapter, fit,
                                      mode_settings, run_metrics, save_model, shared_adapter_settings)
from finetune.training.trainer import Checkpointing, TrainerCallback, TrainingArguments, TrainResult


@dataclass(frozen=True)
class TaggerSpec:
    """What to train beyond the trainer's arguments.

    Args:
        head: Head shape; ``in_features`` and ``n_classes`` are filled in from encoder and tags.
        lora: LoRA settings, or None to train on frozen word features.
        adapter: A saved LoRA adapter folder another model carries (e.g. the news monitor's shared
            one): the head trains on its frozen word features, and the checkpoint keeps a
            byte-identical copy, so the tagger shares that model's encoder pass.
    """

    head: HeadConfig = field(default_factory=lambda: HeadConfig(kind="linear"))
    lora: LoraSettings | None = None
    adapter: Path | None = None

    def __post_init__(self) -> None:
        check_shared_adapter(self.adapter, self.lora)


@dataclass
class TrainedTagger:
    """What ``train_tagger`` produced: the saved directory, the loaded model, the run."""

    path: Path
    tagger: EntityTagger
    result: TrainResult
    metrics: dict[str, Any]


def train_tagger(
    dataset: TaggedDataset,
    spec: TaggerSpec,
    args: TrainingArguments,
    encoder: Encoder,
    out: str | Path,
    *,
    backend: str = "exact",
    command: str | None = None,
    skipped_spans: int = 0,
    callbacks: Sequence[TrainerCallback | Callable[[dict[str, float]], None]] = (),
    checkpointing: Checkpointing | None = None,
    prior_weight: float | None = None,
) -> TrainedTagger:
    """Train a word head (and optionally LoRA adapters) and write a ``ner`` checkpoint to ``out``.

    Args:
        dataset: Train and validation splits are used; test is never looked at.
        spec: Head and LoRA settings.
        args: Trainer settings (early stopping on validation entity micro-F1).
        encoder: A loaded, adapter-free encoder (LoRA adds the adapter to it in place).
        out: Checkpoint directory.
        backend: Where the head's circuits run during training.
        command: The command line to record in ``config.json``.
        skipped_spans: Spans the loader skipped, recorded beside the training settings.
        callbacks, checkpointing: Passed to the :class:`~finetune.training.trainer.Trainer` (progress of a
            recorded run; mid-run checkpoints and the one to resume from).
        prior_weight: The tag-transition prior's weight; None chooses it on validation. A dataset
            without validation (a refit on all the training data) trains every epoch, keeps the
            last weights, and needs this weight.
    """
    if not dataset.validation and prior_weight is None:
        raise ValueError("training without validation data needs the prior's weight (prior_weight), "
                         "taken from a run that had validation")
    start = time.perf_counter()
    tags = bio_tags(dataset.entity_types)
    head = build_head(spec.head, encoder, len(tags), backend)
    with recorded_data_warnings() as problems:  # spans that cannot become BIO tags
        train, validation = bio_rows(dataset.train), bio_rows(dataset.validation)
    model: nn.Module
    if spec.adapter is not None:
        encoder.load_adapter(spec.adapter)  # frozen: only the head trains
    if spec.lora is None:
        x_train, y_train, _ = _frozen_rows(encoder, train, tags, args.progress)
        x_val, y_val, lengths = _frozen_rows(encoder, validation, tags, args.progress)
        model, rows_train, rows_val, score = head, (x_train, y_train), (x_val, y_val), _scorer(tags, lengths)
    else:
        add_adapter(encoder, spec.lora)
        n_words = max(len(words) for words, _, _ in train + validation)
        model = EncodedTagger(encoder, head, n_words)
        rows_train = padded_tag_rows(encoder, train, tags, n_words)
        rows_val = padded_tag_rows(encoder, validation, tags, n_words)
        score = _scorer(tags, None)
    _, result = fit(model, args, rows_train, rows_val, score_fn=score, callbacks=callbacks, checkpointing=checkpointing)
    settings = (mode_settings(spec.lora) if spec.adapter is None else shared_adapter_settings(spec.adapter))
    settings["entity_types"] = dataset.entity_types
    metrics = run_metrics(result, start, head, "val_entity_f1", skipped_spans=skipped_spans + len(problems))
    training = {**args.to_dict(), "data": dataset.name, "train_examples": len(dataset.train),
                "skipped_spans": metrics["skipped_spans"]}
    path = save_model(Path(out), task=TASK, head=head, labels=tags, encoder=encoder, training=training,
                      settings=settings, metrics=metrics, command=command, with_adapter=spec.lora is not None)
    if spec.adapter is not None:
        copy_shared_adapter(spec.adapter, path)
    tagger = EntityTagger.load(path, backend=backend)
    tagger.adopt_encoder(encoder)  # frozen: the shared encoder; LoRA: the encoder now carrying the adapter
    metrics["decoding"] = fit_decoding(tagger, dataset, weight=prior_weight)
    return TrainedTagger(path, tagger, result, metrics)


def fit_decoding(tagger: Any, dataset: TaggedDataset, weight: float | None = None,
                 predicted: Sequence[Any] | None = None) -> dict[str, Any]:
    """Fit the tag-transition prior on ``dataset``'s train and validation splits, save it beside the
    tagger (``decoding.json``) and use it from now on; returns the weight and validation scores.

    ``tagger`` is an :class:`EntityTagger` or a :class:`~finetune.models.tagger_ensemble.TaggerEnsemble`.
    A given ``weight`` is used as it is (only the transitions are counted); ``predicted``: the
    tagger's ``tag_probabilities`` of the validation texts, when the caller has them."""
    from finetune.models.tag_transitions import fit_prior, save_prior

    prior, info = fit_prior(tagger, dataset.train, dataset.validation, weight, predicted)
    save_prior(tagger.checkpoint.path, prior, tagger.tags, {"data": dataset.name, **info})
    tagger.prior = prior
    return {"weight": prior.weight, **info}


Row = tuple[str, list[Word], list[str]]


def bio_rows(examples: Sequence[TaggedExample]) -> list[Row]:
    rows = []
    for example in examples:
        words, word_tags = spans_to_bio(example.text, example.spans)
        rows.append((example.text, words, word_tags))
    return rows


def _frozen_rows(encoder: Encoder, rows: list[Row], tags: list[str], progress: bool):
    """Features ``[N_words, D]`` and labels ``[N_words]`` of the words that got a feature, and words per text."""
    index = {tag: i for i, tag in enumerate(tags)}
    features = encoder.encode_words([text for text, _, _ in rows], words=[w for _, w, _ in rows], progress=progress)
    labels, lengths = [], []
    for (_, words, word_tags), wf in zip(rows, features):
        tag_at = {start: tag for (_, start, _), tag in zip(words, word_tags)}
        labels += [index[tag_at[start]] for _, start, _ in wf.words]
        lengths.append(len(wf.words))
    x = torch.cat([wf.features for wf in features]) if features else torch.zeros(0, encoder.dim)
    return x, torch.tensor(labels, dtype=torch.long), lengths


def padded_tag_rows(encoder: Encoder, rows: list[Row], tags: list[str], n_words: int):
    """``(text, words)`` items and labels ``[N, n_words]``; words with no sub-token of their own get IGNORE."""
    index = {tag: i for i, tag in enumerate(tags)}
    labels = torch.full((len(rows), n_words), IGNORE, dtype=torch.long)
    for lo in range(0, len(rows), 256):
        chunk = rows[lo : lo + 256]
        word_index = encoder.tokenize([text for text, _, _ in chunk], words=[w for _, w, _ in chunk])["word_index"]
        for r, (_, _, word_tags) in enumerate(chunk):
            for w in word_index[r][word_index[r] >= 0].tolist():
                labels[lo + r, w] = index[word_tags[w]]
    return [(text, words) for text, words, _ in rows], labels


def _scorer(tags: list[str], lengths: list[int] | None):
    """Validation entity F1 from the trainer's ``(labels, logits)``: flat words (``lengths`` given) or padded."""

    def score(labels: np.ndarray, logits: np.ndarray) -> float:
        if lengths is not None:
            cuts = np.cumsum(lengths)[:-1]
            pairs = zip(np.split(labels, cuts), np.split(logits, cuts))
        else:
            pairs = ((row[row != IGNORE], scores.T[row != IGNORE]) for row, scores in zip(labels, logits))
        gold, predicted = [], []
        for row, scores in pairs:
            log_probs = scores - np.logaddexp.reduce(scores, axis=-1, keepdims=True)
            gold.append([tags[i] for i in row])
            predicted.append([tags[i] for i in constrained_decode(log_probs, tags)])
        return entity_f1(gold, predicted)

    return score

