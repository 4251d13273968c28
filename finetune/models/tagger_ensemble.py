"""Tagger ensembles: several entity taggers whose per-word tag probabilities are averaged.

Taggers trained alike from different seeds tag the same sentence differently at the edges of
entities; averaging their word probabilities before the one constrained decoding keeps what they
agree on (BENCHMARKS.md, "Entities"). An ensemble folder has the layout of a classifier ensemble
(:mod:`finetune.models.ensemble`), with task ``ner``, the BIO tags as its labels, and its own
tag-transition prior (``decoding.json``: transitions counted on the training sentences as written,
without the members' mention-replaced copies; weight chosen on validation for the averaged probabilities)::

    ensemble.json     {"format": "qagent-ensemble/1", "task": "ner", "labels", "members", "weights", "metrics"}
    decoding.json     the ensemble's prior (finetune.models.tag_transitions)
    members/<name>/   one ordinary tagger checkpoint each

Each member with a LoRA adapter runs its own encoder pass: an ensemble of three costs three.

Usage::

    tagger = TaggerEnsemble.load(folder)      # finetune.models.loading loads either kind
    tagger.predict(["send 20 pounds to Anna tomorrow"])[0]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finetune.models.checkpoint import CheckpointError
from finetune.models.encoder import Encoder, WordFeatures
from finetune.models.ensemble import EnsembleRecord, MemberModels, checked_weights, read_record, write_ensemble
from finetune.models.tag_transitions import TransitionPrior, load_prior
from finetune.models.tagger import TASK, Entity, EntityTagger, decode_entities
from finetune.data.tagging import Span, Word, words_with_offsets


class TaggerEnsemble(MemberModels):
    """Averages the word tag probabilities of member :class:`EntityTagger` s (weighted), then decodes
    once with the ensemble's prior.

    It answers what the assistant, the monitor and ``agent eval ner`` ask of a tagger (``predict``,
    ``tag_probabilities``, ``entity_types``, ``use_runtime``, ``set_backend``).
    """

    uses_frozen_encoder = False  # members run their own passes
    adapter_digest = None  # so no classifier takes it for its joint partner (finetune.models.base)

    def __init__(self, record: EnsembleRecord, members: Sequence[EntityTagger], prior: TransitionPrior | None) -> None:
        if len(members) != len(record.weights) or not members:
            raise CheckpointError(f"{record.path}: {len(members)} member(s) for {len(record.weights)} weight(s)")
        for member in members:
            if member.tags != record.labels:
                raise CheckpointError(f"{member.checkpoint.path}: a tagger with tags {member.tags}; "
                                      f"the ensemble's are {record.labels}")
            # Averaging needs one row per word in every member: the same tokenizer and cut-off.
            if (member.encoder_config.model_id, member.encoder_config.max_length) != (
                    members[0].encoder_config.model_id, members[0].encoder_config.max_length):
                raise CheckpointError(f"{member.checkpoint.path}: members must share one encoder model and max_length")
        self.checkpoint = record
        self.members = list(members)
        self.tags: list[str] = list(record.labels)
        self.entity_types: list[str] = sorted({t[2:] for t in self.tags if t != "O"})
        self.prior = prior
        total = sum(record.weights)
        self.weights: list[float] = [w / total for w in record.weights]
        self.encoder_config = members[0].encoder_config

    @classmethod
    def load(cls, path: str | Path, *, encoder: Encoder | None = None, backend: str = "exact") -> TaggerEnsemble:
        """Load an ensemble folder; ``encoder``: a plain encoder the members copy (see EntityTagger.load)."""
        record = read_record(path)
        if record.task != TASK:
            raise CheckpointError(f"{record.path} holds a {record.task!r} ensemble, not entity taggers")
        members = [EntityTagger.load(record.path / member, encoder=encoder, backend=backend) for member in record.members]
        try:
            prior = load_prior(record.path, record.labels)
        except ValueError as exc:
            raise CheckpointError(str(exc)) from exc
        return cls(record, members, prior)

    @property
    def encoder(self) -> Encoder:
        """The first member's encoder (what a caller needs for tokenizer settings; each member runs its own)."""
        return self.members[0].encoder

    def member_probabilities(self, texts: Sequence[str], *, progress: bool = False) -> list[list[tuple[list[Word], np.ndarray]]]:
        """Each member's :meth:`EntityTagger.tag_probabilities` of ``texts`` (one encoder pass each)."""
        return [m.tag_probabilities(texts, progress=progress) for m in self.members]

    def average(self, member_probs: Sequence[Sequence[tuple[list[Word], np.ndarray]]]) -> list[tuple[list[Word], np.ndarray]]:
        """The weighted mean of :meth:`member_probabilities`, text by text."""
        out = []
        for rows in zip(*member_probs):
            words = rows[0][0]
            if any(len(r[0]) != len(words) for r in rows):  # guarded at load; a clear error if it ever happens
                raise ValueError("ensemble members scored different words of one text")
            out.append((words, sum(w * probs for w, (_, probs) in zip(self.weights, rows))))
        return out

    def tag_probabilities(self, texts: Sequence[str], *, progress: bool = False) -> list[tuple[list[Word], np.ndarray]]:
        """Per text: the scored words and the members' averaged tag probabilities ``[n_words, C]``."""
        return self.average(self.member_probabilities(texts, progress=progress))

    def decode(self, texts: Sequence[str], probabilities: Sequence[tuple[list[Word], np.ndarray]]) -> list[list[Entity]]:
        """Entities from :meth:`tag_probabilities` (or :meth:`average`) of the same texts."""
        return [decode_entities(text, words, probs, self.tags, words_with_offsets(text), self.prior) if words else []
                for text, (words, probs) in zip(texts, probabilities)]

    def predict(self, texts: Sequence[str], *, progress: bool = False) -> list[list[Entity]]:
        """Entities of every text (empty texts give ``[]``; long ones are cut with a warning)."""
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts; wrap a single text in a list")
        texts = list(texts)
        return self.decode(texts, self.tag_probabilities(texts, progress=progress))

    def predict_words(self, texts: Sequence[str], word_features: Sequence[WordFeatures]) -> list[list[Entity]]:
        raise ValueError("an ensemble's members run their own encoder passes: call predict(texts)")


def save_tagger_ensemble(members: Sequence[str | Path], out: str | Path, *, weights: Sequence[float] | None = None,
                         command: str | None = None) -> Path:
    """Copy the member taggers into ``out/members/`` and write ``out/ensemble.json`` (no prior yet:
    :func:`finetune.training.tagger.fit_decoding` adds it)."""
    sources = [Path(m) for m in members]
    weights = checked_weights(len(sources), weights)
    loaded = [EntityTagger.load(source) for source in sources]
    TaggerEnsemble(EnsembleRecord(Path(out), TASK, loaded[0].tags, [], weights), loaded, None)  # checks before writing
    folder = write_ensemble(sources, out, TASK, loaded[0].tags, weights, command=command)
    (folder / "decoding.json").unlink(missing_ok=True)  # a prior left by an earlier ensemble in this folder
    from finetune.models.integrity import record_checksums

    record_checksums(folder)
    return folder


def validation_f1(ensemble: TaggerEnsemble, examples: Sequence[Any], member_probs: Sequence[Any]) -> dict[str, float]:
    """Entity micro-F1 on ``examples`` of each member (its own prior) and of the ensemble (its prior),
    from :meth:`TaggerEnsemble.member_probabilities` of the examples' texts. Tags are compared over
    all words, as ``agent eval ner`` compares them."""
    import warnings

    from finetune.data.tagging import entity_f1
    from finetune.data.tagging import DataWarning, spans_to_bio

    texts = [ex.text for ex in examples]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        bio = [spans_to_bio(ex.text, ex.spans) for ex in examples]

    def score(predicted: Sequence[list[Entity]]) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            tags = [spans_to_bio(text, [_span(e) for e in found])[1] for text, found in zip(texts, predicted)]
        return round(entity_f1([t for _, t in bio], tags), 4)

    scores = {name: score([decode_entities(t, w, p, member.tags, words_with_offsets(t), member.prior) if w else []
                           for t, (w, p) in zip(texts, probs)])
              for name, member, probs in zip(ensemble.checkpoint.members, ensemble.members, member_probs)}
    scores["ensemble"] = score(ensemble.decode(texts, ensemble.average(member_probs)))
    return scores


def _span(entity: Entity) -> Span:
    return Span(entity.start, entity.end, entity.type)
