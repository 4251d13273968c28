import json

import pytest

from eval.nlupp_setups import cv_parts, fold_row, main, plan, summarize, test_folds as folds_tested


def _report(precision, recall, support):
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"micro": {"precision": precision, "recall": recall, "f1": f1, "support": support}}


def test_setups_test_on_the_right_folds():
    assert folds_tested("large", 3) == [3]
    assert folds_tested("20-fold", 3) == [k for k in range(20) if k != 3]
    with pytest.raises(ValueError, match="setup"):
        folds_tested("huge", 0)


def test_cv_parts_cover_each_fold_once_and_never_train_on_their_test():
    parts = cv_parts(range(18), 3)
    assert [test for _, test in parts] == [list(range(0, 6)), list(range(6, 12)), list(range(12, 18))]
    assert parts[1][0] == [*range(0, 6), *range(12, 18)]
    uneven = cv_parts([0, 1, 2, 3, 4], 2)  # as even as can be, the first groups one bigger
    assert [test for _, test in uneven] == [[0, 1, 2], [3, 4]]
    for train, test in uneven:
        assert sorted(train + test) == [0, 1, 2, 3, 4] and not set(train) & set(test)
    with pytest.raises(ValueError, match="--parts must be 2-5"):
        cv_parts([0, 1, 2, 3, 4], 6)


def test_plan_passes_the_cli_its_folds():
    assert plan("large", [3]) == {3: (["--setup", "large", "--fold", "3"], [3])}
    assert plan("cv", range(18), 3)[2] == (["--train-folds", ",".join(map(str, range(12))),
                                            "--test-folds", "12,13,14,15,16,17"], [12, 13, 14, 15, 16, 17])


def test_folds_are_averaged_and_pooled():
    rows = {0: fold_row(_report(0.5, 0.5, 10)), 1: fold_row(_report(1.0, 0.25, 40))}
    assert rows[0] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "gold": 10, "predicted": 10, "correct": 5}
    summary = summarize(rows)
    assert summary["mean_f1"] == pytest.approx((0.5 + 0.4) / 2) and summary["std_f1"] > 0
    # pooled: 5 + 10 correct of 10 + 10 predicted and 10 + 40 gold
    assert summary["pooled"]["precision"] == pytest.approx(15 / 20) and summary["pooled"]["recall"] == pytest.approx(15 / 50)
    with pytest.raises(ValueError, match="no fold"):
        summarize({})
    assert set(summarize(rows, "part")) >= {"parts", "per_part"}


@pytest.mark.parametrize("args, message", [
    (["--setup", "large", "--folds", "20"], "folds must be 0-19"),
    (["--setup", "large", "--parts", "3"], "--parts is only for --setup cv"),
    (["--setup", "cv", "--folds", "0-2", "--parts", "4"], "--parts must be 2-3"),
])
def test_bad_options_are_one_line(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as stop:
        main([*args, "--out", str(tmp_path)])
    assert stop.value.code == 2 and message in capsys.readouterr().err


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


@pytest.mark.slow
def test_cv_trains_on_the_other_parts_and_scores_its_own(data_dir, tmp_path):
    args = ["--setup", "cv", "--folds", "0-1", "--parts", "2", "--out", str(tmp_path), "--data-dir", str(data_dir),
            "--", "--frozen", "--epochs", "1"]
    summary = main(args)
    assert summary["parts"] == [0, 1] and summary["part_folds"]["1"] == {"train": [0], "test": [1]}
    gold = [json.loads((tmp_path / f"part-{k}" / "eval" / "report.json").read_text())["micro"]["support"] for k in (0, 1)]
    assert summary["pooled"]["gold"] == sum(gold) and min(gold) > 0
    config = json.loads((tmp_path / "part-1" / "config.json").read_text())
    assert "--train-folds 0 " in config["command"] and "--test-folds 1 " in config["command"]
