"""Mention replacement: more tagging examples from the ones we have.

A sentence keeps its words around an entity and gets another entity of the same type in its place
("pay 20 pounds to Anna on Monday" → "pay 5 euros to Tom this Friday"). The context that tells a
``date_from`` from a ``date_to`` stays; the model sees each type's mentions in more contexts and
more mentions of each type, which is what a 1,700-sentence training set lacks. Only the training
split is augmented: validation and test sentences stay as written.

Open-class types (people's and companies' names) have few distinct mentions in a small training set,
so the model learns those mentions rather than the contexts around them. ``extra`` mentions widen
their pool: a bank's own payee or merchant list (:func:`load_mentions`), or names made up by Faker
(:func:`faker_mentions`).

Some types differ only by their role in the sentence: a ``date_from`` and a ``date_to`` are both
dates, told apart by "since" or "until" around them. ``shared`` groups of such types draw from one
pool, so each role's contexts meet every date the data has, and only the context can tell the role.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from finetune.data.tagging import Span, TaggedExample, words_with_offsets
from finetune.errors import SettingError


def mention_pool(examples: Sequence[TaggedExample]) -> dict[str, list[str]]:
    """Distinct mention texts per entity type, in first-seen order."""
    pool: dict[str, dict[str, None]] = defaultdict(dict)
    for example in examples:
        for span in example.spans:
            pool[span.label][example.text[span.start : span.end]] = None
    return {label: list(texts) for label, texts in pool.items()}


#: Share of replacements drawn from the extra mentions of a type that has them; the rest keep
#: drawing from the training mentions, so the model still sees the data's own kind of names.
EXTRA_SHARE = 0.5
#: Entity types Faker can make up mentions for.
FAKER_TYPES = ("person_name", "company_name")


def replace_mentions(
    example: TaggedExample,
    pool: dict[str, list[str]],
    rng: random.Random,
    extra: Mapping[str, Sequence[str]] | None = None,
) -> TaggedExample:
    """``example`` with each entity replaced by another mention of its type (kept when it has no other).

    A type with ``extra`` mentions takes one of them for :data:`EXTRA_SHARE` of its replacements.
    """
    text, spans, cursor = "", [], 0
    for span in sorted(example.spans, key=lambda s: s.start):
        original = example.text[span.start : span.end]
        extras = extra.get(span.label) if extra else None
        # No draw when a type has no extras, so plain --augment makes the same sentences as before.
        source = extras if extras and rng.random() < EXTRA_SHARE else pool.get(span.label, ())
        choices = [m for m in source if m != original]
        left, right = (text + example.text[cursor : span.start])[-1:], example.text[span.end : span.end + 1]
        if any(c.isalnum() for c in left + right):  # "5th" must not become "Mondayth"
            choices = [m for m in choices if _whole_words(left, m, right)]
        mention = rng.choice(choices) if choices else original
        text += example.text[cursor : span.start]
        spans.append(Span(len(text), len(text) + len(mention), span.label))
        text += mention
        cursor = span.end
    return TaggedExample(text + example.text[cursor:], tuple(spans))


def _whole_words(left: str, mention: str, right: str) -> bool:
    """Whether ``mention`` between these characters still starts and ends a word.

    Otherwise its span could not be written as BIO tags and the copy would teach "O" for an entity.
    """
    words = words_with_offsets(left + mention + right)
    return len(left) in {s for _, s, _ in words} and len(left) + len(mention) in {e for _, _, e in words}


def shared_pool(pool: Mapping[str, Sequence[str]], groups: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    """``pool`` with the types of each group drawing from all of the group's mentions."""
    out = {label: list(mentions) for label, mentions in pool.items()}
    for group in groups:
        merged = list(dict.fromkeys(m for label in group for m in pool.get(label, ())))
        out.update({label: merged for label in group})
    return out


def augment(
    examples: Sequence[TaggedExample],
    copies: int,
    *,
    seed: int = 0,
    extra: Mapping[str, Sequence[str]] | None = None,
    shared: Sequence[Sequence[str]] = (),
) -> list[TaggedExample]:
    """``examples`` followed by ``copies`` mention-replaced copies of each example with entities.

    Args:
        examples: Training sentences (their mentions are also the replacement pool).
        copies: New sentences per sentence that has entities; 0 returns ``examples`` unchanged.
        seed: Seed of the replacement choices.
        extra: More mentions per entity type (see :func:`replace_mentions`).
        shared: Groups of types whose mentions replace each other (see :func:`shared_pool`).
    """
    if copies < 0:
        raise ValueError(f"copies must be >= 0, got {copies}")
    if any(a.end > b.start for ex in examples for a, b in zip(ex.spans, ex.spans[1:])):
        raise ValueError("overlapping entity spans cannot be replaced; remove the overlap first")
    rng = random.Random(seed)
    pool = shared_pool(mention_pool(examples), shared)
    new = [replace_mentions(ex, pool, rng, extra) for _ in range(copies) for ex in examples if ex.spans]
    return list(examples) + new


def faker_mentions(pool: Mapping[str, Sequence[str]], *, count: int = 1000, seed: int = 0) -> dict[str, list[str]]:
    """Made-up names for the :data:`FAKER_TYPES` in ``pool``, written like the pool's own.

    People get a first name, a last name or both, in the shares the pool shows (by word count);
    companies get Faker's company names without commas. Each mention is lower-cased as often as
    the pool's mentions of that type start in lower case (NLU++ writes people's names in lower case).
    Offline and seeded: Faker ships its name lists.
    """
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    out: dict[str, list[str]] = {}
    for label in FAKER_TYPES:
        mentions = list(pool.get(label, ()))
        if not mentions:
            continue
        lower = sum(m[:1].islower() for m in mentions) / len(mentions)
        single = sum(len(m.split()) == 1 for m in mentions) / len(mentions)
        made: dict[str, None] = {}
        for _ in range(count):
            if label == "person_name":
                name = (rng.choice((fake.first_name, fake.last_name))() if rng.random() < single
                        else f"{fake.first_name()} {fake.last_name()}")
            else:
                name = fake.company()
                if "," in name:  # "Lloyd, Archer and Patel" would teach spans across commas, which lists use
                    continue
            made[name.lower() if rng.random() < lower else name] = None
        out[label] = list(made)
    return out


def load_mentions(path: str | Path, entity_types: Sequence[str]) -> dict[str, list[str]]:
    """Mentions per entity type from a JSON file ``{"company_name": ["Tesco", ...], ...}``.

    Raises ValueError, naming the file and what to fix, for anything else: a type the data does
    not have, an empty list, a mention that is not a non-empty string.
    """
    where = Path(path)
    try:
        loaded = json.loads(where.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read mentions from {where}: {exc}") from exc
    if not isinstance(loaded, dict) or not loaded:
        raise ValueError(f"{where} must hold a JSON object of entity type -> list of mentions")
    for label, mentions in loaded.items():
        if label not in entity_types:
            raise ValueError(f"{where}: {label!r} is not an entity type of the data (have: {', '.join(entity_types)})")
        if (not isinstance(mentions, list) or not mentions
                or not all(isinstance(m, str) and m.strip() for m in mentions)):
            raise ValueError(f"{where}: {label!r} must list one or more non-empty mention strings")
    return {label: [m.strip() for m in mentions] for label, mentions in loaded.items()}


def mention_groups(share_mentions: Sequence[str], entity_types: Sequence[str]) -> list[list[str]]:
    """``--share-mentions`` values (``"date,date_from,date_to"`` each) as groups of two or more of the
    data's entity types, no type in two groups."""
    groups = []
    for value in share_mentions:
        group = [t.strip() for t in value.split(",") if t.strip()]
        unknown = [t for t in group if t not in entity_types]
        if unknown:
            raise SettingError("share_mentions", f"{', '.join(unknown)}: not an entity type of the data "
                                                 f"(have: {', '.join(entity_types)})")
        if len(set(group)) < 2:
            raise SettingError("share_mentions", f"{value!r} names one type; a group shares mentions between two or more")
        groups.append(list(dict.fromkeys(group)))
    if len({t for g in groups for t in g}) < sum(map(len, groups)):
        raise SettingError("share_mentions", "an entity type may be in one group only")
    return groups


def augmented_training_set(
    train: list[TaggedExample],
    entity_types: Sequence[str],
    copies: int,
    *,
    mentions: str | None = None,
    share_mentions: Sequence[str] = (),
    seed: int = 0,
    say: Callable[[str], None] = lambda message: None,
) -> list[TaggedExample]:
    """The training split with ``copies`` mention-replaced copies of each sentence (``agent finetune
    ner --augment``), drawing on ``mentions`` (``"faker"`` or a JSON file) and ``share_mentions`` groups.

    Args:
        say: Told what extra mentions were loaded, or why ``faker`` had nothing to add.
    """
    for setting, value in (("mentions", mentions), ("share_mentions", share_mentions)):
        if value and not copies:
            raise SettingError(setting, "only used by --augment; add --augment N (e.g. 6)")
    groups = mention_groups(share_mentions, entity_types)
    if not copies:
        return train
    extra = None
    if mentions == "faker":
        extra = faker_mentions(mention_pool(train), seed=seed)
    elif mentions is not None:
        try:
            extra = load_mentions(mentions, entity_types)
        except ValueError as exc:
            raise SettingError("mentions", str(exc)) from exc
    if extra:
        say("extra mentions: " + ", ".join(f"{len(v)} {k}" for k, v in extra.items()))
    elif mentions == "faker":
        say(f"warning: --mentions faker makes up {' and '.join(FAKER_TYPES)} mentions; the data has neither")
    return augment(train, copies, seed=seed, extra=extra, shared=groups)
