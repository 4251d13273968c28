"""Checksums of model directories, and the finiteness of the weights they hold.

A checkpoint (or an ensemble folder) records the sha256 of each of its model files in
``checksums.json`` when it is saved; loading verifies them before a byte is parsed, so a
shuffled ``labels.json`` or a truncated adapter is refused with the file's name instead of
silently serving wrong answers. The checksums detect corruption, not tampering: whoever can edit
a file can recompute its checksum. A deployment that needs more pins the sha256 of
``checksums.json`` itself (:func:`manifest_digest`), one digest covering every file, and passes it
as ``expect_sha256``.

Checkpoints saved before checksums existed have no ``checksums.json`` and load unverified;
``agent finetune checksums DIR --record`` records them (:func:`finetune.models.loading.record_model`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from finetune.models.files import (
    ADAPTER,
    CALIBRATION,
    CONFIG,
    DECODING,
    ENSEMBLE,
    LABELS,
    LEXICAL,
    LEXICAL_WEIGHTS,
    MANIFEST,
    METRICS,
    WEIGHTS,
    CheckpointError,
    write_json,
)

FORMAT = "qagent-checksums/1"
ADAPTER_WEIGHTS = f"{ADAPTER}/adapter_model.safetensors"
ADAPTER_CONFIG = f"{ADAPTER}/adapter_config.json"
# Files whose removal is not corruption: the model runs without them, and the messages of
# finetune.models.tag_transitions advise deleting a broken prior. A pinned digest still wants them all.
OPTIONAL = frozenset({METRICS, DECODING})
_HEX = re.compile(r"[0-9a-f]{64}")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_hex(value: str) -> str:
    """``value`` as a lower-case sha256 hex digest; ValueError naming the option otherwise."""
    text = value.strip().lower()
    if not _HEX.fullmatch(text):
        raise ValueError(f"--expect-sha256 must be 64 hex digits (a sha256), got {value!r}")
    return text


def check_pinned(manifest: Path, expected: str, what: str, fix: str,
                 error: type[Exception] = CheckpointError) -> str:
    """Refuse unless ``manifest`` hashes to ``expected``; returns the digest.

    Args:
        manifest: The file that lists every other file's checksum (``checksums.json``, an index's ``meta.json``).
        expected: The pinned sha256 (hex).
        what: How the error names the directory ("model directory x", "index x").
        fix: What the operator can do, at the end of the one-line error.
        error: The exception to raise (an index raises its own RetrievalError).
    """
    expected = checked_hex(expected)
    if not manifest.is_file():
        raise error(f"{what} has no {manifest.name}, so it cannot match the pinned sha256 {expected[:12]}…; {fix}")
    actual = sha256_file(manifest)
    if actual != expected:
        raise error(f"{what} is not the pinned one: its {manifest.name} hashes to {actual}, "
                    f"--expect-sha256 says {expected}; refusing to start ({fix})")
    return actual


def model_files(directory: str | Path) -> list[str]:
    """The files of a checkpoint or ensemble folder that ``checksums.json`` covers (those present).

    A checkpoint: its JSON files, head weights, prior, word n-gram part and LoRA adapter files. An ensemble: its
    ``ensemble.json`` and prior, and every member's model files (``members/<name>/…``), so one
    manifest covers the whole folder. Anything else there (training state, ONNX exports, logs)
    is left out: it can change without changing the model.
    """
    path = Path(directory)
    if (path / ENSEMBLE).is_file() and not (path / CONFIG).is_file():
        names = [n for n in (ENSEMBLE, DECODING) if (path / n).is_file()]
        for member in ensemble_members(path):
            names += [f"{member}/{name}" for name in model_files(path / member)]
            if (path / member / MANIFEST).is_file():
                names.append(f"{member}/{MANIFEST}")
        return names
    names = [n for n in (CONFIG, LABELS, WEIGHTS, METRICS, DECODING, CALIBRATION, LEXICAL, LEXICAL_WEIGHTS)
             if (path / n).is_file()]
    # Output layers retrained for one backend's noise (finetune.models.noise_adapt), named by calibration.json.
    names += sorted(p.name for p in path.glob("calibration-*.safetensors") if p.is_file())
    if (path / ADAPTER).is_dir():
        names += sorted(f"{ADAPTER}/{p.name}" for p in (path / ADAPTER).iterdir()
                        if p.is_file() and not p.name.startswith("."))
    return names


def record_checksums(directory: str | Path) -> str:
    """Write ``checksums.json`` for the model files now in ``directory``; returns its digest
    (what ``expect_sha256`` pins).

    Only for a directory just written, or one checked by other means: it records whatever is there.
    """
    path = Path(directory)
    if not path.is_dir():
        raise CheckpointError(f"model directory not found: {path}")
    files = model_files(path)
    if not files:
        raise CheckpointError(f"{path} holds no model files (config.json or ensemble.json) to record")
    write_json(path / MANIFEST, {"format": FORMAT, "sha256": {name: sha256_file(path / name) for name in files}})
    return sha256_file(path / MANIFEST)


def refresh_checksums(directory: str | Path) -> None:
    """Record the checksums again after a file of a recorded directory was rewritten on purpose
    (a refitted prior, merged metrics); a directory without checksums stays without."""
    if (Path(directory) / MANIFEST).is_file():
        record_checksums(directory)


def update_checksums(directory: str | Path, names: list[str]) -> None:
    """Record again only ``names`` (relative paths) in a directory's ``checksums.json``: a file
    that is there gets its new sha256, one that is gone leaves the manifest. The other entries stay
    as they were, so a file corrupted meanwhile is still caught. A directory without checksums
    stays without."""
    manifest = Path(directory) / MANIFEST
    if not manifest.is_file():
        return
    try:
        recorded = dict(json.loads(manifest.read_text(encoding="utf-8"))["sha256"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return  # unreadable: verify_checksums reports it when the model is next loaded
    for name in names:
        file = Path(directory) / name
        if file.is_file():
            recorded[name] = sha256_file(file)
        else:
            recorded.pop(name, None)
    write_json(manifest, {"format": FORMAT, "sha256": recorded})


def manifest_digest(directory: str | Path) -> str | None:
    """The sha256 of ``checksums.json`` (one digest covering every model file), None without one."""
    manifest = Path(directory) / MANIFEST
    return sha256_file(manifest) if manifest.is_file() else None


def verify_checksums(directory: str | Path, expect_sha256: str | None = None) -> str | None:
    """Check every recorded file of ``directory`` against ``checksums.json``.

    Args:
        directory: A checkpoint or ensemble folder.
        expect_sha256: A pinned digest of ``checksums.json`` (see :func:`manifest_digest`).

    Returns:
        The manifest's digest, or None for a directory saved before checksums were recorded.

    Raises:
        CheckpointError: A file differs from its checksum, is missing, or is a model file the
            manifest does not list; or the manifest is not the pinned one. One line naming the file.
    """
    path = Path(directory)
    fix = "re-train the model or restore the folder from a good copy"
    digest = None
    if expect_sha256 is not None:
        digest = check_pinned(path / MANIFEST, expect_sha256, f"model directory {path}",
                              f"restore the pinned model, or pin the new digest from: agent finetune checksums {path}")
    manifest = path / MANIFEST
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
        recorded = data["sha256"] if data.get("format") == FORMAT else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError):
        recorded = None
    if not isinstance(recorded, dict):
        raise CheckpointError(f"{manifest} is unreadable: the checkpoint is corrupted; {fix}")
    for name, expected in recorded.items():
        file = path / name
        if not file.is_file():
            if name in OPTIONAL and expect_sha256 is None:
                continue
            raise CheckpointError(f"{file} is missing (recorded in {MANIFEST}): the checkpoint is incomplete; {fix}")
        if sha256_file(file) != expected:
            raise CheckpointError(f"{file} does not match its checksum in {MANIFEST}: the checkpoint is corrupted; {fix}")
    unlisted = [name for name in model_files(path) if name not in recorded]
    if unlisted:
        raise CheckpointError(f"{path / unlisted[0]} is not in {MANIFEST} (added after the checkpoint was saved); "
                              f"{fix}, or record it with: agent finetune checksums {path} --record")
    return digest or sha256_file(manifest)


def check_finite(tensors: Mapping[str, Any], file: Path) -> None:
    """Refuse weights holding NaN or infinity: such a model answers every text with NaN
    probabilities, which look like neither confidence nor doubt."""
    import torch

    for name, tensor in tensors.items():
        if torch.is_floating_point(tensor) and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{file}: tensor {name!r} holds NaN or infinite values; re-train the model "
                                  "or restore the file from a good copy")


def check_adapter(directory: Path) -> None:
    """Read a checkpoint's LoRA adapter weights now (not at the first encoder pass): unreadable
    or non-finite weights are refused with the file's name."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    file = directory / ADAPTER_WEIGHTS
    if not file.is_file():
        raise CheckpointError(f"{file} is missing: the checkpoint's adapter is incomplete; re-train or restore it")
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{file} is unreadable ({str(exc).splitlines()[0][:120]}); re-train or restore it") from None
    check_finite(tensors, file)


def ensemble_members(path: Path) -> list[str]:
    try:
        members = json.loads((path / ENSEMBLE).read_text(encoding="utf-8")).get("members")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return []
    return [m for m in members if isinstance(m, str) and ".." not in Path(m).parts
            and not Path(m).is_absolute()] if isinstance(members, list) else []
