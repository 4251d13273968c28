"""Split a CSV's rows into K shuffled parts, each a folder with its own ``train.csv``.

Run: ``python -m eval.split_rows FILE --parts 2 --seed 21 --out DIR`` (writes ``DIR/part-0/train.csv`` …).

Cross-fitted teachers for ``agent finetune joint --distil-from FILE`` each train on one part
(``agent finetune topics --data DIR/part-0 …``) and label the rows of the others with
``agent finetune soft-labels``, so every training text's probabilities come from a teacher that
never trained on it. A teacher scoring its own training texts is nearly certain of their gold
labels and so teaches little beyond them.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path


def split_rows(source: Path, out: Path, *, parts: int = 2, seed: int = 21) -> list[Path]:
    """Write ``source``'s rows, shuffled with ``seed``, into ``parts`` near-equal parts; returns their files."""
    if parts < 2:
        raise ValueError(f"parts must be at least 2, got {parts}")
    if not source.is_file():
        raise FileNotFoundError(f"{source} not found; give a CSV with a header row")
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns, rows = reader.fieldnames, list(reader)
    if not columns or len(rows) < parts:
        raise ValueError(f"{source} has {len(rows)} rows; it needs a header and at least {parts}")
    random.Random(seed).shuffle(rows)
    files = []
    for i in range(parts):
        path = out / f"part-{i}" / "train.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows[i * len(rows) // parts : (i + 1) * len(rows) // parts])
        files.append(path)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="CSV to split (e.g. ../shared/data/fin_topics/train.csv)")
    parser.add_argument("--parts", type=int, default=2)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        files = split_rows(args.source, args.out, parts=args.parts, seed=args.seed)
    except (OSError, ValueError) as exc:
        parser.exit(1, f"error: {exc}\n")
    for path in files:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
