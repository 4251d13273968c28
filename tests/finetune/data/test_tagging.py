"""Tests for finetune.data.tagging: words and BIO tags, and the CoNLL / JSONL-with-spans parsers on small strings.

Reading these formats from files, split by split, is tested through ``load_entities`` in test_data.py.
"""

from __future__ import annotations

import re

import pytest

from finetune.data.tagging import (
    DataError,
    DataWarning,
    Span,
    TaggedExample,
    bio_to_spans,
    example_from_spans,
    parse_conll,
    parse_span_records,
    spans_to_bio,
    words_with_offsets,
)

# --- words and BIO tags --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("is there something free at 5ish?", ["is", "there", "something", "free", "at", "5", "ish", "?"]),
        ("Send £20 to Monzo's card", ["Send", "£", "20", "to", "Monzo", "'", "s", "card"]),
        ("  from 9 05 to 7 p.m.  ", ["from", "9", "05", "to", "7", "p", ".", "m", "."]),
        ("", []),
    ],
)
def test_words_with_offsets_splits_words_and_keeps_offsets(text: str, words: list[str]) -> None:
    found = words_with_offsets(text)
    assert [w for w, _, _ in found] == words
    assert all(text[start:end] == word for word, start, end in found)


@pytest.mark.parametrize(
    ("text", "spans", "tags"),
    [
        ("pay 20 pounds to Anna", [Span(4, 13, "amount"), Span(17, 21, "person")],
         ["O", "B-amount", "I-amount", "O", "B-person"]),
        ("Anna Bob", [Span(0, 4, "person"), Span(5, 8, "person")], ["B-person", "B-person"]),
        ("at 5ish?", [Span(3, 4, "time")], ["O", "B-time", "O", "O"]),
        ("until 7 p.m.", [Span(6, 12, "time")], ["O", "B-time", "I-time", "I-time", "I-time", "I-time"]),
    ],
)  # fmt: skip
def test_spans_to_bio_round_trips(text: str, spans: list[Span], tags: list[str]) -> None:
    words, found = spans_to_bio(text, spans)
    assert found == tags
    assert bio_to_spans(words, found) == spans


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        ([Span(1, 4, "x")], "word boundaries"),  # starts inside "Monzo"
        ([Span(0, 5, "company"), Span(0, 13, "company")], "overlaps an earlier span"),
    ],
)
def test_spans_to_bio_skips_unwritable_span_with_warning(spans: list[Span], message: str) -> None:
    with pytest.warns(DataWarning, match=message):
        _, tags = spans_to_bio("Monzo account", spans)
    assert tags.count("O") == len(tags) - (1 if len(spans) == 2 else 0)


def test_bio_to_spans_starts_entity_at_stray_inside_tag() -> None:
    words = words_with_offsets("send 20 pounds now")
    assert bio_to_spans(words, ["O", "I-amount", "I-amount", "O"]) == [Span(5, 14, "amount")]


@pytest.mark.parametrize(("tags", "message"), [(["O", "X-amount"], "not BIO"), (["O"], "2 words but 1 tags")])
def test_bio_to_spans_rejects_bad_tags(tags: list[str], message: str) -> None:
    with pytest.raises(DataError, match=message):
        bio_to_spans(words_with_offsets("send 20"), tags)


# --- entity file formats -------------------------------------------------------------------------


def test_parse_conll_splits_sentences_and_skips_docstart() -> None:
    content = "-DOCSTART- O\n\nSend\tO\n20\tB-amount\npounds\tI-amount\n\n\nhi NN O\nthere NN O"
    assert parse_conll(content, "x.conll") == [
        TaggedExample("Send 20 pounds", (Span(5, 14, "amount"),)),
        TaggedExample("hi there"),  # the tag is the last column, as in CoNLL-2003
    ]


def test_parse_conll_error_names_file_and_line() -> None:
    with pytest.raises(DataError, match=r"^x.conll:2: expected 'token<TAB>tag'.*got 'lonely'$"):
        parse_conll("Send O\nlonely\n", "x.conll")


def test_parse_span_records_keeps_record_locations() -> None:
    records = [("f:1", {"text": "pay 20", "spans": [{"start": 4, "end": 6, "label": 7}]}), ("f:2", {"text": "hi"})]
    assert parse_span_records(records) == [TaggedExample("pay 20", (Span(4, 6, "7"),)), TaggedExample("hi")]
    with pytest.raises(DataError, match=r"^f:3: 'spans' must be a list"):
        parse_span_records([("f:3", {"text": "hi", "spans": {"start": 0}})])


@pytest.mark.parametrize(
    ("span", "problem"),
    [
        ((0, 3, "x", None), "covers only whitespace"),
        ((3, 2, "x", None), "is outside the text (length 10)"),
        (("3", 6, "x", None), "is outside the text (length 10)"),
        ((3, 6, "x", "pax"), "covers 'pay', not its slot text 'pax'"),
    ],
)
def test_example_from_spans_skips_bad_span_with_warning(span: tuple, problem: str) -> None:
    with pytest.warns(DataWarning, match=rf"^here: 'x' span .* {re.escape(problem)}; span skipped$"):
        example = example_from_spans("   pay 20 ", [span, (7, 10, "amount", None)], "here")
    assert example == TaggedExample("pay 20", (Span(4, 6, "amount"),))  # stripped; the good span trimmed and shifted
