"""How far a classifier's test score moves with its head's seed alone.

Run: ``python -m eval.head_seeds MODEL --seeds 10 --out runs/head-seeds [--target 0.90] [--soft-labels F] [--json]``

A head trained on frozen features (a shared adapter's, as the monitor's topic model is, or the
plain encoder's) is cheap to train again, and its seed alone moves the test score: which weights it
starts from and the order it sees the headlines in. One test figure of one seed says little when a
target sits within that spread. This trains the model's head again with the settings its
``config.json`` records, on the same frozen features and the same train/validation split, once per
seed; gives each a word n-gram part chosen on validation when the model has one
(:func:`finetune.training.lexical.fit_lexical`); and scores every one on the test split, the model
itself beside them, and the seeds' averaged probabilities (an ensemble of the heads, which reads
the same encoder pass). Nothing is chosen here: validation and test are reported side by side.

Writes ``report.json`` and ``seeds.png`` (test accuracy per seed, the model's and the target as lines)
to ``--out``; the retrained heads stay in ``--out/seed-N``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from finetune.data.loaders import TextDataset
from finetune.data.soft_labels import SoftExample, read_soft_labels
from finetune.models.checkpoint import load_checkpoint
from finetune.models.encoder import Encoder, EncoderConfig, EncoderError, FeatureCache
from finetune.models.files import LEXICAL, CheckpointError
from finetune.models.heads import HeadConfig
from finetune.training.lexical import class_scores
from finetune.training.trainer import TrainingArguments

# The recorded training settings a retrained head keeps (its seed is the one thing that changes).
_KEPT = {f.name for f in fields(TrainingArguments)} - {"seed", "log_dir", "progress"}


@dataclass
class Scored:
    """One checkpoint scored: test scores (head alone and joined), what its training recorded on
    validation, and its joined probabilities on validation and test (sorted label order)."""

    test: dict[str, Any]
    validation: dict[str, Any]
    validation_probs: np.ndarray
    test_probs: np.ndarray


def _scores(labels: Sequence[str], examples: Sequence[Any], probs: np.ndarray) -> dict[str, float]:
    return class_scores(np.array([labels.index(ex.label) for ex in examples]), probs)


def _score(model_dir: Path, dataset: TextDataset, cache: FeatureCache) -> Scored:
    """Score one checkpoint on ``dataset``'s validation and test splits (features from ``cache``)."""
    from finetune.models.classifier import TextClassifier

    model = TextClassifier.load(model_dir)
    labels = sorted(model.labels)
    order = [model.labels.index(label) for label in labels]
    val_texts, test_texts = [ex.text for ex in dataset.validation], [ex.text for ex in dataset.test]
    val_features, test_features = model.encode(val_texts, cache=cache), model.encode(test_texts, cache=cache)
    head = model.head_probabilities(test_features)[:, order]
    joined = model.probabilities(test_features, texts=test_texts)[:, order]
    metrics = model.checkpoint.metrics
    lexical = metrics.get("lexical") or {}
    return Scored(
        test={"head": _scores(labels, dataset.test, head), "joined": _scores(labels, dataset.test, joined),
              "lexical": model.lexical is not None},
        validation={"best_epoch": metrics.get("best_epoch"), "head_macro_f1": metrics.get("val_macro_f1"),
                    "joined": lexical.get("joined") if lexical.get("written") else None},
        validation_probs=model.probabilities(val_features, texts=val_texts)[:, order],
        test_probs=joined,
    )


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {"mean": round(statistics.fmean(values), 4), "stdev": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
            "min": round(min(values), 4), "max": round(max(values), 4)}


def seed_spread(model: str | Path, dataset: TextDataset, seeds: Sequence[int], out: str | Path, *,
                cache: FeatureCache | None = None, target: float | None = None,
                soft: Sequence[SoftExample] = (), progress: bool = False) -> dict[str, Any]:
    """Train ``model``'s head again once per seed on ``dataset`` (split as the model was) and score
    each, the model and the seeds' average on ``dataset.test``.

    Args:
        model: A classifier checkpoint whose head reads frozen features: the plain encoder's, or an
            adapter it carries (``adapter/``) and never trained itself while the head trained.
        dataset: The data the model was trained on, with the same validation split, and its test split.
        seeds: The heads' seeds (at least one).
        out: Folder for the retrained heads (``seed-N``), ``report.json`` and ``seeds.png``.
        cache: Feature cache (default: ``$QAGENT_HOME/cache/features``); every head reads the same features.
        target: A test accuracy to count the seeds against (and draw), or None.
        soft: Texts with a teacher's probabilities the heads also learn from (``--soft-labels``), a
            change to the recorded recipe that the report names.
        progress: Show a progress bar over the seeds on stderr.
    """
    from finetune.training.classifier import ClassifierSpec, train_classifier
    from finetune.training.lexical import fit_lexical
    from tqdm.auto import tqdm

    if not seeds:
        raise ValueError("give at least one seed")
    if not dataset.test:
        raise ValueError(f"{dataset.name} has no test split to score the heads on")
    source = load_checkpoint(Path(model))
    settings = source.settings
    if settings.get("mode") == "lora" and "shared_adapter" not in settings:
        raise ValueError(f"{model}: its head trained together with its own adapter; a head alone trained again on "
                         "that adapter is another recipe. Give a model trained on frozen features (--share-adapter or frozen)")
    cache = cache or FeatureCache()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    recorded = {k: v for k, v in source.config.get("training", {}).items() if k in _KEPT}
    spec = ClassifierSpec(task=source.task, head=HeadConfig.from_dict(source.config["head"]), adapter=source.adapter_dir)
    with_lexical = (Path(model) / LEXICAL).is_file()
    trained_on = source.config.get("training", {}).get("train_examples")
    if trained_on is not None and trained_on != len(dataset.train):
        # Added files (--add-train) or out-of-scope examples are not recorded in a form this can read again.
        raise ValueError(f"{model} trained on {trained_on} labelled examples and {dataset.name}'s training split holds "
                         f"{len(dataset.train)}: it learnt from other or added data (--add-train, out-of-scope), "
                         "so its head cannot be trained again as it was")
    reference = _score(Path(model), dataset, cache)
    runs: list[Scored] = []
    rows: list[dict[str, Any]] = []
    for seed in tqdm(seeds, desc="heads", unit="seed", disable=not progress):
        path = folder / f"seed-{seed}"
        args = TrainingArguments(**recorded, seed=seed, progress=False)
        # A fresh plain encoder each time: a shared adapter is loaded into the encoder it is given.
        train_classifier(dataset, spec, args, Encoder.load(EncoderConfig.from_dict(source.encoder)), path, cache=cache,
                         soft=soft)
        if with_lexical:
            fit_lexical(path, dataset, cache=cache)
        runs.append(_score(path, dataset, cache))
        rows.append({"seed": seed, "validation": runs[-1].validation, "test": runs[-1].test})
    labels = sorted(source.labels)
    accuracy = [r.test["joined"]["accuracy"] for r in runs]
    report: dict[str, Any] = {
        "model": str(model), "data": dataset.name, "seeds": list(seeds), "lexical": with_lexical,
        "training": recorded, "soft_examples": len(soft), "test_examples": len(dataset.test), "model_test": reference.test,
        "runs": rows,
        "test_accuracy": _summary(accuracy),
        "head_test_accuracy": _summary([r.test["head"]["accuracy"] for r in runs]),
        "validation_macro_f1": {
            "head": _summary([r.validation["head_macro_f1"] for r in runs]),
            # A seed whose word part did not earn its place is its head alone.
            "joined": _summary([(r.validation["joined"] or {}).get("macro_f1", r.validation["head_macro_f1"])
                                for r in runs]),
        },
        "average_of_seeds": _scores(labels, dataset.test, np.mean([r.test_probs for r in runs], axis=0)),
        "average_of_seeds_validation": _scores(labels, dataset.validation,
                                               np.mean([r.validation_probs for r in runs], axis=0)),
    }
    if target is not None:
        report["target"] = {"accuracy": target, "seeds_at_or_above": sum(a >= target for a in accuracy)}
    (folder / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot(report, folder / "seeds.png")
    return report


def plot(report: dict[str, Any], path: Path) -> Path:
    """Test accuracy per seed (head alone and joined), with the model's own and the target as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["runs"]
    x = np.arange(len(runs))
    fig, ax = plt.subplots(figsize=(max(5.5, 0.6 * len(runs) + 3.5), 3.2))
    ax.plot(x, [r["test"]["head"]["accuracy"] for r in runs], "o", color="#999999", label="head alone")
    if report["lexical"]:
        ax.plot(x, [r["test"]["joined"]["accuracy"] for r in runs], "o", color="#1f77b4", label="with the word part")
    ax.axhline(report["model_test"]["joined"]["accuracy"], color="#1f77b4", ls="--", lw=1, label="the model")
    ax.axhline(report["average_of_seeds"]["accuracy"], color="#2ca02c", ls=":", lw=1, label="average of the seeds")
    if "target" in report:
        ax.axhline(report["target"]["accuracy"], color="#d62728", lw=1, label="target")
    ax.set_xticks(x, [str(r["seed"]) for r in runs])
    ax.set_xlabel("seed")
    ax.set_ylabel("test accuracy")
    taught = f", heads also taught on {report['soft_examples']} texts" if report.get("soft_examples") else ""
    ax.set_title(f"{Path(report['model']).name} on {report['data']} ({report['test_examples']} test texts{taught})", fontsize=9)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # outside: points are never hidden
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _dataset(task: str, data: str, data_dir: str | None, val_fraction: float, seed: int) -> TextDataset:
    from finetune.data import loaders

    load = {"topics": loaders.load_topics, "sentiment": loaders.load_sentiment, "intents": loaders.load_intents}.get(task)
    if load is None:
        raise ValueError(f"no data loader for a {task!r} model")
    return load(data, data_dir=data_dir, val_fraction=val_fraction, seed=seed)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="classifier checkpoint whose head reads frozen features")
    parser.add_argument("--seeds", type=int, default=10, help="heads to train, seeds 0..N-1")
    parser.add_argument("--out", type=Path, default=Path("runs/head-seeds"))
    parser.add_argument("--data", default=None, help="data set (default: the one the model's config.json records)")
    parser.add_argument("--data-dir", default=None, help="folder of the shared data sets (default $QAGENT_DATA_DIR or ../shared/data)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="validation share carved as the model's training did")
    parser.add_argument("--target", type=float, default=None, help="test accuracy to count the seeds against")
    parser.add_argument("--soft-labels", type=Path, default=None,
                        help="JSONL of a teacher's probabilities (agent finetune soft-labels) the heads also learn from")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        source = load_checkpoint(args.model)
        training = source.config.get("training", {})
        dataset = _dataset(source.task, args.data or training.get("data") or "", args.data_dir, args.val_fraction,
                           int(training.get("seed", 0)))
        soft = read_soft_labels(args.soft_labels, dataset.labels) if args.soft_labels else []
        report = seed_spread(args.model, dataset, list(range(args.seeds)), args.out, target=args.target, soft=soft,
                             progress=True)
    except (OSError, ValueError, CheckpointError, EncoderError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        s = report["test_accuracy"]
        print(f"{report['model']}: test accuracy {report['model_test']['joined']['accuracy']:.4f}; "
              f"{len(report['runs'])} seeds {s['mean']:.4f} ± {s['stdev']:.4f} (range {s['min']:.4f}–{s['max']:.4f}); "
              f"their average {report['average_of_seeds']['accuracy']:.4f}")
        if "target" in report:
            print(f"  {report['target']['seeds_at_or_above']} of {len(report['runs'])} seeds at or above {args.target}")
        print(f"  report: {args.out / 'report.json'}, plot: {args.out / 'seeds.png'}")
    return report


if __name__ == "__main__":
    main()
