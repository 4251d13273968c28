"""The news-sentence evaluation sets: shape, balance, no tweet marks, kept apart, and loadable."""

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from eval.classification import load_eval_data
from eval.news_sentences import COLUMNS, LABELS, NEWS_SETS, NEWS_TRAIN, load_news_sentences, read_news_rows
from finetune.data.loaders import DataError

ROOT = Path(__file__).resolve().parents[2]
TWEET_MARKS = re.compile(r"\$[A-Za-z]|https?://|www\.|#\w|@\w|\bRT\b")


@pytest.mark.parametrize(("name", "least"), [("news", 450), ("news-dev", 100)])
def test_each_set_is_big_enough_balanced_and_has_the_columns(name, least):
    rows = read_news_rows(NEWS_SETS[name])
    assert len(rows) >= least
    with NEWS_SETS[name].open(encoding="utf-8", newline="") as handle:
        assert tuple(csv.DictReader(handle).fieldnames) == COLUMNS
    counts = Counter(row["label"] for row in rows)
    assert set(counts) == set(LABELS)
    assert min(counts.values()) >= 0.25 * len(rows), counts
    assert len({row["source_style"] for row in rows}) >= 8
    assert {row["form"] for row in rows} == {"plain", "mixed", "hedged"}


@pytest.mark.parametrize("path", [*NEWS_SETS.values(), NEWS_TRAIN], ids=lambda path: path.name)
def test_sentences_are_news_not_tweets(path):
    for row in read_news_rows(path):
        assert not TWEET_MARKS.search(row["text"]), row["text"]
        assert row["text"][0].isupper() and row["text"].rstrip()[-1] in ".\"'", row["text"]


def test_the_sets_share_no_sentence_and_hold_no_duplicates():
    test = [row["text"].lower() for row in read_news_rows(NEWS_SETS["news"])]
    dev = [row["text"].lower() for row in read_news_rows(NEWS_SETS["news-dev"])]
    assert len(set(test)) == len(test) and len(set(dev)) == len(dev)
    assert not set(test) & set(dev)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def test_the_training_sentences_are_balanced_and_kept_apart_from_both_sets():
    train = read_news_rows(NEWS_TRAIN)
    counts = Counter(row["label"] for row in train)
    assert len(train) >= 1000 and min(counts.values()) >= 0.3 * len(train), counts
    held_out = [_words(row["text"]) for name in NEWS_SETS for row in read_news_rows(NEWS_SETS[name])]
    texts = [row["text"].lower() for row in train]
    assert len(set(texts)) == len(texts)
    for row in train:  # no copy and no near copy (more than 60 % of the words shared) of an evaluation sentence
        words = _words(row["text"])
        assert all(len(words & other) / len(words | other) <= 0.6 for other in held_out), row["text"]


def test_the_sets_and_their_rule_ship_with_the_package():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    for name in ("news_sentences.csv", "news_sentences_dev.csv", "news_sentences_train.csv", "news_sentences.md"):
        assert f'"{name}"' in pyproject
    assert "Mixed sentences" in (ROOT / "eval" / "news_sentences.md").read_text(encoding="utf-8")


def test_eval_data_reads_a_news_set_whole_as_test():
    data = load_eval_data("sentiment", "news")
    assert data.name == "news" and data.split == "test"
    assert len(data.examples) == len(load_news_sentences("news")) and not data.oos
    with pytest.raises(DataError, match="--data news is one test set"):
        load_eval_data("sentiment", "news", "validation")


def test_a_broken_news_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nShares rose.,bullish\n", encoding="utf-8")
    with pytest.raises(DataError, match="bad.csv:2: label 'bullish' is not one of negative, neutral, positive"):
        read_news_rows(bad)
    with pytest.raises(DataError, match="not found"):
        read_news_rows(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="no news sentence set 'tweets'"):
        load_news_sentences("tweets")
