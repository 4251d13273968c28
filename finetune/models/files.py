"""What a model folder holds, by file name, and how its JSON files are read and written.

The bottom of ``finetune.models``: checkpoints (:mod:`finetune.models.checkpoint`), ensembles,
decoding priors and checksums (:mod:`finetune.models.integrity`) all name their files from here,
so none of them has to import another to know the layout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

CONFIG, LABELS, WEIGHTS, METRICS, ADAPTER = (
    "config.json",
    "labels.json",
    "head.safetensors",
    "metrics.json",
    "adapter",
)
ENSEMBLE = "ensemble.json"  # marks a folder of several checkpoints (finetune.models.ensemble), not one


class CheckpointError(RuntimeError):
    """A checkpoint directory is missing, incomplete or inconsistent."""
DECODING = "decoding.json"  # a tagger's tag-transition prior (finetune.models.tag_transitions)
MANIFEST = "checksums.json"  # the sha256 of every other file (finetune.models.integrity)
CALIBRATION = "calibration.json"  # temperature and threshold per backend (finetune.models.calibration)
LEXICAL, LEXICAL_WEIGHTS = "lexical.json", "lexical.safetensors"  # a word n-gram part (finetune.models.lexical)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: a crash leaves the old file or the new one, never half of one."""
    from finetune.strict_json import dumps

    text = dumps(data, indent=2, ensure_ascii=False) + "\n"  # NaN/Infinity become null: strict JSON
    write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a file beside ``path``, then rename it over ``path``; on any error the
    old file stays as it was and the temporary file is removed."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
