"""Ablation table formatting and argument checks (the full run is `agent bench ablation`)."""

from __future__ import annotations

import pytest

from eval.ablation import format_table, run_ablation


def test_table_has_one_row_per_head():
    rows = [{"head": "linear", "parameters": 29645, "train_seconds": 36.04, "test_accuracy": 0.924, "test_macro_f1": 0.9241}]
    table = format_table({"rows": rows})
    assert "| linear | 29,645 | 36.0 | 0.9240 | 0.9241 |" in table.splitlines()


def test_unknown_rows_are_rejected_before_any_work():
    with pytest.raises(ValueError, match="unknown ablation rows"):
        run_ablation(rows=("linear", "transformer"))
