"""Entity tagging records: character spans to word-level BIO tags and back, and the entity file formats.

A :class:`TaggedExample` keeps its entities as character spans, which survive any tokenizer; a
tagger trains on BIO tags over :func:`words_with_offsets`. This module turns one into the other and
parses the two user file formats, CoNLL (``token<TAB>tag`` lines) and JSONL records with ``spans``.
It parses text already read from disk and imports nothing from :mod:`finetune.data.loaders`, which finds,
reads and splits the files. The data error types live here, at the bottom of that one-way import,
and :mod:`finetune.data.loaders` re-exports them with the rest of the public names.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# Digit runs and letter runs are separate words: NLU++ tags "5" alone in "5ish", and with this split
# every NLU++ slot starts and ends on a word boundary, so no span is lost on the way to BIO tags.
_WORD = re.compile(r"\d+|[^\W\d_]+|\S")
_BIO_TAG = re.compile(r"O|[BI]-\S+")

Word = tuple[str, int, int]


class DataError(ValueError):
    """Bad or missing input data; the message says what is wrong, where, and how to fix it."""


class DataWarning(UserWarning):
    """A recoverable problem in the data, such as a span that had to be skipped."""


@dataclass(frozen=True)
class Span:
    """A labelled character range ``[start, end)`` of a text."""

    start: int
    end: int
    label: str

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"span needs 0 <= start < end, got [{self.start}, {self.end})")


@dataclass(frozen=True)
class TaggedExample:
    """One sentence with its entity spans, sorted by position."""

    text: str
    spans: tuple[Span, ...] = ()


def words_with_offsets(text: str) -> list[Word]:
    """Split text into digit runs, letter runs and single other characters, as ``(word, start, end)``."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def spans_to_bio(text: str, spans: Iterable[Span]) -> tuple[list[Word], list[str]]:
    """Turn character spans into word-level BIO tags (``B-x``, ``I-x``, ``O``) over :func:`words_with_offsets`.

    A span whose edges fall inside a word, or that overlaps an earlier span, cannot be written as
    BIO tags; it is skipped with a :class:`DataWarning` rather than tagging the wrong words.
    """
    words = words_with_offsets(text)
    tags = ["O"] * len(words)
    first_at = {start: i for i, (_, start, _) in enumerate(words)}
    last_at = {end: i for i, (_, _, end) in enumerate(words)}
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        first, last = first_at.get(span.start), last_at.get(span.end)
        if first is None or last is None or last < first:
            problem = "does not start and end on word boundaries"
        elif any(tag != "O" for tag in tags[first : last + 1]):
            problem = "overlaps an earlier span"
        else:
            tags[first : last + 1] = [f"B-{span.label}"] + [f"I-{span.label}"] * (last - first)
            continue
        piece = f"{span.label!r} span [{span.start}, {span.end}) {text[span.start:span.end]!r} in {text!r}"
        warnings.warn(f"{piece} {problem}; skipped", DataWarning, stacklevel=2)
    return words, tags


def bio_to_spans(words: Sequence[Word], tags: Sequence[str]) -> list[Span]:
    """Turn word-level BIO tags back into character spans.

    An ``I-x`` that does not continue an ``x`` entity starts a new one (as seqeval reads IOB1), so a
    model prediction that misses its ``B-`` still yields the entity. Raises DataError on a bad tag.
    """
    if len(words) != len(tags):
        raise DataError(f"{len(words)} words but {len(tags)} tags; give one tag per word")
    spans: list[Span] = []
    current: list[Any] | None = None  # [start, end, label] of the entity being read
    for (_, start, end), tag in zip(words, tags):
        if not _BIO_TAG.fullmatch(tag):
            raise DataError(f"tag {tag!r} is not BIO; use O, B-type or I-type")
        prefix, _, label = tag.partition("-")
        if prefix == "I" and current is not None and current[2] == label:
            current[1] = end
            continue
        if current is not None:
            spans.append(Span(*current))
        current = None if prefix == "O" else [start, end, label]
    if current is not None:
        spans.append(Span(*current))
    return spans


def parse_conll(content: str, where: str) -> list[TaggedExample]:
    """Read CoNLL text: one ``token<TAB>tag`` (or space-separated) line per word, a blank line between sentences.

    The tag is the last column, so CoNLL-2003's extra POS and chunk columns are ignored. ``where``
    (the file name) starts each error message, followed by the line number.
    """
    out: list[TaggedExample] = []
    tokens: list[str] = []
    tags: list[str] = []
    for number, line in enumerate(content.split("\n") + [""], start=1):
        line = line.strip()
        if not line or line.startswith("-DOCSTART-"):  # sentence break, or a CoNLL-2003 document marker
            if tokens:
                out.append(example_from_tokens(tokens, tags))
                tokens, tags = [], []
            continue
        parts = line.split()
        if len(parts) < 2 or not _BIO_TAG.fullmatch(parts[-1]):
            raise DataError(f"{where}:{number}: expected 'token<TAB>tag', tag O, B-type or I-type; got {line!r}")
        tokens.append(parts[0])
        tags.append(parts[-1])
    return out


def parse_span_records(records: Iterable[tuple[str, dict[str, Any]]]) -> list[TaggedExample]:
    """Read ``{"text": ..., "spans": [{"start", "end", "label", "text"?}, ...]}`` records, each with its location."""
    out = []
    for where, record in records:
        spans = record.get("spans", [])
        keys = {"start", "end", "label"}
        if not isinstance(spans, list) or not all(isinstance(s, dict) and keys <= s.keys() for s in spans):
            raise DataError(f"{where}: 'spans' must be a list of {{start, end, label}} objects")
        rows = [(s["start"], s["end"], str(s["label"]), s.get("text")) for s in spans]
        out.append(example_from_spans(record.get("text"), rows, where))
    return out


def example_from_tokens(tokens: Sequence[str], tags: Sequence[str]) -> TaggedExample:
    """Rebuild a sentence from tokens joined by single spaces, with its tags as character spans."""
    words, offset = [], 0
    for token in tokens:
        words.append((token, offset, offset + len(token)))
        offset += len(token) + 1
    return TaggedExample(" ".join(tokens), tuple(bio_to_spans(words, tags)))


def example_from_spans(text: Any, spans: list[tuple[Any, Any, str, Any]], where: str) -> TaggedExample:
    """Build an example from unchecked ``(start, end, label, expected_text_or_None)`` spans of ``text``.

    The text is stripped and the spans shifted to match. Raises DataError on an empty text; a span
    out of range, covering only whitespace or not matching its expected text is skipped with a
    :class:`DataWarning` that starts with ``where``.
    """
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: empty text; fill it in or delete the example")
    lead = len(text) - len(text.lstrip())
    kept = []
    for start, end, label, expected in spans:
        if type(start) is not int or type(end) is not int or not 0 <= start < end <= len(text):
            problem = f"is outside the text (length {len(text)})"
        elif expected is not None and text[start:end] != expected:
            problem = f"covers {text[start:end]!r}, not its slot text {expected!r}"
        elif not text[start:end].strip():
            problem = "covers only whitespace"
        else:
            piece = text[start:end]  # trim whitespace inside the span so its edges land on words
            start, end = start + len(piece) - len(piece.lstrip()), end - len(piece) + len(piece.rstrip())
            kept.append(Span(start - lead, end - lead, label))  # offsets into the stripped text
            continue
        warnings.warn(f"{where}: {label!r} span [{start}, {end}) {problem}; span skipped", DataWarning, stacklevel=2)
    return TaggedExample(text.strip(), tuple(sorted(kept, key=lambda s: (s.start, s.end))))


@contextmanager
def recorded_data_warnings() -> Iterator[list[str]]:
    """Collect every :class:`DataWarning` (skipped spans) raised inside, as messages, instead of showing them."""
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        try:
            yield messages
        finally:
            for item in caught:
                if issubclass(item.category, DataWarning):
                    messages.append(str(item.message))
                else:  # anything else is not ours to swallow
                    warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)


def entity_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """Entity micro-F1 with seqeval's strict IOB2 span matching."""
    from seqeval.metrics import f1_score
    from seqeval.scheme import IOB2

    return float(f1_score(list(map(list, gold)), list(map(list, predicted)), mode="strict", scheme=IOB2, zero_division=0))
