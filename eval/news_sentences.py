"""The news-sentence evaluation sets: financial news sentences (not tweets), whole files, test only.

``news`` (``eval/news_sentences.csv``) is for final measurement; ``news-dev``
(``eval/news_sentences_dev.csv``) is the set to choose candidates by. The labelling rule is in
``eval/news_sentences.md``. ``news_sentences_train.csv`` (``NEWS_TRAIN``) holds training sentences
written apart from both.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from finetune.data.loaders import DataError, TextExample

HERE = Path(__file__).resolve().parent
NEWS_SETS = {"news": HERE / "news_sentences.csv", "news-dev": HERE / "news_sentences_dev.csv"}
# Training sentences in the same styles, kept apart from both sets above (never an --data set).
NEWS_TRAIN = HERE / "news_sentences_train.csv"
LABELS = ("negative", "neutral", "positive")
COLUMNS = ("text", "label", "source_style", "form")


def read_news_rows(path: str | Path) -> list[dict[str, str]]:
    """Every row of a news-sentence file as a dict of its columns; DataError, in one line, when
    the file is missing, lacks a column or holds a label other than negative/neutral/positive."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"news sentence file not found: {path}; reinstall qagent or pass an existing file")
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
    missing = [column for column in ("text", "label") if column not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{path}: no column {', '.join(missing)}; the file needs a header text,label[,source_style,form]")
    rows = []
    for line, row in enumerate(reader, start=2):
        if row["label"] not in LABELS:
            raise DataError(f"{path}:{line}: label {row['label']!r} is not one of {', '.join(LABELS)}")
        if not (row["text"] or "").strip():
            raise DataError(f"{path}:{line}: empty text; fill it in or delete the row")
        rows.append(row)
    return rows


def load_news_sentences(name: str) -> list[TextExample]:
    """The examples of a news set by name (``news``, ``news-dev``)."""
    if name not in NEWS_SETS:
        raise DataError(f"no news sentence set {name!r}; have {', '.join(NEWS_SETS)}")
    return [TextExample(row["text"].strip(), row["label"]) for row in read_news_rows(NEWS_SETS[name])]
