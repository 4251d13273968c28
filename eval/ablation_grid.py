"""What the quantum head buys: the head ablation over data regimes and seeds, with intervals.

Heads (rows), all on the same cached frozen all-MiniLM-L6-v2 features with the same trainer:
``linear``; ``mlp=quantum`` and ``mlp=hybrid`` (classical MLPs with the quantum/hybrid head's
parameter count); ``quantum``; ``quantum-noent`` (the same circuits with the entangling gates
removed: published benchmarks of quantum models find removing entanglement often costs nothing);
``hybrid`` (linear path + quantum branch).

Regimes: BANKING77 with ``k`` training queries per intent (``10``, ``30``, sampled afresh for every
seed from the training split) or ``full``; and NLU++ ``20-fold`` (train on one fold, about 100
queries, test on the others; seed ``s`` trains on fold ``s``). Early stopping watches a validation
set that neither trains nor tests: BANKING77's carved 1,000 validation queries in every BANKING77
regime, and the next fold (``s + 1``) for NLU++, whose other 18 folds are the test.

NLU++ intents are multi-label: heads get one sigmoid per intent (binary cross-entropy), a query's
intents are those scoring ≥ 0.5, "accuracy" is the exact-match rate of the whole intent set and
the F1 is NLU++'s micro-F1 (macro-F1 over the intents present in the test folds is reported too).

Every run is appended to ``<out>/ablation_grid.json`` as soon as it ends and runs already there
are skipped, so an interrupted grid resumes where it stopped. Run it with
``agent bench ablation --shots 10,30,full --seeds 5``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finetune.models.heads import Head, HeadConfig, count_parameters, matched_mlp

ROWS = ("linear", "mlp=quantum", "quantum", "quantum-noent", "hybrid", "mlp=hybrid")
NLUPP_REGIME = "nlupp-20fold"
REPORT = "ablation_grid"
# One NLU++ fold is ~100 queries: at batch 64 an epoch is 2 steps and early stopping (patience 5)
# ends a run before a 62-way sigmoid head has left its start. Smaller batches and more epochs give
# every head a few hundred steps; the same settings hold for every head.
NLUPP_TRAINING = {"batch_size": 16, "epochs": 100, "patience": 20}


@dataclass(frozen=True)
class Split:
    """Features and labels of one regime's train, validation and test side for one seed."""

    x: dict[str, torch.Tensor]
    y: dict[str, torch.Tensor]  # class ids [N], or multi-hot floats [N, C] when multi_label
    multi_label: bool = False


@dataclass(frozen=True)
class GridConfig:
    """What the grid runs.

    Args:
        shots: BANKING77 regimes: training queries per intent, or ``"full"``.
        nlupp: Also run NLU++ 20-fold.
        seeds: Seeds 0..seeds-1 per regime (NLU++: seed s trains on fold s).
        rows: Heads to compare (see :data:`ROWS`).
    """

    shots: tuple[str, ...] = ("10", "30", "full")
    nlupp: bool = True
    seeds: int = 5
    rows: tuple[str, ...] = ROWS

    def __post_init__(self) -> None:
        for shot in self.shots:
            if shot != "full" and not (shot.isdigit() and int(shot) >= 1):
                raise ValueError(f"shots must be positive integers or 'full', got {shot!r}")
        if not self.shots and not self.nlupp:
            raise ValueError("choose at least one regime: --shots and/or NLU++ 20-fold")
        if not 1 <= self.seeds <= 20:
            raise ValueError(f"seeds must be 1-20 (NLU++ has 20 folds), got {self.seeds}")
        unknown = set(self.rows) - set(ROWS)
        if unknown or not self.rows:
            raise ValueError(f"unknown ablation rows {sorted(unknown)}; choose from {', '.join(ROWS)}")

    @property
    def regimes(self) -> list[str]:
        """The regimes in the order they run: the cheap low-data ones first, full BANKING77 last."""
        few = [f"banking77-{shot}shot" for shot in self.shots if shot != "full"]
        full = ["banking77-full"] if "full" in self.shots else []
        return few + ([NLUPP_REGIME] if self.nlupp else []) + full


def parse_shots(text: str) -> tuple[str, ...]:
    """``"10,30,full"`` → ``("10", "30", "full")`` (validated by :class:`GridConfig`)."""
    return tuple(part.strip().lower() for part in text.split(",") if part.strip())


def head_configs(base: HeadConfig) -> dict[str, HeadConfig]:
    """Every row's head config from the quantum/hybrid shape ``base``."""
    quantum = replace(base, kind="quantum")
    hybrid = replace(base, kind="hybrid")
    return {
        "linear": replace(base, kind="linear"),
        "mlp=quantum": matched_mlp(quantum),
        "quantum": quantum,
        "quantum-noent": replace(quantum, ansatz=replace(base.ansatz, entangler="none")),
        "hybrid": hybrid,
        "mlp=hybrid": matched_mlp(hybrid),
    }


def k_shot(labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Indices of ``k`` examples per class (all of a class with fewer), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    ids = labels.numpy()
    chosen = [rng.choice(np.flatnonzero(ids == c), size=min(k, int((ids == c).sum())), replace=False)
              for c in np.unique(ids)]
    return torch.as_tensor(np.sort(np.concatenate(chosen)))


def banking_split(features: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], shot: str,
                  seed: int) -> Split:
    """A BANKING77 regime: ``shot`` per intent (or all) of train; validation and test whole."""
    x, y = dict(features), dict(labels)
    if shot != "full":
        index = k_shot(labels["train"], int(shot), seed)
        x["train"], y["train"] = features["train"][index], labels["train"][index]
    return Split(x, y)


def nlupp_split(features: Sequence[torch.Tensor], multi_hot: Sequence[torch.Tensor], seed: int) -> Split:
    """NLU++ 20-fold for seed ``s``: train on fold s, validate on fold s+1, test on the other 18."""
    n = len(features)
    train, val = seed % n, (seed + 1) % n
    test = [k for k in range(n) if k not in (train, val)]
    x = {"train": features[train], "validation": features[val], "test": torch.cat([features[k] for k in test])}
    y = {"train": multi_hot[train], "validation": multi_hot[val], "test": torch.cat([multi_hot[k] for k in test])}
    return Split(x, y, multi_label=True)


def micro_f1_at_half(labels: np.ndarray, logits: np.ndarray) -> float:
    """Micro-F1 of the intents scoring ≥ 0.5 (logit ≥ 0): NLU++'s metric, used to early-stop."""
    predicted = logits >= 0
    truth = labels > 0.5
    tp = float((predicted & truth).sum())
    denominator = float(predicted.sum() + truth.sum())
    return 2 * tp / denominator if denominator else 0.0


def score(split: Split, logits: torch.Tensor) -> dict[str, float]:
    """Test accuracy and F1s of one run (see the module docstring for the multi-label ones)."""
    from sklearn.metrics import f1_score

    truth, out = split.y["test"].cpu().numpy(), logits.cpu().numpy()
    if not split.multi_label:
        predicted = out.argmax(-1)
        return {"accuracy": float((predicted == truth).mean()),
                "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0))}
    predicted, gold = out >= 0, truth > 0.5
    present = np.flatnonzero(gold.any(0))
    return {"accuracy": float((predicted == gold).all(1).mean()),
            "micro_f1": micro_f1_at_half(truth, out),
            "macro_f1": float(f1_score(gold[:, present], predicted[:, present], average="macro", zero_division=0))}


def train_one(config: HeadConfig, split: Split, args: Any, device: str = "cpu") -> dict[str, Any]:
    """Train one head on one split and score it on the split's test side."""
    from finetune.training.trainer import Trainer, macro_f1

    model = Head(config).to(device)
    extra: dict[str, Any] = {}
    if split.multi_label:
        extra = {"loss_fn": torch.nn.BCEWithLogitsLoss(), "score_fn": micro_f1_at_half}
    else:
        extra = {"score_fn": macro_f1}
    trainer = Trainer(model, args, **extra)
    on = {side: split.x[side].to(device) for side in split.x}
    fit = trainer.fit(on["train"], split.y["train"].to(device), on["validation"], split.y["validation"].to(device))
    logits = trainer.predict_logits(on["test"])
    return {"parameters": count_parameters(model), "train_seconds": fit.seconds, "best_epoch": fit.best_epoch,
            "train_examples": len(split.x["train"]), **score(split, logits)}


def t_interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and the half-width of its two-sided 95 % Student-t interval (0 for one value)."""
    from scipy import stats

    data = np.asarray(values, dtype=float)
    mean = float(data.mean())
    if len(data) < 2:
        return mean, 0.0
    half = float(stats.t.ppf(0.975, len(data) - 1) * data.std(ddof=1) / math.sqrt(len(data)))
    return mean, half


def summarize(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per (regime, head): seeds done, mean ± 95 % interval of each score, mean train time."""
    lines = []
    keys = sorted({(run["regime"], run["head"]) for run in runs}, key=lambda k: (_order(k[0]), _order_row(k[1])))
    for regime, head in keys:
        group = [run for run in runs if run["regime"] == regime and run["head"] == head]
        line: dict[str, Any] = {"regime": regime, "head": head, "seeds": sorted(run["seed"] for run in group),
                                "parameters": group[0]["parameters"]}
        for metric in ("accuracy", "macro_f1", "micro_f1", "train_seconds"):
            if metric in group[0]:
                mean, half = t_interval([run[metric] for run in group])
                line[metric] = {"mean": mean, "ci95": half}
        lines.append(line)
    return lines


# The questions the grid answers, as (head, baseline) pairs compared seed by seed.
COMPARISONS = (("quantum", "mlp=quantum"), ("hybrid", "mlp=hybrid"), ("hybrid", "linear"), ("quantum", "quantum-noent"))


def paired_differences(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Accuracy of head minus baseline per regime, over the seeds both ran, mean ± 95 % interval.

    Within a seed every head sees the same sampled training set and validation, so the seed-to-seed
    spread of the training sample cancels: the paired interval is the sharper test of a difference.
    """
    cells = {(run["regime"], run["seed"], run["head"]): run for run in runs}
    regimes = sorted({run["regime"] for run in runs}, key=_order)
    out = []
    for regime in regimes:
        for head, baseline in COMPARISONS:
            seeds = sorted(seed for (r, seed, h) in cells if r == regime and h == head
                           and (regime, seed, baseline) in cells)
            if not seeds:
                continue
            row: dict[str, Any] = {"regime": regime, "head": head, "baseline": baseline, "seeds": seeds}
            f1 = "micro_f1" if "micro_f1" in cells[(regime, seeds[0], head)] else "macro_f1"
            for metric, name in (("accuracy", "accuracy_difference"), (f1, "f1_difference")):
                mean, half = t_interval([cells[(regime, seed, head)][metric] - cells[(regime, seed, baseline)][metric]
                                         for seed in seeds])
                row[name] = {"mean": mean, "ci95": half, "metric": metric}
            out.append(row)
    return out


def format_differences(differences: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of :func:`paired_differences` (accuracy points, i.e. × 100)."""
    lines = ["| regime | comparison | seeds | accuracy difference (points) | F1 difference (points; NLU++: micro) |",
             "|---|---|---:|---:|---:|"]
    for row in differences:
        d, f = row["accuracy_difference"], row["f1_difference"]
        lines.append(f"| {row['regime']} | {row['head']} − {row['baseline']} | {len(row['seeds'])} | "
                     f"{100 * d['mean']:+.2f} ± {100 * d['ci95']:.2f} | {100 * f['mean']:+.2f} ± {100 * f['ci95']:.2f} |")
    return "\n".join(lines)


def format_summary(summary: Sequence[dict[str, Any]]) -> str:
    """A Markdown table: accuracy and F1 as mean ± 95 % interval, train time beside them."""
    lines = ["| regime | head | parameters | seeds | test accuracy | test F1 (macro; NLU++: micro) | train time (s) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for line in summary:
        f1 = line.get("micro_f1", line["macro_f1"])
        lines.append(
            f"| {line['regime']} | {line['head']} | {line['parameters']:,} | {len(line['seeds'])} | "
            f"{line['accuracy']['mean']:.4f} ± {line['accuracy']['ci95']:.4f} | "
            f"{f1['mean']:.4f} ± {f1['ci95']:.4f} | {line['train_seconds']['mean']:.1f} |")
    return "\n".join(lines)


def plot_summary(summary: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Accuracy per head, one panel per regime, with the 95 % intervals as error bars."""
    from eval.reports import _pyplot, _save

    plt = _pyplot()
    regimes = list(dict.fromkeys(line["regime"] for line in summary))
    fig, axes = plt.subplots(1, len(regimes), figsize=(4.2 * len(regimes), 3.8), squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        lines = [line for line in summary if line["regime"] == regime]
        heads = [line["head"] for line in lines]
        means = [line["accuracy"]["mean"] for line in lines]
        errors = [line["accuracy"]["ci95"] for line in lines]
        colors = ["tab:purple" if "quantum" in h and not h.startswith("mlp") or h == "hybrid" else "tab:gray"
                  for h in heads]
        ax.bar(heads, means, yerr=errors, capsize=3, color=colors)
        low = min(m - e for m, e in zip(means, errors))
        ax.set_ylim(max(0.0, low - 0.05), min(1.0, max(m + e for m, e in zip(means, errors)) + 0.02))
        ax.set_title(f"{regime} (n={max(len(line['seeds']) for line in lines)} seeds)", fontsize=9)
        ax.set_ylabel("test accuracy (NLU++: exact set)" if regime == NLUPP_REGIME else "test accuracy")
        ax.tick_params(axis="x", labelrotation=35, labelsize=8)
    return _save(fig, path)


def run_grid(
    config: GridConfig,
    *,
    out: str | Path,
    features: Callable[[str], Split | Callable[[int], Split]],
    head: HeadConfig,
    args: Any,
    device: str = "cpu",
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run every (regime, seed, head) not yet in ``<out>/ablation_grid.json``; write the report
    (JSON after every run, the PNG at the end) and return it.

    Args:
        features: ``features(regime)`` → a function of the seed giving that seed's :class:`Split`
            (see :func:`banking_regimes` and :func:`nlupp_regime`); heavy work stays with the caller.
        head: The quantum/hybrid shape; ``in_features`` is taken from the features.
        args: ``TrainingArguments``; each run replaces its ``seed``.
    """
    out = Path(out)
    path = out / f"{REPORT}.json"
    runs: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["runs"] if path.is_file() else []
    done = {(run["regime"], run["seed"], run["head"]) for run in runs}
    started = time.perf_counter()
    for regime in config.regimes:
        make = features(regime)
        # Seed-major: a grid cut short leaves every head with the same seeds.
        for seed in range(config.seeds):
            if all((regime, seed, row) in done for row in config.rows):
                continue
            split = make(seed)
            n_classes = split.y["train"].shape[1] if split.multi_label else int(split.y["test"].max()) + 1
            configs = head_configs(replace(head, in_features=split.x["train"].shape[1], n_classes=n_classes))
            for row in config.rows:
                if (regime, seed, row) in done:
                    continue
                settings = replace(args, seed=seed, **(NLUPP_TRAINING if regime == NLUPP_REGIME else {}))
                result = {"regime": regime, "seed": seed, "head": row,
                          **train_one(configs[row], split, settings, device)}
                runs.append(result)
                _write(out, config, head, args, device, runs)
                if on_run is not None:
                    on_run(result)
    report = _write(out, config, head, args, device, runs)
    if runs:
        plot_summary(report["summary"], out / f"{REPORT}.png")
    report["seconds_this_call"] = time.perf_counter() - started
    return report


def banking_regimes(data_dir: str | Path | None, encoder: Any, cache: Any) -> Callable[[str], Callable[[int], Split]]:
    """BANKING77 features once, then a seed → :class:`Split` function per ``banking77-*`` regime."""
    from finetune.data.loaders import load_intents

    dataset = load_intents("banking77", data_dir=data_dir)
    index = {label: i for i, label in enumerate(dataset.labels)}
    x = {side: cache.get_or_compute(encoder, [ex.text for ex in getattr(dataset, side)])
         for side in ("train", "validation", "test")}
    y = {side: torch.tensor([index[ex.label] for ex in getattr(dataset, side)]) for side in x}

    def regime(name: str) -> Callable[[int], Split]:
        shot = name.removeprefix("banking77-").removesuffix("shot")
        return lambda seed: banking_split(x, y, shot, seed)

    return regime


def nlupp_regime(data_dir: str | Path | None, encoder: Any, cache: Any) -> Callable[[int], Split]:
    """NLU++ intent features per fold, then the seed → :class:`Split` function of 20-fold."""
    from finetune.data.nlupp_intents import load_nlupp_intents

    data = load_nlupp_intents(data_dir)
    position = {label: i for i, label in enumerate(data.labels)}
    features, multi_hot = [], []
    for fold in data.folds:
        features.append(cache.get_or_compute(encoder, [ex.text for ex in fold]))
        rows = torch.zeros((len(fold), len(data.labels)))
        for i, example in enumerate(fold):
            rows[i, [position[intent] for intent in example.intents]] = 1.0
        multi_hot.append(rows)
    return lambda seed: nlupp_split(features, multi_hot, seed)


def _write(out: Path, config: GridConfig, head: HeadConfig, args: Any, device: str,
           runs: list[dict[str, Any]]) -> dict[str, Any]:
    from eval.reports import write_report

    report = {
        "command": "agent bench ablation --shots {} --seeds {}{}".format(
            ",".join(config.shots), config.seeds, "" if config.nlupp else " --no-nlupp"),
        "head_shape": head.to_dict(),
        "training": args.to_dict(),
        "nlupp_training": NLUPP_TRAINING,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "summary": summarize(runs),
        "paired_differences": paired_differences(runs),
        "runs": runs,
    }
    write_report(out, REPORT, report)
    return report


def _order(regime: str) -> tuple[int, int]:
    if regime == NLUPP_REGIME:
        return (2, 0)
    shot = regime.removeprefix("banking77-").removesuffix("shot")
    return (1, 0) if shot == "full" else (0, int(shot))


def _order_row(row: str) -> int:
    return ROWS.index(row) if row in ROWS else len(ROWS)


def run_ablation_grid(config: GridConfig, *, data_dir: str | Path | None = None, out: str | Path,
                      args: Any, head: HeadConfig | None = None, device: str = "cpu",
                      encoder: Any = None, cache: Any = None, progress: bool = False) -> dict[str, Any]:
    """:func:`run_grid` on BANKING77 and NLU++ features of the default encoder (cached on disk)."""
    from finetune.models.encoder import Encoder, EncoderConfig, FeatureCache

    encoder = encoder or Encoder.load(EncoderConfig())
    cache = cache or FeatureCache()
    banking: list[Callable[[str], Callable[[int], Split]]] = []

    def features(regime: str) -> Callable[[int], Split]:
        if regime == NLUPP_REGIME:
            return nlupp_regime(data_dir, encoder, cache)
        if not banking:
            banking.append(banking_regimes(data_dir, encoder, cache))
        return banking[0](regime)

    def say(run: dict[str, Any]) -> None:
        import sys

        print(f"{run['regime']} seed {run['seed']} {run['head']}: accuracy {run['accuracy']:.4f}, "
              f"{run['train_seconds']:.1f} s", file=sys.stderr, flush=True)

    return run_grid(config, out=out, features=features, head=head or HeadConfig(), args=args, device=device,
                    on_run=say if progress else None)
