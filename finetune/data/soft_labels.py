"""Soft labels for distillation: texts with a teacher's class probabilities, as JSONL.

One record a line: ``{"text": "...", "probs": {"negative": 0.1, "neutral": 0.7, "positive": 0.2}}``.
A student trained with them (``agent finetune sentiment --soft-labels FILE``) learns the teacher's
whole distribution on texts that have no label of their own, e.g. news headlines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from finetune.data.tagging import DataError
from finetune.strict_json import jsonl_lines

_TOLERANCE = 1e-3  # probabilities written with 6 decimals sum to 1 within this


@dataclass(frozen=True)
class SoftExample:
    """One text with a probability for each class (they sum to 1)."""

    text: str
    probs: dict[str, float]

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("a soft-labelled text must not be empty")
        if not self.probs or any(not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0) for p in self.probs.values()):
            raise ValueError(f"probs must map labels to numbers in [0, 1]; got {self.probs!r}")
        if not math.isclose(sum(self.probs.values()), 1.0, abs_tol=_TOLERANCE):
            raise ValueError(f"probs must sum to 1; got {sum(self.probs.values()):.4f}")


def write_soft_labels(path: str | Path, examples: Iterable[SoftExample]) -> int:
    """Write ``examples`` as JSONL to ``path``; returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            probs = {label: round(float(p), 6) for label, p in example.probs.items()}
            out.write(json.dumps({"text": example.text, "probs": probs}, ensure_ascii=False) + "\n")
            count += 1
    return count


def soft_label_names(path: str | Path) -> list[str]:
    """The class names of a soft-label file (its first record's), sorted, read without loading the
    whole file (e.g. to tell which task it teaches); DataError when there are none."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    probs = json.loads(line).get("probs")
                    if isinstance(probs, dict) and probs:
                        return sorted(probs)
                    break
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise DataError(f"{path}: not a soft-label file ({exc}); write one with `agent finetune soft-labels`") from None
    raise DataError(f"{path}: no soft-labelled record; write one with `agent finetune soft-labels`")


def read_soft_labels(path: str | Path, labels: Sequence[str]) -> list[SoftExample]:
    """Read a soft-label file whose records carry exactly ``labels``; DataError (one line: where,
    what, how to fix) on a missing file, bad JSON, another label set or probabilities that are not
    a distribution."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"soft-label file not found: {path}; write one with `agent finetune soft-labels`")
    want = sorted(labels)
    out = []
    for number, line in jsonl_lines(path.read_text(encoding="utf-8")):
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not JSON ({exc.msg}); one {{\"text\", \"probs\"}} object a line") from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str) or not isinstance(record.get("probs"), dict):
            raise DataError(f"{where}: needs \"text\" (a string) and \"probs\" (label -> probability)")
        if sorted(record["probs"]) != want:
            raise DataError(f"{where}: labels {sorted(record['probs'])} differ from the model's {want}; "
                            "label the texts with a teacher of the same classes")
        try:
            out.append(SoftExample(record["text"].strip(), {k: float(v) for k, v in record["probs"].items()}))
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where}: {exc}") from exc
    if not out:
        raise DataError(f"{path}: no soft-labelled texts; the file is empty")
    return out


def read_texts(path: str | Path, text_column: str = "text") -> list[str]:
    """The texts of a file to label: a CSV/TSV's ``text_column`` (other columns, labels included,
    are ignored) or any other file's non-blank lines."""
    import csv
    import io

    path = Path(path)
    if not path.is_file():
        raise DataError(f"text file not found: {path}; pass a CSV with a {text_column!r} column or one text a line")
    content = path.read_text(encoding="utf-8")
    if path.suffix.lower() not in (".csv", ".tsv"):
        return [line.strip() for line in content.split("\n") if line.strip()]  # one text a "\n"-ended line
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    if text_column not in (reader.fieldnames or []):
        raise DataError(f"{path}: no column {text_column!r}; the columns are {', '.join(reader.fieldnames or [])}; "
                        "set --text-column")
    return [row[text_column].strip() for row in reader if (row[text_column] or "").strip()]


def write_top_labels(soft: str | Path, out: str | Path, *, min_prob: float = 0.0) -> int:
    """Write each text of the soft-label file ``soft`` with its most probable label to the CSV
    ``out`` (columns ``text``, ``label``, ``prob``), keeping only those whose top probability is at
    least ``min_prob``; returns how many were written. A teacher's confident labels on unlabelled
    texts then join a training set that takes labels (pseudo-labelling)."""
    import csv

    if not 0.0 <= min_prob <= 1.0:
        raise ValueError(f"min_prob must be in [0, 1], got {min_prob!r}")
    examples = read_soft_labels(soft, soft_label_names(soft))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = 0
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "prob"])
        for example in examples:
            label, prob = max(example.probs.items(), key=lambda item: item[1])
            if prob >= min_prob:
                writer.writerow([example.text, label, f"{prob:.6f}"])
                kept += 1
    return kept
