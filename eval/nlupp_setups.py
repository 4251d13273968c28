"""The NLU++ slot-labelling setups over many folds: train and test one tagger per fold, then average.

Run: ``python -m eval.nlupp_setups --setup large|20-fold|cv [--folds …] --out runs/large [-- FINETUNE-OPTIONS]``

NLU++ reports two setups: "large" trains on 19 folds and tests on the 20th, "20-fold" trains on one
fold and tests on the other 19; either is averaged over the folds. For each fold this runs the same
commands a user would (``agent finetune ner --setup S --fold K …`` then ``agent eval ner … --folds
…``), each in its own process, so the numbers are the CLI's own. Options after ``--`` go to
``agent finetune ner`` unchanged (``--frozen --head linear --lr 3e-3`` for the baseline).

"cv" compares training recipes without touching the test folds: ``--folds`` (default 0-17, the
shipped tagger's training folds) is cut into ``--parts`` contiguous groups, and each part trains on
the other groups and tests on its own (``--train-folds``/``--test-folds``). Choosing a recipe on the
pooled score of all those test entities (865 for folds 0-17) is far steadier than on the
81 entities of one carved validation split, and folds 18-19 stay unseen for the final score.

A fold (or part) whose ``OUT/fold-K/eval/report.json`` (``OUT/part-K/…``) already exists is not run
again, so an interrupted run resumes where it stopped. ``OUT/summary.json`` holds per-fold micro
precision/recall/F1, their mean and standard deviation, and the micro average pooled over all test
entities of the folds done.
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

from finetune.data.folds import SETUPS, parse_folds, setup_folds
from finetune.data.loaders import NLUPP_FOLDS

CV = "cv"
DEFAULT_FOLDS = {"large": "0-19", "20-fold": "0-19", CV: "0-17"}  # cv stays off the test folds 18-19


def test_folds(setup: str, fold: int) -> list[int]:
    """The folds a setup tests on for ``fold`` (the test side of :func:`finetune.data.folds.setup_folds`)."""
    return setup_folds(setup, fold, NLUPP_FOLDS)[1]


def cv_parts(folds: Sequence[int], parts: int) -> list[tuple[list[int], list[int]]]:
    """(train folds, test folds) of each cross-validation part: ``folds`` cut into ``parts``
    contiguous groups as even as can be; part k tests on group k and trains on the others."""
    folds = list(folds)
    if not 2 <= parts <= len(folds):
        raise ValueError(f"--parts must be 2-{len(folds)} for {len(folds)} folds; got {parts}")
    size, extra = divmod(len(folds), parts)
    bounds = [k * size + min(k, extra) for k in range(parts + 1)]
    groups = [folds[bounds[k]:bounds[k + 1]] for k in range(parts)]
    return [([f for f in folds if f not in group], group) for group in groups]


def fold_row(report: dict[str, Any]) -> dict[str, float]:
    """Micro precision/recall/F1 of one fold's ``agent eval ner`` report, with the entity counts
    behind them (gold, predicted, correct) so folds can be pooled."""
    micro = report["micro"]
    gold = int(micro["support"])
    correct = round(micro["recall"] * gold)
    predicted = round(correct / micro["precision"]) if micro["precision"] else 0
    return {"precision": micro["precision"], "recall": micro["recall"], "f1": micro["f1"],
            "gold": gold, "predicted": predicted, "correct": correct}


def summarize(rows: dict[int, dict[str, float]], unit: str = "fold") -> dict[str, Any]:
    """Mean and standard deviation of the folds' (or cv parts') micro-F1 (and P/R), and the pooled
    micro scores; ``unit`` names the keys (``folds``/``per_fold`` or ``parts``/``per_part``)."""
    if not rows:
        raise ValueError(f"no {unit} has a report yet")
    f1s = [row["f1"] for row in rows.values()]
    gold = sum(row["gold"] for row in rows.values())
    predicted = sum(row["predicted"] for row in rows.values())
    correct = sum(row["correct"] for row in rows.values())
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    pooled_f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        f"{unit}s": sorted(rows),
        "mean_f1": statistics.fmean(f1s),
        "std_f1": statistics.stdev(f1s) if len(f1s) > 1 else 0.0,
        "mean_precision": statistics.fmean(row["precision"] for row in rows.values()),
        "mean_recall": statistics.fmean(row["recall"] for row in rows.values()),
        "pooled": {"precision": precision, "recall": recall, "f1": pooled_f1, "gold": gold},
        f"per_{unit}": {str(k): rows[k] for k in sorted(rows)},
    }


def _fold_list(folds: Sequence[int]) -> str:
    return ",".join(map(str, folds))


def plan(setup: str, folds: Sequence[int], parts: int = 3) -> dict[int, tuple[list[str], list[int]]]:
    """The fold options of ``agent finetune ner`` and the test folds of each model, by fold (NLU++
    setups) or by part (cv over ``folds`` in ``parts`` groups)."""
    if setup == CV:
        return {k: (["--train-folds", _fold_list(train), "--test-folds", _fold_list(test)], test)
                for k, (train, test) in enumerate(cv_parts(folds, parts))}
    return {k: (["--setup", setup, "--fold", str(k)], test_folds(setup, k)) for k in folds}


def run_model(model: Path, fold_args: Sequence[str], test: Sequence[int], finetune_args: Sequence[str],
              threads: int, data_dir: str | None) -> dict[str, Any]:
    """``agent finetune ner`` into ``model`` (unless it is there), then ``agent eval ner`` on ``test``."""
    report_path = model / "eval" / "report.json"
    if report_path.exists():
        return json.loads(report_path.read_text(encoding="utf-8"))
    data = ["--data-dir", data_dir] if data_dir else []
    agent = [sys.executable, "-m", "agent"]
    if not (model / "config.json").exists():
        subprocess.run([*agent, "finetune", "ner", *fold_args, "--threads", str(threads),
                        "--out", str(model), "--json", *data, *finetune_args], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*agent, "eval", "ner", str(model), "--folds", _fold_list(test), "--threads", str(threads),
                    "--out", str(model / "eval"), "--json", *data], check=True, stdout=subprocess.DEVNULL)
    return json.loads(report_path.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    finetune_args = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="python -m eval.nlupp_setups", description=__doc__.splitlines()[0])
    parser.add_argument("--setup", choices=(*SETUPS, CV), required=True,
                        help="NLU++'s 'large' or '20-fold', or 'cv' to compare recipes without the test folds.")
    parser.add_argument("--folds", default=None, help="Folds to run, e.g. 0-19 or 0,3,7 (default: all 20; "
                        "for cv, the folds to cross-validate over, default 0-17).")
    parser.add_argument("--parts", type=int, default=None, help="cv only: groups of --folds, one model each (default 3).")
    parser.add_argument("--out", type=Path, required=True, help="Folder for the per-fold models, reports and summary.json.")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each training and evaluation.")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(own)

    from tqdm import tqdm

    try:
        folds = parse_folds(args.folds or DEFAULT_FOLDS[args.setup])
    except Exception as exc:  # typer.BadParameter: one line, no traceback
        parser.exit(2, f"error: {exc}\n")
    if any(k >= NLUPP_FOLDS for k in folds):
        parser.exit(2, f"error: folds must be 0-{NLUPP_FOLDS - 1}\n")
    if args.parts is not None and args.setup != CV:
        parser.exit(2, "error: --parts is only for --setup cv\n")
    try:
        jobs = plan(args.setup, folds, args.parts or 3)
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")
    unit = "part" if args.setup == CV else "fold"
    header: dict[str, Any] = {"setup": args.setup, "finetune_options": finetune_args}
    if args.setup == CV:
        header["part_folds"] = {str(k): {"train": [f for f in folds if f not in test], "test": test}
                                for k, (_, test) in jobs.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    rows: dict[int, dict[str, float]] = {}
    for key, (fold_args, test) in tqdm(jobs.items(), desc=f"{args.setup} {unit}s", unit=unit):
        try:
            report = run_model(args.out / f"{unit}-{key}", fold_args, test, finetune_args, args.threads, args.data_dir)
        except subprocess.CalledProcessError as exc:
            parser.exit(1, f"error: {unit} {key} failed (exit {exc.returncode}): {' '.join(exc.cmd[1:])}\n")
        rows[key] = fold_row(report)
        summary = {**header, **summarize(rows, unit)}
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k not in (f"per_{unit}", "part_folds")}, indent=2))
    return summary


if __name__ == "__main__":
    main()
