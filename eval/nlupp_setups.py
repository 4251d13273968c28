"""The NLU++ slot-labelling setups over many folds: train and test one tagger per fold, then average.

Run: ``python -m eval.nlupp_setups --setup large|20-fold --folds 0-19 --out runs/large [-- FINETUNE-OPTIONS]``

NLU++ reports two setups: "large" trains on 19 folds and tests on the 20th, "20-fold" trains on one
fold and tests on the other 19; either is averaged over the folds. For each fold this runs the same
commands a user would (``agent finetune ner --setup S --fold K …`` then ``agent eval ner … --folds
…``), each in its own process, so the numbers are the CLI's own. Options after ``--`` go to
``agent finetune ner`` unchanged (``--frozen --head linear --lr 3e-3`` for the baseline).

A fold whose ``OUT/fold-K/eval/report.json`` already exists is not run again, so an interrupted run
resumes where it stopped. ``OUT/summary.json`` holds per-fold micro precision/recall/F1, their mean
and standard deviation, and the micro average pooled over all test entities of the folds done.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from finetune.cli import SETUPS, parse_folds, setup_folds
from finetune.data import NLUPP_FOLDS


def test_folds(setup: str, fold: int) -> list[int]:
    """The folds a setup tests on for ``fold`` (the test side of the CLI's ``setup_folds``)."""
    if setup not in SETUPS:  # a ValueError here, not the CLI's usage error
        raise ValueError(f"setup must be one of {', '.join(SETUPS)}; got {setup!r}")
    return setup_folds(setup, fold, NLUPP_FOLDS)[1]


def fold_row(report: dict[str, Any]) -> dict[str, float]:
    """Micro precision/recall/F1 of one fold's ``agent eval ner`` report, with the entity counts
    behind them (gold, predicted, correct) so folds can be pooled."""
    micro = report["micro"]
    gold = int(micro["support"])
    correct = round(micro["recall"] * gold)
    predicted = round(correct / micro["precision"]) if micro["precision"] else 0
    return {"precision": micro["precision"], "recall": micro["recall"], "f1": micro["f1"],
            "gold": gold, "predicted": predicted, "correct": correct}


def summarize(rows: dict[int, dict[str, float]]) -> dict[str, Any]:
    """Mean and standard deviation of the folds' micro-F1 (and P/R), and the pooled micro scores."""
    if not rows:
        raise ValueError("no fold has a report yet")
    f1s = [row["f1"] for row in rows.values()]
    gold = sum(row["gold"] for row in rows.values())
    predicted = sum(row["predicted"] for row in rows.values())
    correct = sum(row["correct"] for row in rows.values())
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    pooled_f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "folds": sorted(rows),
        "mean_f1": statistics.fmean(f1s),
        "std_f1": statistics.stdev(f1s) if len(f1s) > 1 else 0.0,
        "mean_precision": statistics.fmean(row["precision"] for row in rows.values()),
        "mean_recall": statistics.fmean(row["recall"] for row in rows.values()),
        "pooled": {"precision": precision, "recall": recall, "f1": pooled_f1, "gold": gold},
        "per_fold": {str(k): rows[k] for k in sorted(rows)},
    }


def run_fold(setup: str, fold: int, out: Path, finetune_args: Sequence[str], threads: int,
             data_dir: str | None) -> dict[str, Any]:
    """Train and evaluate one fold through the CLI; returns the eval report."""
    model = out / f"fold-{fold}"
    report_path = model / "eval" / "report.json"
    if report_path.exists():
        return json.loads(report_path.read_text(encoding="utf-8"))
    data = ["--data-dir", data_dir] if data_dir else []
    agent = [sys.executable, "-m", "agent"]
    if not (model / "config.json").exists():
        subprocess.run([*agent, "finetune", "ner", "--setup", setup, "--fold", str(fold), "--threads", str(threads),
                        "--out", str(model), "--json", *data, *finetune_args], check=True, stdout=subprocess.DEVNULL)
    folds = ",".join(map(str, test_folds(setup, fold)))
    subprocess.run([*agent, "eval", "ner", str(model), "--folds", folds, "--threads", str(threads),
                    "--out", str(model / "eval"), "--json", *data], check=True, stdout=subprocess.DEVNULL)
    return json.loads(report_path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    finetune_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m eval.nlupp_setups", description=__doc__.splitlines()[0])
    parser.add_argument("--setup", choices=SETUPS, required=True)
    parser.add_argument("--folds", default="0-19", help="Folds to run, e.g. 0-19 or 0,3,7 (default: all 20).")
    parser.add_argument("--out", type=Path, required=True, help="Folder for the per-fold models, reports and summary.json.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each training and evaluation.")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(own)

    from tqdm import tqdm

    try:
        folds = parse_folds(args.folds)
    except Exception as exc:  # typer.BadParameter: one line, no traceback
        parser.exit(2, f"error: {exc}\n")
    if any(k >= NLUPP_FOLDS for k in folds):
        parser.exit(2, f"error: folds must be 0-{NLUPP_FOLDS - 1}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[int, dict[str, float]] = {}
    for fold in tqdm(folds, desc=f"{args.setup} folds", unit="fold"):
        try:
            report = run_fold(args.setup, fold, args.out, finetune_args, args.threads, args.data_dir)
        except subprocess.CalledProcessError as exc:
            parser.exit(1, f"error: fold {fold} failed (exit {exc.returncode}): {' '.join(exc.cmd[1:])}\n")
        rows[fold] = fold_row(report)
        summary = {"setup": args.setup, "finetune_options": finetune_args, **summarize(rows)}
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k != "per_fold"}, indent=2))
    return summary


if __name__ == "__main__":
    main()
