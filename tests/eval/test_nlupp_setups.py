import json

import pytest

from eval.nlupp_setups import fold_row, main, summarize, test_folds as folds_tested


def _report(precision, recall, support):
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"micro": {"precision": precision, "recall": recall, "f1": f1, "support": support}}


def test_setups_test_on_the_right_folds():
    assert folds_tested("large", 3) == [3]
    assert folds_tested("20-fold", 3) == [k for k in range(20) if k != 3]
    with pytest.raises(ValueError, match="setup"):
        folds_tested("huge", 0)


def test_folds_are_averaged_and_pooled():
    rows = {0: fold_row(_report(0.5, 0.5, 10)), 1: fold_row(_report(1.0, 0.25, 40))}
    assert rows[0] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "gold": 10, "predicted": 10, "correct": 5}
    summary = summarize(rows)
    assert summary["mean_f1"] == pytest.approx((0.5 + 0.4) / 2) and summary["std_f1"] > 0
    # pooled: 5 + 10 correct of 10 + 10 predicted and 10 + 40 gold
    assert summary["pooled"]["precision"] == pytest.approx(15 / 20) and summary["pooled"]["recall"] == pytest.approx(15 / 50)
    with pytest.raises(ValueError, match="no fold"):
        summarize({})


def test_bad_folds_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--setup", "large", "--folds", "20", "--out", str(tmp_path)])
    assert stop.value.code == 2 and "folds must be 0-19" in capsys.readouterr().err


@pytest.mark.slow
def test_one_fold_runs_through_the_cli_and_resumes(data_dir, tmp_path):
    args = ["--setup", "20-fold", "--folds", "0", "--out", str(tmp_path), "--data-dir", str(data_dir),
            "--", "--frozen", "--epochs", "2"]
    summary = main(args)
    assert summary["folds"] == [0] and summary["pooled"]["gold"] > 800  # folds 1-19 hold ~900 entities
    report = tmp_path / "fold-0" / "eval" / "report.json"
    assert json.loads((tmp_path / "summary.json").read_text())["mean_f1"] == summary["mean_f1"]
    stamp = report.stat().st_mtime_ns
    assert main(args)["mean_f1"] == summary["mean_f1"] and report.stat().st_mtime_ns == stamp  # not run again
