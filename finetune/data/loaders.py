"""Loaders that turn data sets into plain records for every qagent training job.

A source is a built-in name (``banking77``, ``clinc150``, ``fin_tweets``, ``fin_topics``, ``nlupp``) read from the
shared data folder, a user file or folder of split files, or a Hugging Face Hub id. Every problem
with the input becomes a :class:`DataError` whose message is one line: what, where, how to fix.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from numbers import Integral
from pathlib import Path
from typing import Any, TypeVar

# Spans, BIO tags, the data error types and the entity file formats live in finetune.data.tagging, which
# never imports this module; its public names are re-exported so `from finetune.data.loaders import Span` works.
from finetune.data.tagging import DataError, DataWarning, Span, TaggedExample, Word
from finetune.data.tagging import bio_to_spans, spans_to_bio, words_with_offsets
from finetune.data.tagging import example_from_spans, example_from_tokens, parse_conll, parse_span_records
from finetune.strict_json import jsonl_lines

OUT_OF_SCOPE = "out_of_scope"
NLUPP_FOLDS = 20
_DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data"
_SPLIT_STEMS = {"train": ("train",), "validation": ("validation", "val", "valid", "dev"), "test": ("test",)}
_TEXT_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")
_TAGGED_SUFFIXES = (".conll", ".txt", ".bio", ".jsonl", ".json")
_FIN_TWEET_LABELS = {"0": "negative", "1": "positive", "2": "neutral"}  # 0 bearish, 1 bullish, 2 neutral

T = TypeVar("T")


@dataclass(frozen=True)
class TextExample:
    """One sentence with its class label."""

    text: str
    label: str


@dataclass
class TextDataset:
    """Sentence classification splits; ``labels`` is the sorted label set of ``train``."""

    name: str
    labels: list[str]
    train: list[TextExample]
    validation: list[TextExample]
    test: list[TextExample]
    extra: dict[str, list[TextExample]] = field(default_factory=dict)


@dataclass
class TaggedDataset:
    """Entity tagging splits; ``entity_types`` is sorted."""

    name: str
    entity_types: list[str]
    train: list[TaggedExample]
    validation: list[TaggedExample]
    test: list[TaggedExample]


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """Return the data folder: ``data_dir``, else ``$QAGENT_DATA_DIR``, else ``../shared/data`` beside the repo.

    Raises DataError, saying how to point at the folder, when it does not exist.
    """
    if data_dir is not None:
        path, origin = Path(data_dir).expanduser(), "data_dir"
    elif os.environ.get("QAGENT_DATA_DIR"):
        path, origin = Path(os.environ["QAGENT_DATA_DIR"]).expanduser(), "QAGENT_DATA_DIR"
    else:
        path, origin = _DEFAULT_DATA_DIR, "the default location"
    if not path.is_dir():
        hint = "pass data_dir=... or set QAGENT_DATA_DIR to the folder holding banking77/, clinc150/, nlupp/, ..."
        raise DataError(f"data folder not found: {path} (from {origin}); {hint}")
    return path


def load_intents(
    source: str,
    *,
    data_dir: str | Path | None = None,
    text_column: str = "text",
    label_column: str = "label",
    val_fraction: float = 0.1,
    seed: int = 0,
    max_chars: int | None = 2000,
) -> TextDataset:
    """Load an intent classification data set.

    Args:
        source: ``banking77``, ``clinc150``, a CSV/JSONL file, a folder of train/validation/test
            files, or a Hub id such as ``PolyAI/banking77`` (needs the ``datasets`` package).
        data_dir: Folder of the built-in data sets (see :func:`resolve_data_dir`).
        text_column: Column (CSV) or key (JSONL) of the text in user files; ``label_column`` likewise.
        val_fraction: Share carved (stratified, seeded by ``seed``) for each held-out split the source
            lacks; a single file gives this share to validation and the same share to test.
        max_chars: Longest text accepted (longer usually means the wrong column); None for no limit.

    Returns:
        The splits; CLINC150's out-of-scope queries go to ``extra`` with label ``out_of_scope``.
        Raises DataError, in one line, on any problem with the source.
    """
    builtins = {"banking77": _banking77, "clinc150": _clinc150}
    return _load_text(source, builtins, data_dir, (text_column, label_column), val_fraction, seed, max_chars)


def load_sentiment(
    source: str,
    *,
    data_dir: str | Path | None = None,
    text_column: str = "text",
    label_column: str = "label",
    val_fraction: float = 0.1,
    seed: int = 0,
    max_chars: int | None = 2000,
) -> TextDataset:
    """Load a sentiment data set: ``fin_tweets`` or a user source as in :func:`load_intents`.

    ``fin_tweets`` labels become ``negative``/``positive``/``neutral``; its ``valid.csv`` is the
    test split (never trained on or used for model selection) and validation is carved from train.
    """
    builtins = {"fin_tweets": _fin_tweets}
    return _load_text(source, builtins, data_dir, (text_column, label_column), val_fraction, seed, max_chars)


def load_topics(
    source: str,
    *,
    data_dir: str | Path | None = None,
    text_column: str = "text",
    label_column: str = "label",
    val_fraction: float = 0.1,
    seed: int = 0,
    max_chars: int | None = 2000,
    topic_names: Sequence[str] | None = None,
) -> TextDataset:
    """Load a news-topic data set: ``fin_topics`` or a user source as in :func:`load_intents`.

    Labels may be topic ids (indexes into ``topic_names``) or the topic names themselves, mixed
    freely, so a user's own CSV written with names scores against a model trained on ids. Every
    label becomes its name. ``fin_topics``' ``valid.csv`` is the test split (never trained on or
    used for model selection) and validation is carved from train.

    Args:
        topic_names: Topic names in id order (default: ``fin_topics/labels.json`` of ``data_dir``).
            A user source whose labels are all names needs neither.
    """
    if source.lower() == "fin_topics":
        root = resolve_data_dir(data_dir) / "fin_topics"
        names = list(topic_names) if topic_names is not None else read_topic_names(root / "labels.json")
        splits = {"train": _read_csv(root / "train.csv", "text", "label", max_chars),
                  "test": _read_csv(root / "valid.csv", "text", "label", max_chars)}
        _check_fraction(val_fraction)
        return _assemble_text("fin_topics", _named_topics(splits, names, root), {}, val_fraction, seed)
    dataset = _load_text(source, {}, data_dir, (text_column, label_column), val_fraction, seed, max_chars)
    names = topic_names
    if names is None and any(ex.label.isdigit()
                             for ex in dataset.train + dataset.validation + dataset.test):
        names = read_topic_names(resolve_data_dir(data_dir) / "fin_topics" / "labels.json")
    splits = _named_topics({"train": dataset.train, "validation": dataset.validation, "test": dataset.test},
                           list(names or []), source)
    labels = sorted({ex.label for ex in splits["train"]})
    return TextDataset(dataset.name, labels, splits["train"], splits["validation"], splits["test"], dataset.extra)


def add_train_examples(
    dataset: TextDataset,
    paths: Sequence[str | Path],
    *,
    text_column: str = "text",
    label_column: str = "label",
    max_chars: int | None = 2000,
    relabel: Callable[[list[TextExample], Path], list[TextExample]] | None = None,
) -> TextDataset:
    """``dataset`` with the examples of ``paths`` (CSV/JSONL files) added to its train split.

    Validation and test stay the source's own, so a model trained with the additions is scored
    on the same held-out examples as one trained without them. Every added label must already
    be one of ``dataset.labels`` (a new class would have no validation or test examples).
    ``relabel`` maps each file's examples (and its path, for messages) before that check, e.g.
    topic ids to names (:func:`add_topic_examples`).
    """
    added: list[TextExample] = []
    for source in paths:
        path = Path(source).expanduser()
        if not path.is_file() or path.suffix.lower() not in _TEXT_SUFFIXES:
            raise DataError(f"added training data must be an existing CSV or JSONL file, got {source}")
        examples = _read_text_file(path, text_column, label_column, max_chars)
        if relabel is not None:
            examples = relabel(examples, path)
        unknown = sorted({ex.label for ex in examples} - set(dataset.labels))
        if unknown:
            raise DataError(f"{path}: labels {_few(unknown)} are not among {dataset.name}'s ({_few(dataset.labels)})")
        added.extend(examples)
    return replace(dataset, train=dataset.train + added)


def add_topic_examples(
    dataset: TextDataset,
    paths: Sequence[str | Path],
    *,
    data_dir: str | Path | None = None,
    text_column: str = "text",
    label_column: str = "label",
    max_chars: int | None = 2000,
    topic_names: Sequence[str] | None = None,
) -> TextDataset:
    """:func:`add_train_examples` for a topic data set: labels may be topic ids or names, mixed, as
    :func:`load_topics` reads them (ids index ``topic_names``, by default ``fin_topics/labels.json``)."""
    names = list(topic_names) if topic_names is not None else None

    def named(examples: list[TextExample], path: Path) -> list[TextExample]:
        nonlocal names
        if names is None and any(ex.label.isdigit() and ex.label not in dataset.labels for ex in examples):
            names = read_topic_names(resolve_data_dir(data_dir) / "fin_topics" / "labels.json")
        return _named_topics({"train": examples}, list(names or []), path)["train"]

    return add_train_examples(dataset, paths, text_column=text_column, label_column=label_column,
                              max_chars=max_chars, relabel=named)


def limit_examples(examples: list[TextExample], limit: int, seed: int = 0) -> list[TextExample]:
    """A seeded, label-stratified subsample of ``limit`` examples (all of them when there are fewer).

    For a quick run on a slow machine: the subsample keeps each label's share, and the same seed
    gives the same examples, so a run on it can be repeated exactly."""
    if limit < 1:
        raise DataError(f"a training limit must be a positive number of examples, got {limit}")
    if limit >= len(examples):
        return list(examples)
    _, kept = _carve(list(examples), limit / len(examples), seed, lambda ex: ex.label, "limited training")
    return kept


def read_topic_names(path: str | Path) -> list[str]:
    """Topic names in id order from a ``labels.json`` (a JSON list of distinct, non-empty strings)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; topic ids need the topic names in id order (a JSON list)")
    names = _parse_json(path)
    if not (isinstance(names, list) and names and all(isinstance(n, str) and n.strip() for n in names)):
        raise DataError(f"{path}: should be a JSON list of topic names in id order")
    if len(set(names)) != len(names):
        raise DataError(f"{path}: topic names repeat: {_few([n for n, c in Counter(names).items() if c > 1])}")
    return names


def _named_topics(splits: dict[str, list[TextExample]], names: list[str], where: Any) -> dict[str, list[TextExample]]:
    """Each split with every label as its topic name: an id ``i`` becomes ``names[i]``, a name stays."""
    known = set(names)
    out: dict[str, list[TextExample]] = {}
    for split, examples in splits.items():
        rows = []
        for ex in examples:
            label = ex.label
            if label.isdigit() and label not in known:
                if int(label) >= len(names):
                    raise DataError(f"{where}: {split} label {label!r} is not a topic id (0-{len(names) - 1}) "
                                    f"of the {len(names)} topics; use an id or a name from labels.json")
                label = names[int(label)]
            elif names and label not in known:
                raise DataError(f"{where}: {split} label {label!r} is neither a topic id (0-{len(names) - 1}) "
                                f"nor a topic name ({_few(names)}); fix the label or the names file")
            rows.append(TextExample(ex.text, label))
        out[split] = rows
    return out


def text_loader(task: str) -> Callable[..., TextDataset]:
    """The loader of a sentence classification task's data (``intents``, ``sentiment`` or ``topics``)."""
    loaders = {"intents": load_intents, "sentiment": load_sentiment, "topics": load_topics}
    if task not in loaders:
        raise ValueError(f"no text data loader for task {task!r}; expected one of {', '.join(loaders)}")
    return loaders[task]

def load_entities(
    source: str,
    *,
    data_dir: str | Path | None = None,
    train_folds: Iterable[int] | None = None,
    test_folds: Iterable[int] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> TaggedDataset:
    """Load an entity tagging data set.

    Args:
        source: ``nlupp`` (NLU++ banking slots), a CoNLL or JSONL file, a folder of split files,
            or a Hub id with ``tokens`` and ``ner_tags`` columns.
        data_dir: Folder of the built-in data sets (see :func:`resolve_data_dir`).
        train_folds: NLU++ folds to train on (default 0-17); ``[0]`` is the paper's "20-fold" setup.
        test_folds: NLU++ folds to test on (default 18-19).
        val_fraction: Share carved (seeded by ``seed``) for each held-out split the source lacks;
            0 carves nothing (a refit on all the training data, without validation).

    Returns:
        The splits. Raises DataError, in one line, on any problem with the source; a span out of
        range or not matching its slot text is skipped with a :class:`DataWarning` naming where.
    """
    _check_fraction(val_fraction, allow_zero=True)
    if source.lower() == "nlupp":
        return _nlupp(resolve_data_dir(data_dir), train_folds, test_folds, val_fraction, seed)
    if train_folds is not None or test_folds is not None:
        raise DataError("train_folds/test_folds only apply to 'nlupp'; split your own data into files instead")
    target = _user_source(source, ["nlupp"])
    if isinstance(target, str):
        hub = _hub_rows(target, "tokens", "ner_tags")
        splits = {split: [example_from_tokens(*row) for row in rows] for split, rows in hub}
    elif target.is_dir():
        splits = {split: _read_tagged(path) for split, path in _split_files(target, _TAGGED_SUFFIXES).items()}
    else:
        splits = {"train": _read_tagged(target)}
    name = target if isinstance(target, str) else target.stem
    return _assemble_tagged(name, splits, [], val_fraction, seed)


_Builtin = Callable[[Path, float, int, "int | None"], TextDataset]


def _load_text(
    source: str,
    builtins: dict[str, _Builtin],
    data_dir: str | Path | None,
    columns: tuple[str, str],
    val_fraction: float,
    seed: int,
    max_chars: int | None,
) -> TextDataset:
    _check_fraction(val_fraction)
    if source.lower() in builtins:
        return builtins[source.lower()](resolve_data_dir(data_dir), val_fraction, seed, max_chars)
    target = _user_source(source, list(builtins))
    if isinstance(target, str):
        splits = {}
        for split, rows in _hub_rows(target, *columns):
            where = f"{target} {split} row"
            splits[split] = [_make_example(*row, f"{where} {i}", max_chars) for i, row in enumerate(rows)]
        return _assemble_text(target, splits, {}, val_fraction, seed)
    files = _split_files(target, _TEXT_SUFFIXES) if target.is_dir() else {"train": target}
    splits = {split: _read_text_file(path, *columns, max_chars) for split, path in files.items()}
    return _assemble_text(target.stem, splits, {}, val_fraction, seed)


def _banking77(root: Path, val_fraction: float, seed: int, max_chars: int | None) -> TextDataset:
    folder = root / "banking77"
    categories = set(_parse_json(folder / "categories.json"))
    splits = {split: _read_csv(folder / f"{split}.csv", "text", "category", max_chars) for split in ("train", "test")}
    unknown = sorted({ex.label for exs in splits.values() for ex in exs} - categories)
    if unknown:
        raise DataError(f"{folder}: labels missing from categories.json: {_few(unknown)}; the files disagree")
    return _assemble_text("banking77", splits, {}, val_fraction, seed)


def _clinc150(root: Path, val_fraction: float, seed: int, max_chars: int | None) -> TextDataset:
    path = root / "clinc150" / "data_full.json"
    data = _parse_json(path)
    oos = ("oos_train", "oos_val", "oos_test")
    keys = {"train": "train", "validation": "val", "test": "test"} | {key: key for key in oos}
    missing = [key for key in keys.values() if key not in data]
    if missing:
        raise DataError(f"{path}: missing keys {_few(missing)}; found {_few(list(data))}")
    rows: dict[str, list[TextExample]] = {split: [] for split in keys}
    for split, key in keys.items():
        for i, item in enumerate(data[key]):
            if not (isinstance(item, list) and len(item) == 2):
                raise DataError(f"{path}: {key}[{i}] should be [text, intent], got {str(item)[:60]!r}")
            # CLINC150 calls out-of-scope "oos"; the assistant's router uses one name for it everywhere.
            label = OUT_OF_SCOPE if key.startswith("oos") or item[1] == "oos" else item[1]
            rows[split].append(_make_example(item[0], label, f"{path} {key}[{i}]", max_chars))
    extra = {key: rows.pop(key) for key in oos}
    return _assemble_text("clinc150", rows, extra, val_fraction, seed)


def _fin_tweets(root: Path, val_fraction: float, seed: int, max_chars: int | None) -> TextDataset:
    folder = root / "fin_tweets"
    train = _read_csv(folder / "train.csv", "text", "label", max_chars, _FIN_TWEET_LABELS)
    # valid.csv is the published evaluation split: it becomes test so it never steers training.
    test = _read_csv(folder / "valid.csv", "text", "label", max_chars, _FIN_TWEET_LABELS)
    return _assemble_text("fin_tweets", {"train": train, "test": test}, {}, val_fraction, seed)


def _assemble_text(
    name: str,
    splits: dict[str, list[TextExample]],
    extra: dict[str, list[TextExample]],
    val_fraction: float,
    seed: int,
) -> TextDataset:
    train, validation, test = _fill_splits(name, splits, val_fraction, seed, lambda ex: ex.label)
    labels = sorted({ex.label for ex in train})
    if len(labels) < 2:
        raise DataError(f"{name}: train has only one label ({labels[0]!r}); a classifier needs two or more")
    for split, examples in (("validation", validation), ("test", test)):
        unseen = sorted({ex.label for ex in examples} - set(labels))
        if unseen:
            raise DataError(f"{name}: {split} labels not in train: {_few(unseen)}; add train examples or drop them")
    return TextDataset(name, labels, train, validation, test, extra)


def _read_text_file(path: Path, text_column: str, label_column: str, max_chars: int | None) -> list[TextExample]:
    if path.suffix.lower() in (".csv", ".tsv"):
        return _read_csv(path, text_column, label_column, max_chars)
    out = []
    for where, record in _read_json_records(path):
        missing = [key for key in (text_column, label_column) if key not in record]
        if missing:
            keys = _few(list(record))
            raise DataError(f"{where}: no key {_few(missing)} (keys: {keys}); set text_column/label_column")
        out.append(_make_example(record[text_column], record[label_column], where, max_chars))
    return out


def _read_csv(
    path: Path, text_column: str, label_column: str, max_chars: int | None, label_map: dict[str, str] | None = None
) -> list[TextExample]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(_read_utf8(path), newline=""), delimiter=delimiter)
    header = [cell.strip() for cell in next(reader, [])]
    missing = [column for column in (text_column, label_column) if column not in header]
    if missing:
        found = _few(header) or "none (empty file)"
        raise DataError(f"{path}: no column {_few(missing)}; the columns are {found}; set text_column/label_column")
    text_at, label_at = header.index(text_column), header.index(label_column)
    out, line = [], reader.line_num
    for row in reader:
        # line_num counts physical lines, so a quoted text spanning lines is reported at its first.
        where, line = f"{path}:{line + 1}", reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # a blank line holds no record
        if len(row) != len(header):
            raise DataError(f"{where}: {len(row)} fields, the header has {len(header)}; quote {delimiter!r}")
        label = row[label_at].strip()
        if label_map is not None and label not in label_map:
            raise DataError(f"{where}: label {label!r} is not one of {_few(list(label_map))}")
        out.append(_make_example(row[text_at], label_map[label] if label_map else label, where, max_chars))
    return out


def _make_example(text: Any, label: Any, where: str, max_chars: int | None) -> TextExample:
    text = "" if text is None else str(text).strip()
    label = "" if label is None else str(label).strip()
    if not text or not label:
        raise DataError(f"{where}: empty {'text' if not text else 'label'}; fill it in or delete the row")
    if max_chars is not None and len(text) > max_chars:
        raise DataError(f"{where}: {len(text)} characters > max_chars={max_chars}; wrong column? or raise max_chars")
    return TextExample(text, label)


def _nlupp(root: Path, train_folds: Any, test_folds: Any, val_fraction: float, seed: int) -> TaggedDataset:
    train_ids = _fold_ids(range(18) if train_folds is None else train_folds, "train_folds")
    test_ids = _fold_ids(range(18, NLUPP_FOLDS) if test_folds is None else test_folds, "test_folds")
    if set(train_ids) & set(test_ids):
        raise DataError(f"folds {sorted(set(train_ids) & set(test_ids))} are in both train_folds and test_folds")
    ontology = _parse_json(root / "nlupp" / "ontology.json")
    folds = {i: _read_nlupp_fold(root / "nlupp" / "banking" / f"fold{i}.json") for i in train_ids + test_ids}
    splits = {"train": [ex for i in train_ids for ex in folds[i]], "test": [ex for i in test_ids for ex in folds[i]]}
    # Slot types come from the ontology so every fold setup shares one tag set.
    return _assemble_tagged("nlupp", splits, list(ontology.get("slots", {})), val_fraction, seed)


def _fold_ids(folds: Iterable[Any], argument: str) -> list[int]:
    ids = sorted(set(folds))
    if not ids or not all(isinstance(i, Integral) and 0 <= i < NLUPP_FOLDS for i in ids):
        raise DataError(f"{argument} must name folds 0-{NLUPP_FOLDS - 1}, got {ids}")
    return [int(i) for i in ids]


def _read_nlupp_fold(path: Path) -> list[TaggedExample]:
    data = _parse_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of examples, got {type(data).__name__}")
    out = []
    for i, item in enumerate(data):
        where = f"{path} example {i}"
        slots = (item.get("slots") or {}) if isinstance(item, dict) else None
        if not isinstance(slots, dict):
            raise DataError(f"{where}: expected an object {{text, intents?, slots?}}")
        spans = []
        for name, slot in slots.items():
            bounds = slot.get("span") if isinstance(slot, dict) else None
            if not (isinstance(bounds, list) and len(bounds) == 2):
                raise DataError(f"{where}: slot {name!r} has no [start, end] span")
            spans.append((*bounds, name, slot.get("text")))
        out.append(example_from_spans(item.get("text"), spans, where))
    return out


def _read_tagged(path: Path) -> list[TaggedExample]:
    if path.suffix.lower() in (".jsonl", ".json"):
        return parse_span_records(_read_json_records(path))
    return parse_conll(_read_utf8(path), str(path))


def _assemble_tagged(
    name: str, splits: dict[str, list[TaggedExample]], known_types: list[str], val_fraction: float, seed: int
) -> TaggedDataset:
    if not any(ex.spans for ex in splits["train"]):
        raise DataError(f"{name}: the train split has no entity spans; a tagger needs labelled examples")
    train, validation, test = _fill_splits(name, splits, val_fraction, seed, None)
    seen = {span.label for examples in (train, validation, test) for ex in examples for span in ex.spans}
    return TaggedDataset(name, sorted(seen | set(known_types)), train, validation, test)


def _check_fraction(val_fraction: float, *, allow_zero: bool = False) -> None:
    # Below 0.5 so that carving both validation and test from one file still leaves training data.
    if allow_zero and not 0 <= val_fraction < 0.5:
        raise DataError(f"val_fraction must be from 0 up to 0.5, got {val_fraction}")
    if not allow_zero and not 0 < val_fraction < 0.5:
        raise DataError(f"val_fraction must be between 0 and 0.5, got {val_fraction}")


def _fill_splits(
    name: str, splits: dict[str, list[T]], val_fraction: float, seed: int, label_of: Callable[[T], str] | None
) -> tuple[list[T], list[T], list[T]]:
    """Return train, validation, test, carving from train each held-out split that is missing."""
    train = splits["train"]
    if not train:
        raise DataError(f"{name}: the train split is empty; add examples")
    test = splits.get("test")
    if test is None:
        train, test = _carve(train, val_fraction, seed, label_of, "test")
    validation = splits.get("validation")
    if validation is None:
        # After carving test too, this share keeps validation at val_fraction of the whole file.
        share = val_fraction / (1 - val_fraction) if "test" not in splits else val_fraction
        train, validation = _carve(train, share, seed, label_of, "validation")
    return train, validation, test


def _carve(
    examples: list[T], share: float, seed: int, label_of: Callable[[T], str] | None, split: str
) -> tuple[list[T], list[T]]:
    """Split off ``share`` of ``examples``, stratified by ``label_of`` when the classes allow it."""
    from sklearn.model_selection import train_test_split

    if share == 0:
        return examples, []

    labels = [label_of(ex) for ex in examples] if label_of else None
    counts = Counter(labels or [])
    # A label seen once stays in train: held out, it would be a label the model never saw.
    pool = [i for i in range(len(examples)) if labels is None or counts[labels[i]] >= 2]
    rare = sorted(set(range(len(examples))) - set(pool))
    size = max(1, round(len(examples) * share))
    if size >= len(pool):
        raise DataError(f"too few examples ({len(examples)}) to carve a {split} split; add data or a {split} file")
    classes = len({labels[i] for i in pool}) if labels else 0
    stratify = [labels[i] for i in pool] if labels and classes <= size <= len(pool) - classes else None
    keep, held = train_test_split(pool, test_size=size, random_state=seed, stratify=stratify)
    return [examples[i] for i in sorted(keep + rare)], [examples[i] for i in sorted(held)]


def _user_source(source: str, builtins: list[str]) -> Path | str:
    path = Path(source).expanduser()
    if path.exists():
        return path
    if re.fullmatch(r"[\w.-]+/[\w.-]+", source) and path.suffix.lower() not in _TEXT_SUFFIXES + _TAGGED_SUFFIXES:
        return source  # owner/name that is no local path: a Hugging Face Hub id
    raise DataError(f"file not found: {source}; give an existing file or folder, a hub id, or {_few(builtins)}")


def _split_files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    found: dict[str, Path] = {}
    for split, stems in _SPLIT_STEMS.items():
        matches = [p for p in files if p.stem.lower() in stems]
        if len(matches) > 1:
            raise DataError(f"{folder}: several {split} files ({_few([p.name for p in matches])}); keep one")
        if matches:
            found[split] = matches[0]
    if "train" not in found:
        names = _few(sorted(p.name for p in folder.iterdir())) or "nothing"
        raise DataError(f"{folder}: no train file (train{'/train'.join(suffixes)}); found {names}")
    return found


def _read_utf8(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"file not found: {path}; check the path, or set data_dir / QAGENT_DATA_DIR")
    raw = path.read_bytes()
    raw = raw[len(codecs.BOM_UTF8) :] if raw.startswith(codecs.BOM_UTF8) else raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        bad = raw[err.start : err.start + 4]
        raise DataError(f"{path}:{line}: bytes that are not UTF-8 ({bad!r}); re-save the file as UTF-8") from None


def _parse_json(path: Path) -> Any:
    try:
        return json.loads(_read_utf8(path))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: malformed JSON ({err.msg}); fix the file") from None


def _read_json_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Objects of a JSONL file (or of a .json list), each with its ``file:line`` location."""
    content = _read_utf8(path)
    if path.suffix.lower() == ".json" and content.lstrip().startswith("["):
        items = [(f"{path} item {i}", item) for i, item in enumerate(_parse_json(path))]
    else:
        items = []
        for number, line in jsonl_lines(content):
            try:
                items.append((f"{path}:{number}", json.loads(line)))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: malformed JSON line ({err.msg}); one object per line") from None
    for where, item in items:
        if not isinstance(item, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(item).__name__}")
    return items


def _hub_rows(hub_id: str, first: str, second: str) -> list[tuple[str, list[tuple[Any, Any]]]]:
    """Split name and ``(first, second)`` column pairs of a Hub data set, class ids turned into names."""
    try:
        import datasets  # optional: only Hub ids need it
    except ImportError:
        raise DataError(
            f"{hub_id!r} looks like a Hugging Face Hub id but `datasets` is not installed; "
            "run `pip install datasets` or give a local file"
        ) from None
    try:
        loaded = datasets.load_dataset(hub_id)
    except Exception as err:  # the Hub raises many types; all of them mean "could not load"
        reason = " ".join(str(err).split())[:200]
        raise DataError(f"could not load {hub_id!r} ({reason}); check the id or use a local file") from err
    out = []
    for split, stems in _SPLIT_STEMS.items():
        rows = next((loaded[s] for s in stems if s in loaded), None)
        if rows is None:
            continue
        missing = [c for c in (first, second) if c not in rows.column_names]
        if missing:
            raise DataError(f"{hub_id}: no column {_few(missing)}; it has {_few(rows.column_names)}")
        feature = rows.features[second]  # a ClassLabel, or a sequence of them for tags
        names = getattr(feature, "names", None) or getattr(getattr(feature, "feature", None), "names", None)
        name_of = (lambda v: names[v]) if names else str
        is_sequence = len(rows) > 0 and isinstance(rows[0][second], list)
        second_of = (lambda v: [name_of(t) for t in v]) if is_sequence else name_of
        out.append((split, [(row[first], second_of(row[second])) for row in rows]))
    if not out or out[0][0] != "train":
        raise DataError(f"{hub_id!r} has no train split (it has {_few(list(loaded))}); give a local file")
    return out


def _few(items: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(item) for item in list(items)[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")
