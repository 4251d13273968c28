"""Mention replacement: more tagging examples from the ones we have.

A sentence keeps its words around an entity and gets another entity of the same type in its place
("pay 20 pounds to Anna on Monday" → "pay 5 euros to Tom this Friday"). The context that tells a
``date_from`` from a ``date_to`` stays; the model sees each type's mentions in more contexts and
more mentions of each type, which is what a 1,700-sentence training set lacks. Only the training
split is augmented: validation and test sentences stay as written.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

from finetune.tagging import Span, TaggedExample


def mention_pool(examples: Sequence[TaggedExample]) -> dict[str, list[str]]:
    """Distinct mention texts per entity type, in first-seen order."""
    pool: dict[str, dict[str, None]] = defaultdict(dict)
    for example in examples:
        for span in example.spans:
            pool[span.label][example.text[span.start : span.end]] = None
    return {label: list(texts) for label, texts in pool.items()}


def replace_mentions(example: TaggedExample, pool: dict[str, list[str]], rng: random.Random) -> TaggedExample:
    """``example`` with each entity replaced by another mention of its type (kept when it has no other)."""
    text, spans, cursor = "", [], 0
    for span in sorted(example.spans, key=lambda s: s.start):
        original = example.text[span.start : span.end]
        choices = [m for m in pool.get(span.label, ()) if m != original]
        mention = rng.choice(choices) if choices else original
        text += example.text[cursor : span.start]
        spans.append(Span(len(text), len(text) + len(mention), span.label))
        text += mention
        cursor = span.end
    return TaggedExample(text + example.text[cursor:], tuple(spans))


def augment(examples: Sequence[TaggedExample], copies: int, *, seed: int = 0) -> list[TaggedExample]:
    """``examples`` followed by ``copies`` mention-replaced copies of each example with entities.

    Args:
        examples: Training sentences (their mentions are also the replacement pool).
        copies: New sentences per sentence that has entities; 0 returns ``examples`` unchanged.
        seed: Seed of the replacement choices.
    """
    if copies < 0:
        raise ValueError(f"copies must be >= 0, got {copies}")
    if any(a.end > b.start for ex in examples for a, b in zip(ex.spans, ex.spans[1:])):
        raise ValueError("overlapping entity spans cannot be replaced; remove the overlap first")
    rng = random.Random(seed)
    pool = mention_pool(examples)
    extra = [replace_mentions(ex, pool, rng) for _ in range(copies) for ex in examples if ex.spans]
    return list(examples) + extra
