import pytest

from finetune.data.augment import augment, faker_mentions, load_mentions, mention_pool, replace_mentions, shared_pool
from finetune.data.tagging import Span, TaggedExample


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


def test_extra_mentions_supply_about_half_of_their_types_replacements():
    extra = {"person_name": ["Zoe Quinn", "Yusuf"]}
    out = augment(EXAMPLES, 200, seed=3, extra=extra)[3:]
    names = [ex.text[s.start:s.end] for ex in out for s in ex.spans if s.label == "person_name"]
    from_extra = sum(name in extra["person_name"] for name in names) / len(names)
    assert 0.4 < from_extra < 0.6  # EXTRA_SHARE; the rest still come from the training mentions
    assert set(names) == {"Anna", "Tom", "Zoe Quinn", "Yusuf"}
    amounts = {ex.text[s.start:s.end] for ex in out for s in ex.spans if s.label == "amount_of_money"}
    assert amounts == {"20 pounds", "5 euros"}  # types without extras are untouched
    for ex in out:  # offsets stay exact around mentions of another length
        assert all(ex.text[s.start:s.end].strip() == ex.text[s.start:s.end] != "" for s in ex.spans)


def test_faker_names_follow_the_pools_casing_and_length():
    pool = {"person_name": ["anna lee", "tom", "maria ortiz", "john smith"], "company_name": ["Tesco", "Waitrose"],
            "date": ["on Monday"]}
    made = faker_mentions(pool, count=300, seed=1)
    assert set(made) == {"person_name", "company_name"}  # Faker makes up names, not dates
    assert all(name == name.lower() for name in made["person_name"])  # the pool writes people in lower case
    assert all(name[:1].isupper() for name in made["company_name"])  # and companies capitalised
    assert all("," not in name for name in made["company_name"])
    one_word = sum(" " not in name for name in made["person_name"]) / len(made["person_name"])
    assert 0.1 < one_word < 0.45  # a quarter of the pool's people have one word
    assert faker_mentions(pool, count=300, seed=1) == made and faker_mentions(pool, count=300, seed=2) != made


def test_mention_files_are_checked_against_the_datas_types(tmp_path):
    good = tmp_path / "payees.json"
    good.write_text('{"person_name": [" Zoe ", "Yusuf"], "company_name": ["Tesco"]}')
    assert load_mentions(good, ["company_name", "person_name"]) == {"person_name": ["Zoe", "Yusuf"],
                                                                    "company_name": ["Tesco"]}
    cases = {"[1, 2]": "JSON object", '{"payee": ["Zoe"]}': "'payee' is not an entity type",
             '{"person_name": []}': "non-empty mention strings", '{"person_name": ["", 3]}': "non-empty mention strings",
             "{broken": "cannot read mentions"}
    for content, message in cases.items():
        good.write_text(content)
        with pytest.raises(ValueError, match=message):
            load_mentions(good, ["company_name", "person_name"])
    with pytest.raises(ValueError, match="cannot read mentions"):
        load_mentions(tmp_path / "missing.json", ["person_name"])


def test_extras_for_absent_types_leave_the_augmentation_as_it_was():
    plain = augment(EXAMPLES, 3, seed=4)
    assert augment(EXAMPLES, 3, seed=4, extra={}) == plain
    assert augment(EXAMPLES, 3, seed=4, extra={"company_name": ["Tesco"]}) == plain  # no company in EXAMPLES


def test_a_mention_glued_to_a_word_is_only_replaced_by_one_that_keeps_the_word_edges():
    import random

    from finetune.data.tagging import spans_to_bio

    glued = _example("pay on the 5th please", ("5", "date"))  # "5" is a word of its own: digits, then "th"
    pool = {"date": ["5", "monday", "12", "tomorrow"]}
    for seed in range(20):
        new = replace_mentions(glued, pool, random.Random(seed))
        assert new.text == "pay on the 12th please"  # never "the mondayth"
        words, tags = spans_to_bio(new.text, new.spans)
        assert tags.count("B-date") == 1  # the span still sits on word edges, so it keeps its tag
    no_fit = replace_mentions(glued, {"date": ["5", "monday"]}, random.Random(0))
    assert no_fit == glued  # nothing else fits: the original stays


def test_role_types_in_a_group_swap_in_each_others_mentions():
    pool = {"date": ["today"], "date_from": ["Monday", "today"], "date_to": ["May"], "time": ["9 am"]}
    shared = shared_pool(pool, [["date", "date_from", "date_to"]])
    assert shared["date"] == shared["date_from"] == shared["date_to"] == ["today", "Monday", "May"]
    assert shared["time"] == ["9 am"] and pool["date"] == ["today"]  # other types and the input stay as they were
    since = _example("spent since May", ("May", "date_from"))
    copies = augment([since, _example("paid today", ("today", "date"))], 30, seed=0,
                     shared=[["date", "date_from", "date_to"]])
    assert {ex.text for ex in copies if ex.text.startswith("spent since")} == {
        "spent since May", "spent since today"}  # a date mention now fills the date_from role
    assert all(s.label == "date_from" for ex in copies if ex.text.startswith("spent") for s in ex.spans)
