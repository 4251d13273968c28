"""The entity tagger's decoding: IOB2-constrained Viterbi, with an optional tag-transition prior.

The word head scores each word on its own, so nothing stops it from reading "this Friday" as two
``date`` entities (``B-date B-date``) or from ending an entity one word early. Decoding adds
``weight × log P(tag | previous tag)``, with the transition probabilities counted (add-one
smoothed) on the training data's BIO tags and the weight chosen on validation data, never on
test data. For the shipped tagger it lifts entity F1 by 1.6 points on the NLU++ validation split
and by 4.4 on test folds 18-19 (BENCHMARKS.md, Entities).

The fitted prior is a small JSON file, ``decoding.json``, beside the tagger's head; a checkpoint
without one decodes with the IOB2 constraints alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from finetune.models.files import DECODING

FILE = DECODING
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class TransitionPrior:
    """``log_probs [C + 1, C]``: row ``i`` is ``log P(next | tag i)``, the last row the start of a text."""

    log_probs: np.ndarray
    weight: float

    def __post_init__(self) -> None:
        size = self.log_probs.shape[1] if self.log_probs.ndim == 2 else 0
        if self.log_probs.shape != (size + 1, size) or size == 0:
            raise ValueError(f"transition log-probs must be [C + 1, C], got {list(self.log_probs.shape)}")
        if not 0.0 <= self.weight <= 10.0:
            raise ValueError(f"transition weight must be in [0, 10], got {self.weight}")

    @property
    def start(self) -> np.ndarray:
        """Weighted start scores ``[C]``."""
        return self.weight * self.log_probs[-1]

    @property
    def step(self) -> np.ndarray:
        """Weighted transition scores ``[C, C]`` (previous, next)."""
        return self.weight * self.log_probs[:-1]


def count_transitions(sequences: Sequence[Sequence[str]], tags: Sequence[str]) -> np.ndarray:
    """Add-one smoothed ``log P(next | previous)`` over BIO tag sequences, start row last."""
    index = {tag: i for i, tag in enumerate(tags)}
    counts = np.ones((len(tags) + 1, len(tags)))
    for sequence in sequences:
        previous = len(tags)
        for tag in sequence:
            counts[previous, index[tag]] += 1
            previous = index[tag]
    return np.log(counts / counts.sum(1, keepdims=True))


def choose_weight(
    log_probs: Sequence[np.ndarray],
    gold: Sequence[Sequence[str]],
    tags: Sequence[str],
    transitions: np.ndarray,
    weights: Sequence[float] = WEIGHTS,
) -> tuple[float, dict[str, float]]:
    """The weight with the best entity F1 on validation words (ties: the smaller weight), and every score."""
    from finetune.data.tagging import entity_f1

    scores: dict[str, float] = {}
    for weight in weights:
        prior = TransitionPrior(transitions, weight) if weight else None
        predicted = [[tags[i] for i in constrained_decode(lp, tags, prior)] for lp in log_probs]
        scores[f"{weight:g}"] = round(entity_f1(gold, predicted), 4)
    best = max(weights, key=lambda w: (scores[f"{w:g}"], -w))
    return best, scores


def save_prior(directory: str | Path, prior: TransitionPrior, tags: Sequence[str], info: dict[str, Any]) -> Path:
    """Write ``decoding.json`` into a tagger checkpoint directory."""
    path = Path(directory) / FILE
    data = {"tags": list(tags), "weight": prior.weight, "log_probs": np.round(prior.log_probs, 6).tolist(), **info}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    from finetune.models.integrity import refresh_checksums

    refresh_checksums(directory)  # the refitted prior is part of the recorded model
    return path


def load_prior(directory: str | Path, tags: Sequence[str]) -> TransitionPrior | None:
    """The checkpoint's prior, or None without ``decoding.json``.

    Raises:
        ValueError: The file is unreadable or was fitted for other tags.
    """
    path = Path(directory) / FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["tags"] != list(tags):
            raise ValueError("its tags differ from the model's labels")
        return TransitionPrior(np.asarray(data["log_probs"], dtype=np.float64), float(data["weight"]))
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is not a usable decoding prior ({exc}); delete it or refit it "
                         "with 'agent finetune decoding'") from exc


def fit_prior(
    tagger: Any, train: Sequence[Any], validation: Sequence[Any], weight: float | None = None,
    predicted: Sequence[tuple[Sequence[Any], np.ndarray]] | None = None,
) -> tuple[TransitionPrior, dict[str, Any]]:
    """Count transitions on ``train`` and choose their weight on ``validation`` (``TaggedExample`` lists).

    Args:
        tagger: The :class:`~finetune.models.tagger.EntityTagger` (or tagger ensemble) to decode for: its
            ``tag_probabilities`` runs once over the validation texts.
        train, validation: The splits the tagger was trained and selected on; never test data.
        weight: Use this weight instead of choosing one (a refit without validation takes the
            weight its validated run chose).
        predicted: The tagger's ``tag_probabilities`` of the validation texts, when the caller has them.

    Returns:
        The prior and what to record beside it (validation F1 for every weight tried).

    Raises:
        ValueError: Neither validation data nor a weight to use.
    """
    import warnings

    from finetune.data.tagging import DataWarning, spans_to_bio

    if weight is None and not validation:
        raise ValueError("no validation data to choose the tag-transition prior's weight on; give the weight")
    if weight is not None and weight < 0:
        raise ValueError(f"the prior's weight must be 0 or more, got {weight}")
    tags = tagger.tags
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # the training run already counted these spans
        transitions = count_transitions([spans_to_bio(ex.text, ex.spans)[1] for ex in train], tags)
        bio = [spans_to_bio(ex.text, ex.spans) for ex in validation]
    if weight is not None:
        info = {"weight_given": weight, "train_sentences": len(train), "validation_sentences": len(validation)}
        return TransitionPrior(transitions, weight), info
    if predicted is None:
        predicted = tagger.tag_probabilities([ex.text for ex in validation])
    log_probs = [np.log(np.clip(probs, 1e-12, None)) for _, probs in predicted]  # as decoding reads them
    weight, f1 = choose_weight(log_probs, featured_gold(bio, predicted), tags, transitions)
    info = {"validation_entity_f1_by_weight": f1, "train_sentences": len(train), "validation_sentences": len(validation)}
    return TransitionPrior(transitions, weight), info


def featured_gold(bio: Sequence[tuple[Sequence[Any], Sequence[str]]], predicted: Sequence[tuple[Sequence[Any], Any]]) -> list[list[str]]:
    """Gold tags of the words the tagger scored (``predicted``'s words; a word with no sub-token of
    its own has none), from ``spans_to_bio``'s ``(words, tags)`` of the same texts."""
    gold = []
    for (words, word_tags), (featured, _) in zip(bio, predicted):
        at = {start: tag for (_, start, _), tag in zip(words, word_tags)}
        gold.append([at[start] for _, start, _ in featured])
    return gold


def constrained_decode(log_probs: np.ndarray, tags: Sequence[str], prior: TransitionPrior | None = None) -> list[int]:
    """Best tag index per word under IOB2 rules (Viterbi over ``log_probs [n, C]``), plus the
    weighted transition scores of ``prior`` when given."""
    n, size = log_probs.shape
    if n == 0:
        return []
    inside, allowed = _iob2_rules(tuple(tags))
    penalty = np.where(allowed, 0.0 if prior is None else prior.step, -np.inf)
    score = log_probs[0] + np.where(inside, -np.inf, 0.0 if prior is None else prior.start)
    back = []
    for row in log_probs[1:]:
        total = score[:, None] + penalty
        best = total.argmax(0)
        back.append(best)
        score = total[best, np.arange(size)] + row
    path = [int(score.argmax())]
    for best in reversed(back):
        path.append(int(best[path[-1]]))
    return path[::-1]


@lru_cache(maxsize=16)
def _iob2_rules(tags: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """``inside[j]``: tag j is an ``I-`` tag; ``allowed[previous, next]`` under IOB2 (cached: the
    news monitor decodes thousands of texts with one tag set)."""
    inside = np.array([t.startswith("I-") for t in tags])
    allowed = np.ones((len(tags), len(tags)), dtype=bool)
    for j, tag in enumerate(tags):
        if inside[j]:
            allowed[:, j] = [prev in (f"B-{tag[2:]}", tag) for prev in tags]
    inside.setflags(write=False)
    allowed.setflags(write=False)
    return inside, allowed
