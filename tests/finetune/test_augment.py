import pytest

from finetune.augment import augment, mention_pool, replace_mentions
from finetune.tagging import Span, TaggedExample


def _example(text: str, *mentions: tuple[str, str]) -> TaggedExample:
    spans = []
    for mention, label in mentions:
        start = text.index(mention)
        spans.append(Span(start, start + len(mention), label))
    return TaggedExample(text, tuple(sorted(spans, key=lambda s: s.start)))


EXAMPLES = [
    _example("pay 20 pounds to Anna on Monday", ("20 pounds", "amount_of_money"), ("Anna", "person_name"), ("on Monday", "date")),
    _example("send Tom 5 euros", ("Tom", "person_name"), ("5 euros", "amount_of_money")),
    _example("what is my balance"),
]


def test_the_pool_holds_each_types_mentions():
    assert mention_pool(EXAMPLES) == {"amount_of_money": ["20 pounds", "5 euros"], "person_name": ["Anna", "Tom"],
                                      "date": ["on Monday"]}


def test_replaced_mentions_keep_their_type_and_exact_offsets():
    import random

    new = replace_mentions(EXAMPLES[0], mention_pool(EXAMPLES), random.Random(0))
    assert new.text == "pay 5 euros to Tom on Monday"  # "on Monday" has no other date to become
    assert [(new.text[s.start:s.end], s.label) for s in new.spans] == [
        ("5 euros", "amount_of_money"), ("Tom", "person_name"), ("on Monday", "date")]


def test_augment_adds_copies_of_sentences_with_entities_only():
    out = augment(EXAMPLES, 2, seed=1)
    assert out[:3] == EXAMPLES and len(out) == 3 + 2 * 2
    for example in out:
        assert all(example.text[s.start:s.end] in mention_pool(EXAMPLES)[s.label] for s in example.spans)
    assert augment(EXAMPLES, 0) == EXAMPLES and augment(EXAMPLES, 2, seed=1) == out  # seeded


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="copies"):
        augment(EXAMPLES, -1)
    overlapping = TaggedExample("pay Anna Lee", (Span(4, 8, "person_name"), Span(6, 12, "person_name")))
    with pytest.raises(ValueError, match="overlapping"):
        augment([overlapping], 1)
