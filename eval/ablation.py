"""Head ablation on frozen features (BANKING77 intents, or fin_topics news topics): does the quantum part add capacity?

Rows: ``linear``; ``quantum``; ``mlp`` sized to the quantum head's parameter count
(``matched_mlp``); ``hybrid`` (linear + quantum branch); ``mlp`` sized to the hybrid; a QSVC
(quantum kernel SVM, on a subsample); and ``logreg``, scikit-learn's logistic regression (C=10) on
the same features, the usual frozen-encoder baseline. Every head trains on the same cached features
with the same trainer settings, so the rows differ only in the head. The features come from the
plain encoder, or through a model's frozen LoRA adapter (``adapter``: e.g. the news monitor's shared
one, which the shipped topic model reads). Run it with ``agent bench ablation`` or
``python -m eval.ablation``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finetune.data.loaders import limit_examples, load_intents, load_topics
from finetune.models.encoder import Encoder, EncoderConfig, FeatureCache
from finetune.models.heads import Head, HeadConfig, count_parameters, matched_mlp
from finetune.quantum.kernel import QSVCBaseline, QSVCConfig
from finetune.training.trainer import Trainer, TrainingArguments

ROWS = ("linear", "quantum", "mlp=quantum", "hybrid", "mlp=hybrid", "qsvc", "logreg")
DATA = ("banking77", "fin_topics")


def run_ablation(
    *,
    data: str = "banking77",
    data_dir: str | Path | None = None,
    rows: tuple[str, ...] = ROWS,
    head: HeadConfig | None = None,
    args: TrainingArguments | None = None,
    qsvc: QSVCConfig | None = None,
    encoder: Encoder | None = None,
    cache: FeatureCache | None = None,
    device: str = "cpu",
    adapter: str | Path | None = None,
    train_limit: int | None = None,
) -> dict[str, Any]:
    """Train each head of ``rows`` on frozen features of ``data`` and score it on the test split.

    Args:
        data: ``banking77`` or ``fin_topics`` (whose test split is its ``valid.csv``).
        adapter: A saved LoRA adapter folder to read the features through, frozen (default: none).
        train_limit: Train on a seeded, label-stratified subsample of this many examples (the seed of ``args``).
        head: The quantum/hybrid shape (default: 4 circuits × 6 qubits, amplitude, probs, depth 2).
        args: Trainer settings shared by every head.
        qsvc: QSVC settings (default: 8 qubits, 20 training examples per class).
        device: Where the heads train (``cpu``, ``cuda``; already resolved). QSVC runs on the CPU.
    """
    unknown = set(rows) - set(ROWS)
    if unknown:
        raise ValueError(f"unknown ablation rows {sorted(unknown)}; choose from {', '.join(ROWS)}")
    if data not in DATA:
        raise ValueError(f"ablation data must be one of {', '.join(DATA)}; got {data!r}")
    args = args or TrainingArguments(progress=False)
    dataset = (load_topics if data == "fin_topics" else load_intents)(data, data_dir=data_dir)
    if train_limit is not None:
        dataset.train = limit_examples(dataset.train, train_limit, args.seed)
    # Headlines are short: the topic models read 64 sub-tokens, as the news models whose adapter they share.
    encoder = encoder or Encoder.load(EncoderConfig(max_length=64) if data == "fin_topics" else EncoderConfig())
    if adapter is not None:
        encoder.load_adapter(adapter)
    cache = cache or FeatureCache()
    start = time.perf_counter()
    x = {split: cache.get_or_compute(encoder, [ex.text for ex in getattr(dataset, split)])
         for split in ("train", "validation", "test")}
    feature_seconds = time.perf_counter() - start
    index = {label: i for i, label in enumerate(dataset.labels)}
    y = {split: torch.tensor([index[ex.label] for ex in getattr(dataset, split)])
         for split in ("train", "validation", "test")}
    base = replace(head or HeadConfig(), in_features=encoder.dim, n_classes=len(dataset.labels))
    configs = {
        "linear": replace(base, kind="linear"),
        "quantum": replace(base, kind="quantum"),
        "mlp=quantum": matched_mlp(replace(base, kind="quantum")),
        "hybrid": replace(base, kind="hybrid"),
        "mlp=hybrid": matched_mlp(replace(base, kind="hybrid")),
    }
    results = []
    for name in rows:
        if name == "qsvc":
            results.append(_qsvc_row(qsvc or QSVCConfig(), x, y))
            continue
        if name == "logreg":
            results.append(_logreg_row(x, y, seed=args.seed))
            continue
        model = Head(configs[name]).to(device)
        trainer = Trainer(model, args)
        on = {split: x[split].to(device) for split in x}
        fit = trainer.fit(on["train"], y["train"].to(device), on["validation"], y["validation"].to(device))
        predicted = trainer.predict_logits(on["test"]).argmax(-1).cpu()
        results.append(_row(name, count_parameters(model), fit.seconds, y["test"], predicted,
                            best_epoch=fit.best_epoch, val_macro_f1=fit.best_score, config=configs[name].to_dict()))
    return {
        "data": dataset.name,
        "encoder": encoder.fingerprint,
        "adapter": None if adapter is None else str(adapter),
        "train_limit": train_limit,
        "train_examples": len(dataset.train),
        "test_examples": len(dataset.test),
        "feature_seconds": feature_seconds,
        "training": args.to_dict(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "rows": results,
    }


def format_table(report: dict[str, Any]) -> str:
    """A Markdown table of the rows."""
    lines = [
        "| head | trainable parameters (QSVC: support vectors) | train time (s) | test accuracy | test macro-F1 |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in report["rows"]:
        lines.append(f"| {row['head']} | {row['parameters']:,} | {row['train_seconds']:.1f} | "
                     f"{row['test_accuracy']:.4f} | {row['test_macro_f1']:.4f} |")
    return "\n".join(lines)


def _qsvc_row(config: QSVCConfig, x: dict[str, torch.Tensor], y: dict[str, torch.Tensor]) -> dict[str, Any]:
    model = QSVCBaseline(config).fit(x["train"].numpy(), y["train"].numpy())
    predicted = torch.as_tensor(model.predict(x["test"].numpy()))
    # An SVM's "parameters" are its support vectors' dual coefficients; report the support size.
    return _row("qsvc", int(model._svc.support_.size), model.fit_seconds, y["test"], predicted,
                train_subsample=model.train_size, config=config.to_dict())


def _logreg_row(x: dict[str, torch.Tensor], y: dict[str, torch.Tensor], *, seed: int) -> dict[str, Any]:
    """Logistic regression (C=10, lbfgs) on the training split's features; no validation is needed."""
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    model = LogisticRegression(C=10.0, max_iter=2000, random_state=seed).fit(x["train"].numpy(), y["train"].numpy())
    seconds = time.perf_counter() - start
    parameters = int(model.coef_.size + model.intercept_.size)
    return _row("logreg", parameters, seconds, y["test"], model.predict(x["test"].numpy()), config={"C": 10.0})


def _row(name: str, parameters: int, seconds: float, truth: torch.Tensor, predicted: torch.Tensor,
         **extra: Any) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    t, p = truth.numpy(), np.asarray(predicted)
    return {
        "head": name,
        "parameters": parameters,
        "train_seconds": seconds,
        "test_accuracy": float((t == p).mean()),
        "test_macro_f1": float(f1_score(t, p, average="macro", zero_division=0)),
        **extra,
    }


if __name__ == "__main__":  # pragma: no cover - `python -m eval.ablation` prints the table
    report = run_ablation(args=TrainingArguments(progress=True))
    print(format_table(report))
