"""One loader for every model folder: a classifier or tagger checkpoint, or an ensemble of either.

A folder says what it holds (``config.json``'s task, or ``ensemble.json``), so callers name a path
and get the right model back; :func:`load_classifier` and :func:`load_tagger` also check the kind.

Usage::

    model = load_model("runs/intents-q")                              # whatever the folder holds
    sentiment = load_classifier(path, task="sentiment", encoder=encoder)
    tagger = load_tagger(path, encoder=encoder)                       # a checkpoint or an ensemble folder
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from finetune.models.checkpoint import CheckpointError, load_checkpoint, read_json
from finetune.models.classifier import TASKS, TextClassifier
from finetune.models.encoder import Encoder
from finetune.models.ensemble import ClassifierEnsemble, is_ensemble, read_record
from finetune.models.files import CONFIG, ENSEMBLE
from finetune.models.integrity import ensemble_members, manifest_digest, record_checksums, verify_checksums
from finetune.models.tagger import TASK as TAGGER_TASK
from finetune.models.tagger import EntityTagger
from finetune.models.tagger_ensemble import TaggerEnsemble

Classifier = Union[TextClassifier, ClassifierEnsemble]
Tagger = Union[EntityTagger, TaggerEnsemble]


def model_task(model_dir: str | Path) -> str:
    """The task a model folder holds (``intents``, ``sentiment``, ``ner``…), read without loading it."""
    path = Path(model_dir)
    if is_ensemble(path):
        return read_record(path).task
    config = path / "config.json"
    if not config.is_file():
        raise CheckpointError(f"model directory not found or incomplete: {path} (train one with 'agent finetune …')")
    return str(read_json(config).get("task", ""))


def load_model(model_dir: str | Path, *, encoder: Encoder | None = None, backend: str = "exact") -> Classifier | Tagger:
    """Load whatever ``model_dir`` holds: a classifier, a tagger, or an ensemble of either."""
    if model_task(model_dir) == TAGGER_TASK:
        return load_tagger(model_dir, encoder=encoder, backend=backend)
    return load_classifier(model_dir, encoder=encoder, backend=backend)


def load_classifier(model_dir: str | Path, *, task: str | None = None, encoder: Encoder | None = None,
                    backend: str = "exact") -> Classifier:
    """Load a classifier checkpoint or a classifier ensemble folder.

    Args:
        model_dir: The folder (``agent finetune intents|sentiment`` or ``agent finetune ensemble``).
        task: When given, the folder must hold a model of this task.
        encoder: A loaded plain encoder to share (copied, never changed, by models with an adapter).
        backend: Where the heads' circuits run.
    """
    path = Path(model_dir)
    model: Classifier
    if is_ensemble(path):
        model = ClassifierEnsemble.load(path, encoder=encoder, backend=backend)
    else:
        model = TextClassifier.load(path, encoder=encoder, backend=backend)
    if model.task not in TASKS:
        raise CheckpointError(f"{path} holds a {model.task!r} model, not a text classifier")
    if task is not None and model.task != task:
        raise CheckpointError(f"{path} holds a {model.task!r} model, expected {task!r}")
    return model


def load_tagger(model_dir: str | Path, *, encoder: Encoder | None = None, backend: str = "exact") -> Tagger:
    """Load an entity tagger checkpoint or a tagger ensemble folder."""
    if is_ensemble(model_dir):
        return TaggerEnsemble.load(model_dir, encoder=encoder, backend=backend)
    return EntityTagger.load(model_dir, encoder=encoder, backend=backend)


def record_model(directory: str | Path) -> str:
    """Record the checksums of a checkpoint, or of an ensemble and each of its members, then
    load it back to check it is a usable model (finite weights included); returns the digest.

    What ``agent finetune checksums DIR --record`` runs for a model saved before checksums
    existed, or after a deliberate edit.
    """
    path = Path(directory)
    members = ensemble_members(path) if (path / ENSEMBLE).is_file() and not (path / CONFIG).is_file() else []
    for member in members:
        record_checksums(path / member)
    digest = record_checksums(path)
    verify_model(path)
    return digest


def verify_model(directory: str | Path, expect_sha256: str | None = None) -> str | None:
    """Verify a checkpoint's or ensemble's checksums (every member's too) and load each head, as
    the models' loaders do; returns the digest of ``checksums.json`` (None without one)."""
    path = Path(directory)
    if (path / ENSEMBLE).is_file() and not (path / CONFIG).is_file():
        digest = verify_checksums(path, expect_sha256)
        for member in read_record(path).members:
            load_checkpoint(path / member)
        return digest
    load_checkpoint(path, expect_sha256=expect_sha256)
    return manifest_digest(path)
