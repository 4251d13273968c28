"""Tests for finetune.data.loaders: small files written to tmp_path, then the shared reference data sets."""

from __future__ import annotations

import csv
import json
import sys
import warnings
from pathlib import Path

import pytest

from finetune.data.loaders import (
    OUT_OF_SCOPE,
    DataError,
    DataWarning,
    Span,
    TaggedExample,
    add_train_examples,
    bio_to_spans,
    load_entities,
    load_intents,
    load_sentiment,
    resolve_data_dir,
    spans_to_bio,
)

LABELS = ("card_lost", "refund", "top_up")


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def intent_csv(rows_per_label: int = 20, labels: tuple[str, ...] = LABELS) -> str:
    rows = [f"please help with {label} number {i},{label}" for label in labels for i in range(rows_per_label)]
    return "text,label\n" + "\n".join(rows) + "\n"


# --- text classification from user files ---------------------------------------------------------


def test_single_csv_gives_stratified_seeded_splits(tmp_path: Path) -> None:
    path = write(tmp_path / "intents.csv", intent_csv())
    data = load_intents(str(path), val_fraction=0.1, seed=3)
    assert data.name == "intents"
    assert data.labels == sorted(LABELS)
    assert (len(data.train), len(data.validation), len(data.test)) == (48, 6, 6)
    for split in (data.validation, data.test):
        assert sorted({ex.label for ex in split}) == data.labels  # stratified: every label held out twice
    texts = {ex.text for split in (data.train, data.validation, data.test) for ex in split}
    assert len(texts) == 60  # nothing lost, nothing duplicated
    assert load_intents(str(path), seed=3).test == data.test
    assert load_intents(str(path), seed=4).test != data.test


def test_added_training_examples_join_train_only(tmp_path: Path) -> None:
    base = load_intents(str(write(tmp_path / "intents.csv", intent_csv())), seed=3)
    extra = write(tmp_path / "more.jsonl", "\n".join(json.dumps({"q": f"extra {i}", "y": "refund"}) for i in range(5)))
    more = add_train_examples(base, [extra], text_column="q", label_column="y")
    assert more.train[: len(base.train)] == base.train
    assert [ex.text for ex in more.train[len(base.train):]] == [f"extra {i}" for i in range(5)]
    assert (more.validation, more.test, more.labels) == (base.validation, base.test, base.labels)
    assert len(base.train) == 48  # the source data set is left as it was


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("more.csv", "text,label\nhello,weather\n", "labels 'weather' are not among"),
        ("more.txt", "hello\n", "must be an existing CSV or JSONL file"),
        ("more.csv", "words,label\nhello,refund\n", "no column"),
    ],
)
def test_bad_added_training_file_is_one_clear_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    base = load_intents(str(write(tmp_path / "intents.csv", intent_csv())))
    with pytest.raises(DataError, match=message):
        add_train_examples(base, [write(tmp_path / name, content)])
    with pytest.raises(DataError, match="must be an existing CSV or JSONL file"):
        add_train_examples(base, [tmp_path / "missing.csv"])


def test_jsonl_with_custom_columns_strips_text_and_stringifies_labels(tmp_path: Path) -> None:
    lines = [json.dumps({"utterance": f"  question {i}  ", "intent": i % 2}) for i in range(40)]
    path = write(tmp_path / "data.jsonl", "\n".join(lines) + "\n\n")
    data = load_sentiment(str(path), text_column="utterance", label_column="intent")
    assert data.labels == ["0", "1"]
    assert data.train[0].text.startswith("question")
    assert len(data.train) + len(data.validation) + len(data.test) == 40


def test_folder_uses_its_split_files(tmp_path: Path) -> None:
    write(tmp_path / "train.csv", intent_csv(10))
    write(tmp_path / "valid.csv", intent_csv(2))
    write(tmp_path / "test.csv", intent_csv(3))
    data = load_intents(str(tmp_path))
    assert (len(data.train), len(data.validation), len(data.test)) == (30, 6, 9)


def test_multiline_quoted_csv_text_is_one_record(tmp_path: Path) -> None:
    body = intent_csv() + '"first line\nsecond line",refund\n'
    data = load_intents(str(write(tmp_path / "q.csv", body)))
    texts = [ex.text for split in (data.train, data.validation, data.test) for ex in split]
    assert "first line\nsecond line" in texts


BROKEN_TEXT = [
    ("bad.csv", "sentence,intent\nhi,a\n", {}, r"no column 'text', 'label'; the columns are 'sentence', 'intent'"),
    ("bad.csv", "text,label\nhello,a\n  ,b\n", {}, r"bad.csv:3: empty text"),
    ("bad.csv", "text,label\nhello,a\nbye,\n", {}, r"bad.csv:3: empty label"),
    ("bad.csv", "text,label\nhello,a\nbye,b,extra\n", {}, r"bad.csv:3: 3 fields, the header has 2"),
    ("bad.csv", "text,label\n" + "hi,only\n" * 30, {}, r"train has only one label \('only'\)"),
    ("bad.csv", b"text,label\nhello,a\ncaf\xe9,b\n", {}, r"bad.csv:3: bytes that are not UTF-8"),
    ("bad.csv", "text,label\n" + "x" * 50 + ",a\n", {"max_chars": 20}, r"bad.csv:2: 50 characters > max_chars=20"),
    ("bad.jsonl", '{"text": "hi", "label": "a"}\n{"text": "oops"\n', {}, r"bad.jsonl:2: malformed JSON line"),
    ("bad.jsonl", '{"text": "hi", "intent": "a"}\n', {}, r"bad.jsonl:1: no key 'label' \(keys: 'text', 'intent'\)"),
    ("bad.jsonl", '["hi", "a"]\n', {}, r"bad.jsonl:1: expected a JSON object"),
    ("bad.csv", intent_csv(), {"val_fraction": 0.7}, r"val_fraction must be between 0 and 0.5"),
    ("tiny.csv", "text,label\nhi,a\nbye,b\n", {}, r"too few examples \(2\) to carve a test split"),
]


@pytest.mark.parametrize(("name", "content", "options", "message"), BROKEN_TEXT)
def test_broken_text_file_raises_one_clear_line(
    tmp_path: Path, name: str, content: str | bytes, options: dict, message: str
) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(DataError, match=message) as caught:
        load_intents(str(path), **options)
    assert "\n" not in str(caught.value)


def test_unseen_test_labels_are_named(tmp_path: Path) -> None:
    write(tmp_path / "train.csv", intent_csv(10))
    write(tmp_path / "test.csv", "text,label\nhi,refund\nyo,weird_one\nhey,odd_two\n")
    with pytest.raises(DataError, match=r"test labels not in train: 'odd_two', 'weird_one'"):
        load_intents(str(tmp_path))


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing/file.csv", r"file not found: missing/file.csv"),
        ("not_a_data_set", r"file not found: not_a_data_set; .* or 'banking77', 'clinc150'"),
    ],
)
def test_unknown_source_says_what_to_give(source: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_intents(source)


def test_folder_without_train_file_lists_its_files(tmp_path: Path) -> None:
    write(tmp_path / "notes.md", "hi")
    with pytest.raises(DataError, match=r"no train file .*found 'notes.md'"):
        load_intents(str(tmp_path))


@pytest.mark.parametrize("loader", [load_intents, load_entities])
def test_hub_id_without_datasets_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch, loader) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail, no network touched
    with pytest.raises(DataError, match=r"pip install datasets"):
        loader("PolyAI/banking77")


def test_resolve_data_dir_prefers_argument_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "env"
    other.mkdir()
    monkeypatch.setenv("QAGENT_DATA_DIR", str(other))
    assert resolve_data_dir(tmp_path) == tmp_path
    assert resolve_data_dir(None) == other
    monkeypatch.setenv("QAGENT_DATA_DIR", str(tmp_path / "gone"))
    with pytest.raises(DataError, match=r"data folder not found: .*gone \(from QAGENT_DATA_DIR\); .*set QAGENT"):
        resolve_data_dir(None)


def test_builtin_with_missing_file_names_path(tmp_path: Path) -> None:
    (tmp_path / "banking77").mkdir()
    with pytest.raises(DataError, match=r"file not found: .*banking77/categories.json"):
        load_intents("banking77", data_dir=tmp_path)


# --- entity tagging from user files ---------------------------------------------------------------

CONLL = "-DOCSTART- O\n\nSend\tO\n20\tB-amount\npounds\tI-amount\nto\tO\nAnna\tB-person\n\nhi O\nthere O\n"


def test_conll_rebuilds_text_and_char_spans(tmp_path: Path) -> None:
    path = write(tmp_path / "train.conll", CONLL * 10)
    data = load_entities(str(path))
    assert data.entity_types == ["amount", "person"]
    examples = data.train + data.validation + data.test
    assert len(examples) == 20
    send = next(ex for ex in examples if ex.text.startswith("Send"))
    assert send == TaggedExample("Send 20 pounds to Anna", (Span(5, 14, "amount"), Span(18, 22, "person")))


def test_jsonl_entities_strip_text_and_shift_spans(tmp_path: Path) -> None:
    record = {"text": "  pay 20 pounds ", "spans": [{"start": 6, "end": 16, "label": "amount"}]}
    path = write(tmp_path / "ner.jsonl", "\n".join(json.dumps(record) for _ in range(20)))
    example = load_entities(str(path)).train[0]
    assert example == TaggedExample("pay 20 pounds", (Span(4, 13, "amount"),))


@pytest.mark.parametrize(
    ("span", "message"),
    [
        ({"start": 4, "end": 99, "label": "amount"}, r"ner.jsonl:2: 'amount' span \[4, 99\) is outside the text"),
        ({"start": 4, "end": 6, "label": "amount", "text": "30"}, r"ner.jsonl:2: .* covers '20', not its slot text"),
    ],
)
def test_bad_entity_span_is_skipped_with_warning(tmp_path: Path, span: dict, message: str) -> None:
    good = {"text": "pay 20 pounds", "spans": [{"start": 4, "end": 13, "label": "amount"}]}
    lines = [json.dumps(good), json.dumps({"text": "pay 20 pounds", "spans": [span]})] + [json.dumps(good)] * 20
    with pytest.warns(DataWarning, match=message):
        data = load_entities(str(write(tmp_path / "ner.jsonl", "\n".join(lines))))
    assert sum(not ex.spans for ex in data.train + data.validation + data.test) == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.conll", "Send O\n20 B-amount\npounds X-amount\n", r"bad.conll:3: expected 'token<TAB>tag'"),
        ("bad.conll", "Send O\nlonely\n", r"bad.conll:2: expected 'token<TAB>tag'"),
        ("bad.jsonl", '{"text": "hi", "spans": [{"start": 0}]}\n', r"bad.jsonl:1: 'spans' must be a list"),
        ("bad.jsonl", '{"text": "", "spans": []}\n', r"bad.jsonl:1: empty text"),
        ("bad.conll", "hi O\nthere O\n", r"no entity spans"),
    ],
)
def test_broken_entity_file_raises_one_clear_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_entities(str(write(tmp_path / name, content)))


def fake_nlupp(root: Path, per_fold: int = 5) -> Path:
    """A 20-fold NLU++-shaped folder; fold 3 example 1 has a slot whose span misses its text."""
    write(root / "nlupp" / "ontology.json", json.dumps({"intents": {}, "slots": {"amount_of_money": {}, "date": {}}}))
    for fold in range(20):
        examples: list[dict] = [
            {"text": f"send 5{i} pounds", "intents": ["transfer"],
             "slots": {"amount_of_money": {"text": f"5{i} pounds", "span": [5, 14], "value": 50 + i}}}
            for i in range(per_fold)
        ]  # fmt: skip
        if fold == 3:
            examples[1]["slots"]["amount_of_money"]["text"] = "51 euros"
        examples.append({"text": "hello"})
        write(root / "nlupp" / "banking" / f"fold{fold}.json", json.dumps(examples))
    return root


def test_nlupp_folds_choose_splits_and_mismatched_slot_warns(tmp_path: Path) -> None:
    root = fake_nlupp(tmp_path)
    message = r"fold3.json example 1: 'amount_of_money' span \[5, 14\) covers '51 pounds', not its slot text"
    with pytest.warns(DataWarning, match=message):
        data = load_entities("nlupp", data_dir=root, train_folds=[0, 3], test_folds=range(4, 20))
    assert data.entity_types == ["amount_of_money", "date"]  # from the ontology, seen in data or not
    assert len(data.train) + len(data.validation) == 12
    assert len(data.test) == 16 * 6
    assert data.test[0].spans == (Span(5, 14, "amount_of_money"),)


def test_entities_with_val_fraction_0_keep_every_training_sentence(tmp_path: Path) -> None:
    root = fake_nlupp(tmp_path)
    with pytest.warns(DataWarning):
        data = load_entities("nlupp", data_dir=root, train_folds=[0, 3], test_folds=[4], val_fraction=0)
    assert len(data.train) == 12 and data.validation == [] and len(data.test) == 6
    with pytest.raises(DataError, match=r"val_fraction must be from 0 up to 0.5, got -0.1"):
        load_entities("nlupp", data_dir=root, val_fraction=-0.1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"train_folds": [0, 1], "test_folds": [1, 2]}, r"folds \[1\] are in both"),
        ({"train_folds": [25]}, r"train_folds must name folds 0-19, got \[25\]"),
        ({"test_folds": []}, r"test_folds must name folds 0-19"),
    ],
)
def test_nlupp_bad_folds(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_entities("nlupp", data_dir=fake_nlupp(tmp_path), **options)


def test_folds_only_apply_to_nlupp(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"only apply to 'nlupp'"):
        load_entities(str(write(tmp_path / "t.conll", CONLL)), train_folds=[0])


# --- the shared reference data sets --------------------------------------------------------------


def test_banking77_counts(data_dir: Path) -> None:
    data = load_intents("banking77", data_dir=data_dir)
    assert len(data.labels) == 77
    assert len(data.train) + len(data.validation) == 10_003
    assert len(data.validation) == 1_000
    assert len(data.test) == 3_080
    assert set(data.labels) == set(json.loads((data_dir / "banking77" / "categories.json").read_text()))
    assert {ex.label for ex in data.validation} == set(data.labels)  # stratified


def test_clinc150_counts_and_out_of_scope(data_dir: Path) -> None:
    data = load_intents("clinc150", data_dir=data_dir)
    assert len(data.labels) == 150 and OUT_OF_SCOPE not in data.labels
    assert (len(data.train), len(data.validation), len(data.test)) == (15_000, 3_000, 4_500)
    sizes = {name: len(rows) for name, rows in data.extra.items()}
    assert sizes == {"oos_train": 100, "oos_val": 100, "oos_test": 1_000}
    assert {ex.label for rows in data.extra.values() for ex in rows} == {OUT_OF_SCOPE}


def test_fin_tweets_keeps_valid_csv_as_test(data_dir: Path) -> None:
    data = load_sentiment("fin_tweets", data_dir=data_dir)
    assert data.labels == ["negative", "neutral", "positive"]
    # 2,388 records: the README's 2,486 counts physical lines, and 74 tweets span several lines.
    assert len(data.test) == 2_388
    assert len(data.train) + len(data.validation) == 9_543
    with open(data_dir / "fin_tweets" / "valid.csv", newline="", encoding="utf-8") as file:
        assert [ex.text for ex in data.test] == [row["text"].strip() for row in csv.DictReader(file)]
    assert not {ex.text for ex in data.test} & {ex.text for ex in data.train + data.validation}


def test_nlupp_folds_and_20_fold_setup(data_dir: Path) -> None:
    full = load_entities("nlupp", data_dir=data_dir)
    assert len(full.train) + len(full.validation) + len(full.test) == 2_071
    assert len(full.entity_types) == 17
    small = load_entities("nlupp", data_dir=data_dir, train_folds=[0], test_folds=range(1, 20))
    assert len(small.train) + len(small.validation) + len(small.test) == 2_071
    assert len(small.train) + len(small.validation) < 120


def test_nlupp_spans_round_trip_through_bio(data_dir: Path) -> None:
    data = load_entities("nlupp", data_dir=data_dir)
    examples = data.train + data.validation + data.test
    total = dropped = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        for ex in examples:
            words, tags = spans_to_bio(ex.text, ex.spans)
            back = bio_to_spans(words, tags)
            assert set(back) <= set(ex.spans)  # never a span that was not there
            total += len(ex.spans)
            dropped += len(ex.spans) - len(back)
    assert total == 944
    assert dropped == len(caught)  # every dropped span was reported
    assert dropped <= total // 100, f"{dropped} of {total} NLU++ spans cannot be written as word BIO tags"


def _fin_topics(tmp_path: Path, train: str, valid: str) -> Path:
    root = tmp_path / "fin_topics"
    root.mkdir()
    (root / "labels.json").write_text(json.dumps(["Dividend", "Earnings", "Energy | Oil"]))
    (root / "train.csv").write_text(train)
    (root / "valid.csv").write_text(valid)
    return tmp_path


def test_fin_topics_ids_become_names_and_valid_is_the_test_split(tmp_path: Path) -> None:
    from finetune.data.loaders import load_topics

    rows = "".join(f'"headline {i}",{i % 3}\n' for i in range(30))
    data = load_topics("fin_topics", data_dir=_fin_topics(tmp_path, "text,label\n" + rows, 'text,label\n"oil up",2\n'))
    assert data.labels == ["Dividend", "Earnings", "Energy | Oil"]
    assert [(ex.text, ex.label) for ex in data.test] == [("oil up", "Energy | Oil")]
    assert len(data.train) + len(data.validation) == 30 and data.validation


def test_topic_labels_may_be_ids_or_names_mixed(tmp_path: Path) -> None:
    from finetune.data.loaders import load_topics

    root = _fin_topics(tmp_path, "text,label\n", "text,label\n")
    path = tmp_path / "mine.csv"
    path.write_text("text,label\n" + "".join(f'"t{i}",{["0", "Earnings", "2"][i % 3]}\n' for i in range(30)))
    data = load_topics(str(path), data_dir=root)
    assert data.labels == ["Dividend", "Earnings", "Energy | Oil"]
    names = tmp_path / "names.json"
    names.write_text(json.dumps(["A", "B", "C"]))
    path.write_text("text,label\n" + "".join(f'"t{i}",{i % 3}\n' for i in range(30)))
    from finetune.data.loaders import read_topic_names

    assert load_topics(str(path), topic_names=read_topic_names(names)).labels == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("label", "message"),
    [("3", "is not a topic id (0-2) of the 3 topics"), ("Weather", "is neither a topic id (0-2) nor a topic name")],
)
def test_topic_label_that_is_neither_id_nor_name_is_one_clear_line(tmp_path: Path, label: str, message: str) -> None:
    from finetune.data.loaders import load_topics

    root = _fin_topics(tmp_path, "text,label\n", "text,label\n")
    path = tmp_path / "mine.csv"
    path.write_text("text,label\n" + "".join(f'"t{i}",{i % 3}\n' for i in range(30)) + f'"odd",{label}\n')
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_topics(str(path), data_dir=root)


def test_added_topic_examples_may_be_labelled_by_id_or_name(tmp_path: Path) -> None:
    from finetune.data.loaders import add_topic_examples, load_topics

    rows = "".join(f'"headline {i}",{i % 3}\n' for i in range(30))
    root = _fin_topics(tmp_path, "text,label\n" + rows, 'text,label\n"oil up",2\n')
    base = load_topics("fin_topics", data_dir=root)
    extra = write(tmp_path / "more.csv", 'text,label\n"payout raised",0\n"profit beats",Earnings\n"crude slips",2\n')
    more = add_topic_examples(base, [extra], data_dir=root)
    assert [(ex.text, ex.label) for ex in more.train[len(base.train):]] == [
        ("payout raised", "Dividend"), ("profit beats", "Earnings"), ("crude slips", "Energy | Oil")]
    assert (more.validation, more.test, more.labels) == (base.validation, base.test, base.labels)
    # Names alone need no labels.json: a user's own names file is not looked for.
    named = write(tmp_path / "named.csv", 'text,label\n"profit beats",Earnings\n')
    assert add_topic_examples(base, [named], data_dir=tmp_path / "nowhere").train[-1].label == "Earnings"


@pytest.mark.parametrize(
    ("label", "message"),
    [("3", r"more.csv: train label '3' is not a topic id \(0-2\)"), ("Weather", "labels 'Weather' are not among")],
)
def test_added_topic_label_that_is_neither_id_nor_name_names_the_file(tmp_path: Path, label: str, message: str) -> None:
    from finetune.data.loaders import add_topic_examples, load_topics

    rows = "".join(f'"headline {i}",{i % 3}\n' for i in range(30))
    root = _fin_topics(tmp_path, "text,label\n" + rows, 'text,label\n"oil up",2\n')
    base = load_topics("fin_topics", data_dir=root)
    extra = write(tmp_path / "more.csv", f'text,label\n"odd",{label}\n')
    with pytest.raises(DataError, match=message):
        add_topic_examples(base, [extra], data_dir=root)


def test_topic_names_file_must_be_a_list_of_distinct_names(tmp_path: Path) -> None:
    from finetune.data.loaders import read_topic_names

    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"a": 1}))
    with pytest.raises(DataError, match="JSON list of topic names"):
        read_topic_names(path)
    path.write_text(json.dumps(["a", "a"]))
    with pytest.raises(DataError, match="repeat"):
        read_topic_names(path)
