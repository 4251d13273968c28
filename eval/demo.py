"""A small end-to-end demo: one quantum head trained and evaluated on every kind of backend.

The task is two interleaving half-moons (scikit-learn's ``make_moons``), generated on the spot
so the demo needs no data set and no download. The same circuit is trained through the exact
torch simulator, Aer and Aer with a fake IBM device's noise; then the weights trained exactly
are run unchanged on every backend, so a user sees how much shots and noise move the numbers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finetune.models.heads import Head, HeadConfig
from finetune.quantum.ansatz import AnsatzConfig
from finetune.training.trainer import Trainer, TrainingArguments

DEFAULT_BACKENDS = ("exact", "aer", "aer:shots=1024", "aer:noise=fake_sherbrooke,shots=1024")


@dataclass(frozen=True)
class DemoConfig:
    """Settings of the demo run."""

    backends: tuple[str, ...] = DEFAULT_BACKENDS
    n_samples: int = 240
    epochs: int = 20
    batch_size: int = 32
    lr: float = 0.05
    n_qubits: int = 2
    depth: int = 2
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.backends:
            raise ValueError("give at least one backend")
        if self.n_samples < 20:
            raise ValueError(f"n_samples must be >= 20, got {self.n_samples}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")

    def head_config(self) -> HeadConfig:
        ansatz = AnsatzConfig(n_qubits=self.n_qubits, depth=self.depth, encoding="angle", readout="z")
        return HeadConfig(kind="quantum", in_features=2, n_classes=2, ansatz=ansatz, n_circuits=1, dropout=0.0)


def moons(n_samples: int, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Standardised two-moons data split 60/20/20 into train, validation and test."""
    from sklearn.datasets import make_moons
    from sklearn.model_selection import train_test_split

    x, y = make_moons(n_samples=n_samples, noise=0.15, random_state=seed)
    x = (x - x.mean(0)) / x.std(0)
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, test_size=0.4, stratify=y, random_state=seed)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=seed)

    def pack(a, b):
        return torch.tensor(a, dtype=torch.float32), torch.tensor(b, dtype=torch.long)

    return {"train": pack(x_train, y_train), "validation": pack(x_val, y_val), "test": pack(x_test, y_test)}


def run_demo(config: DemoConfig, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Train on each backend, cross-evaluate the exact model, and write report + plots."""
    data = moons(config.n_samples, config.seed)
    args = TrainingArguments(
        epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, patience=config.epochs,
        seed=config.seed, progress=config.progress,
    )
    x_test, y_test = data["test"]
    trained: dict[str, Any] = {}
    exact_head = None
    for backend in config.backends:
        torch.manual_seed(config.seed)
        head = Head(config.head_config(), backend=backend)
        trainer = Trainer(head, args)
        result = trainer.fit(*data["train"], *data["validation"])
        accuracy = _accuracy(trainer.predict_logits(x_test), y_test)
        trained[backend] = {
            "train_seconds": round(result.seconds, 2),
            "best_epoch": result.best_epoch,
            "val_macro_f1": round(result.best_score, 4),
            "test_accuracy": round(accuracy, 4),
            "history": result.history,
        }
        if backend == "exact":
            exact_head = head
    cross = _cross_evaluate(exact_head, config.backends, x_test, y_test) if exact_head is not None else {}
    report = {"config": asdict(config), "trained": trained, "exact_weights_on_each_backend": cross}
    if out_dir is not None:
        _write(report, Path(out_dir))
    return report


@torch.no_grad()
def _cross_evaluate(head: Head, backends: Sequence[str], x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """Run the exact-trained weights on every backend: accuracy and readout drift vs exact."""
    head.eval()
    head.set_backend("exact")
    features = head.quantum
    reference = features(x)
    rows = {}
    for backend in backends:
        head.set_backend(backend)
        start = time.perf_counter()
        readout = features(x)
        logits = head(x)
        rows[backend] = {
            "test_accuracy": round(_accuracy(logits, y), 4),
            "max_abs_readout_diff_vs_exact": round(float((readout - reference).abs().max()), 5),
            "seconds": round(time.perf_counter() - start, 3),
        }
    head.set_backend("exact")
    return rows


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(-1) == labels).float().mean())


def _write(report: dict[str, Any], out: Path) -> None:
    from eval.reports import plot_bars, plot_training_curves, write_report

    write_report(out, "demo_report", report)
    for backend, row in report["trained"].items():
        safe = backend.replace(":", "_").replace("=", "-").replace(",", "_")
        plot_training_curves(row["history"], out / f"training_{safe}.png", title=f"two moons on {backend}")
    accuracy = {b: r["test_accuracy"] for b, r in report["exact_weights_on_each_backend"].items()}
    if accuracy:
        plot_bars(accuracy, out / "exact_weights_accuracy.png", "test accuracy",
                  "exact-trained weights run on each backend")


def format_report(report: dict[str, Any]) -> str:
    """A terminal table of the demo report."""
    names = list(report["trained"]) + list(report["exact_weights_on_each_backend"])
    width = max(len(name) for name in names) + 2
    lines = [f"{'trained on':<{width}}test acc   val F1   train s", "-" * (width + 28)]
    for backend, row in report["trained"].items():
        lines.append(f"{backend:<{width}}{row['test_accuracy']:>8.3f}{row['val_macro_f1']:>9.3f}{row['train_seconds']:>10.1f}")
    if report["exact_weights_on_each_backend"]:
        lines += ["", f"{'exact weights run on':<{width}}test acc   max |Δ readout| vs exact", "-" * (width + 37)]
        for backend, row in report["exact_weights_on_each_backend"].items():
            lines.append(f"{backend:<{width}}{row['test_accuracy']:>8.3f}{row['max_abs_readout_diff_vs_exact']:>12.4f}")
    return "\n".join(lines)
