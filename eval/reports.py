"""Evaluation artefacts: JSON reports and PNG plots written side by side.

Plots use matplotlib's Agg backend (files only, no display), imported inside each function so
importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from finetune.models.checkpoint import write_json


def write_report(directory: str | Path, name: str, report: Mapping[str, Any]) -> Path:
    """Write ``<directory>/<name>.json`` atomically and return its path."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    target = path / f"{name}.json"
    write_json(target, _plain(report))
    return target


def plot_training_curves(history: Sequence[Mapping[str, float]], path: str | Path, title: str = "") -> Path:
    """Loss and validation score per epoch (one line per available key)."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_score) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key in ("train_loss", "val_loss"):
        if history and key in history[0]:
            ax_loss.plot(epochs, [row[key] for row in history], marker="o", ms=3, label=key)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    if history and "val_score" in history[0]:
        ax_score.plot(epochs, [row["val_score"] for row in history], marker="o", ms=3, color="tab:green")
    ax_score.set_xlabel("epoch")
    ax_score.set_ylabel("validation score")
    fig.suptitle(title or "training curves")
    return _save(fig, path)


def plot_confusion_matrix(
    matrix: np.ndarray, labels: Sequence[str], path: str | Path, title: str = "", normalize: bool = True
) -> Path:
    """Confusion matrix heat map (rows: true, columns: predicted); row-normalised by default."""
    plt = _pyplot()
    values = np.asarray(matrix, dtype=float)
    if normalize:
        values = values / np.maximum(values.sum(axis=1, keepdims=True), 1)
    size = max(5.0, min(24.0, 0.25 * len(labels) + 3))
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(len(labels))
    font = 9 if len(labels) <= 20 else 5
    ax.set_xticks(ticks, labels, rotation=90, fontsize=font)
    ax.set_yticks(ticks, labels, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) <= 12:
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if values[i, j] > 0.5 else "black")
    ax.set_title(title or "confusion matrix")
    return _save(fig, path)


def plot_bars(values: Mapping[str, float], path: str | Path, ylabel: str, title: str = "") -> Path:
    """A labelled bar chart (e.g. accuracy per backend)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(values) + 2), 3.5))
    bars = ax.bar(list(values), list(values.values()), color="tab:blue")
    ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=20)
    return _save(fig, path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return target


def _plain(value: Any) -> Any:
    """Make numpy values JSON-friendly, recursively."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value
