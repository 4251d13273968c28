"""Model directories: safetensors weights and JSON metadata, never pickle.

A checkpoint directory holds::

    config.json       format, task, head config (with the ansatz), encoder config, training
                      settings, the command that made it, task settings (e.g. a threshold)
    labels.json       class names in logit order
    head.safetensors  the head's weights
    metrics.json      evaluation results (optional)
    adapter/          LoRA adapter of the encoder (optional, peft's safetensors format)
    calibration.json  temperature and threshold fitted per backend (optional,
                      finetune.models.calibration)
    checksums.json    sha256 of each file above, checked at load (finetune.models.integrity)

Loading rebuilds the head from ``config.json`` — the same circuit, from the same ansatz
config — and then loads the weights, so a checkpoint cannot silently run a different circuit.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from finetune.models.files import (  # noqa: F401  (the layout, error and JSON helpers, as checkpoint code has always named them)
    ADAPTER,
    CALIBRATION,
    CONFIG,
    ENSEMBLE,
    LABELS,
    METRICS,
    WEIGHTS,
    CheckpointError,
    read_json,
    write_atomic,
    write_json,
)
from finetune.models.heads import Head, HeadConfig

logger = logging.getLogger(__name__)

FORMAT = "qagent-checkpoint/1"


@dataclass
class Checkpoint:
    """A loaded model directory."""

    path: Path
    task: str
    head: Head
    labels: list[str]
    encoder: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)  # calibration.json as read

    @property
    def adapter_dir(self) -> Path | None:
        path = self.path / ADAPTER
        return path if path.is_dir() else None


def save_checkpoint(
    directory: str | Path,
    *,
    task: str,
    head: Head,
    labels: list[str],
    encoder: dict[str, Any],
    training: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    command: str | None = None,
) -> Path:
    """Write a checkpoint directory (created if needed) and return its path."""
    from safetensors.torch import save_file

    if len(labels) != head.config.n_classes:
        raise CheckpointError(f"{len(labels)} labels for a head with {head.config.n_classes} classes")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in head.state_dict().items()}
    write_atomic(path / WEIGHTS, lambda tmp: save_file(state, str(tmp), metadata={"format": FORMAT}))
    config = {
        "format": FORMAT,
        "task": task,
        "head": head.config.to_dict(),
        "encoder": encoder,
        "training": training or {},
        "settings": settings or {},
        "command": command,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
    }
    write_json(path / CONFIG, config)
    write_json(path / LABELS, list(labels))
    from finetune.models.lexical import remove_lexical

    if remove_lexical(path):  # its weight and temperature were chosen for the head just replaced
        logger.warning("%s: the word n-gram part of the model saved here before was removed; "
                       "fit one for the new head with: agent finetune lexical %s", path, path)
    if metrics is not None:
        write_json(path / METRICS, metrics)
    from finetune.models.integrity import record_checksums

    record_checksums(path)  # last, over what was written (the training adds its adapter and records again)
    return path


def load_checkpoint(directory: str | Path, backend: str = "exact", expect_sha256: str | None = None) -> Checkpoint:
    """Load a checkpoint; ``backend`` chooses where the head's circuits run.

    The files are checked against their recorded checksums (``checksums.json``, when the
    checkpoint has one) and the weights must be finite; ``expect_sha256`` pins the digest of
    ``checksums.json`` (see :mod:`finetune.models.integrity`).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from finetune.models.integrity import check_adapter, check_finite, verify_checksums

    path = Path(directory)
    if not path.is_dir():
        raise CheckpointError(f"model directory not found: {path} (train one with 'agent finetune …')")
    if (path / ENSEMBLE).is_file() and not (path / CONFIG).is_file():
        raise CheckpointError(f"{path} is an ensemble of models, not one: load it with "
                              "finetune.models.loading.load_model "
                              "(the CLI commands do)")
    for name in (CONFIG, LABELS, WEIGHTS):
        if not (path / name).is_file():
            raise CheckpointError(f"{path} is not a qagent model: {name} is missing")
    verify_checksums(path, expect_sha256)  # before any file is parsed
    config = read_json(path / CONFIG)
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{path / CONFIG}: unknown format {config.get('format')!r}, expected {FORMAT}")
    labels = read_json(path / LABELS)
    try:
        head_config = HeadConfig.from_dict(config["head"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path / CONFIG}: invalid head config: {exc}") from exc
    if not isinstance(labels, list):
        raise CheckpointError(f"{path / LABELS} must list {head_config.n_classes} class names")
    try:
        state = load_file(str(path / WEIGHTS))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path / WEIGHTS} is unreadable ({exc}); retrain or restore it") from exc
    check_finite(state, path / WEIGHTS)
    head = Head(head_config, backend=backend)
    try:
        head.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        # Weights that fit the labels' class count put the blame on config.json's n_classes.
        if len(labels) != head_config.n_classes and len(labels) >= 2:
            try:
                Head(replace(head_config, n_classes=len(labels)), backend=backend).load_state_dict(state)
            except (RuntimeError, ValueError):
                pass
            else:
                raise CheckpointError(
                    f"{path / CONFIG} says n_classes {head_config.n_classes}, but {WEIGHTS} and {LABELS} hold "
                    f"{len(labels)} classes; restore config.json or retrain") from exc
        raise CheckpointError(f"{path / WEIGHTS} does not match config.json: {first}") from exc
    if len(labels) != head_config.n_classes:  # the weights fit config.json: the labels are wrong
        raise CheckpointError(f"{path / LABELS} must list {head_config.n_classes} class names "
                              f"(config.json and {WEIGHTS} have {head_config.n_classes} classes), not {len(labels)}")
    if (path / ADAPTER).is_dir():
        check_adapter(path)
    head.eval()
    metrics = read_json(path / METRICS) if (path / METRICS).is_file() else {}
    return Checkpoint(
        path=path,
        task=config.get("task", ""),
        head=head,
        labels=labels,
        encoder=config.get("encoder", {}),
        settings=config.get("settings", {}),
        metrics=metrics,
        config=config,
        calibration=read_json(path / CALIBRATION) if (path / CALIBRATION).is_file() else {},
    )





def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("qagent", "torch", "qiskit", "qiskit-aer", "transformers"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found
