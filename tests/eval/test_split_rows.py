"""eval.split_rows: K shuffled parts of a CSV that together hold every row once."""

import csv

import pytest

from eval.split_rows import main, split_rows


def _write(path, n):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([[f"headline, number {i}", i % 3] for i in range(n)])


def _rows(path):
    with path.open(encoding="utf-8", newline="") as handle:
        return [tuple(row.values()) for row in csv.DictReader(handle)]


def test_the_parts_hold_every_row_once_shuffled_and_the_seed_repeats_them(tmp_path):
    source = tmp_path / "train.csv"
    _write(source, 11)
    files = split_rows(source, tmp_path / "a", parts=3, seed=5)
    parts = [_rows(f) for f in files]
    assert [len(p) for p in parts] == [3, 4, 4]
    assert sorted(r for p in parts for r in p) == sorted(_rows(source))
    assert [r for p in parts for r in p] != _rows(source)  # shuffled, not cut in file order
    again = split_rows(source, tmp_path / "b", parts=3, seed=5)
    assert [_rows(f) for f in again] == parts
    assert [f.relative_to(tmp_path / "a").as_posix() for f in files] == [f"part-{i}/train.csv" for i in range(3)]


def test_bad_input_is_one_line_and_exit_1(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "missing.csv"), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 1 and "missing.csv not found" in capsys.readouterr().err
    source = tmp_path / "one.csv"
    _write(source, 1)
    with pytest.raises(ValueError, match="at least 2"):
        split_rows(source, tmp_path / "out", parts=2)
    with pytest.raises(ValueError, match="parts must be at least 2"):
        split_rows(source, tmp_path / "out", parts=1)
