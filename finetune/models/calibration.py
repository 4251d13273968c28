"""Calibration of a classifier per backend: a temperature for its logits and an abstention threshold.

Device noise leaves a hybrid head's argmax mostly where it was but flattens its softmax (see
BENCHMARKS.md, "Hardware noise"), so confidences and the out-of-scope threshold chosen on the
exact simulator no longer mean what they did. ``agent finetune calibrate`` fits, for one backend,
a temperature ``T`` (probabilities become ``softmax(logits / T)``, which never changes the argmax)
and re-chooses the threshold on those probabilities, and stores both in the checkpoint's
``calibration.json``, keyed by the normalised backend spec (:func:`backend_key`)::

    {"format": "qagent-calibration/1",
     "backends": {"aer:noise=fake_sherbrooke,shots=1024": {"temperature": 0.31, "threshold": 0.0, …}}}

A loaded classifier applies the entry of the backend its head runs on, and nothing elsewhere:
the exact backend uses none unless one was fitted for it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from finetune.models.files import CALIBRATION, MANIFEST, CheckpointError, read_json, write_json

FORMAT = "qagent-calibration/1"
# Options of a spec that do not change what a circuit returns on average, so one fit serves them all.
_IGNORED = ("kind", "device", "seed")


def backend_key(backend: str) -> str:
    """The normalised form of a backend spec: lower-case kind, device, then the options that
    differ from their defaults in name order, the seed left out (it picks one sample of the same
    noise). ``"aer:shots=1024, noise=fake_sherbrooke,seed=7"`` → ``"aer:noise=fake_sherbrooke,shots=1024"``.

    Raises:
        finetune.quantum.device.BackendConfigError: The spec is not a valid backend (one line).
    """
    if isinstance(backend, str) and backend.strip().lower() == "exact":
        return "exact"  # no qiskit import on the common path
    from finetune.quantum.device import parse_backend

    spec = parse_backend(backend)
    from finetune.quantum.device import format_scales

    def spell(value: Any) -> str:
        return format_scales(value) if isinstance(value, tuple) else str(value)

    options = sorted(f"{f.name}={spell(getattr(spec, f.name))}" for f in fields(spec)
                     if f.name not in _IGNORED and getattr(spec, f.name) != f.default)
    head = spec.kind + (f":{spec.device}" if spec.device else "")
    if not options:
        return head
    return head + ("," if spec.device else ":") + ",".join(options)


@dataclass(frozen=True)
class Calibration:
    """One backend's calibration.

    Args:
        backend: Normalised backend spec (:func:`backend_key`).
        temperature: Logits are divided by it before the softmax (> 1 softens, < 1 sharpens).
        threshold: Abstention threshold on the calibrated probabilities; None keeps the model's.
        clarify_margin: The router's clarify margin (gap between the two most likely intents below
            which it asks "this or that?") chosen again on the calibrated probabilities by the rule
            of ``eval/router_thresholds.py``; None keeps the router's own (intents models only).
        n: In-scope examples the temperature was fitted on; ``n_oos`` out-of-scope ones beside them.
        data: Data set and split of the fit (``banking77 validation``).
        date: Day of the fit (ISO).
        ece_before: ECE of the in-scope fit examples with T = 1; ``ece_after`` with the fitted T.
        accuracy: Argmax accuracy of the in-scope fit examples (the temperature does not change it;
            with adapted output layers, theirs).
        head_weights: File in the model folder holding the head's output layers retrained for this
            backend's noise (:mod:`finetune.models.noise_adapt`); None keeps the checkpoint's.
        noise: The fitted noise model those layers were retrained under (gain and effective shots
            per circuit).
        adapted_on: Training queries the output layers were retrained on.
        accuracy_before: Argmax accuracy of the in-scope fit examples with the checkpoint's own
            output layers (only with ``head_weights``).
    """

    backend: str
    temperature: float
    threshold: float | None = None
    clarify_margin: float | None = None
    n: int = 0
    n_oos: int = 0
    data: str = ""
    date: str = ""
    ece_before: float | None = None
    ece_after: float | None = None
    accuracy: float | None = None
    head_weights: str | None = None
    noise: dict[str, Any] | None = None
    adapted_on: int = 0
    accuracy_before: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.temperature, (int, float)) or not math.isfinite(self.temperature) \
                or self.temperature <= 0:
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {self.threshold!r}")
        if self.clarify_margin is not None and not 0.0 <= self.clarify_margin <= 1.0:
            raise ValueError(f"clarify_margin must lie in [0, 1], got {self.clarify_margin!r}")
        if self.head_weights is not None and (not isinstance(self.head_weights, str)
                                              or Path(self.head_weights).name != self.head_weights):
            raise ValueError(f"head_weights must be a file name in the model folder, got {self.head_weights!r}")

    def describe(self) -> str:
        """One line for logs and the CLI: which calibration is in use and what it sets."""
        parts = [f"temperature {self.temperature:.3f}"]
        if self.threshold is not None:
            parts.append(f"out-of-scope threshold {self.threshold:g}")
        if self.clarify_margin is not None:
            parts.append(f"clarify margin {self.clarify_margin:g}")
        if self.head_weights:
            parts.append(f"output layers retrained for its noise on {self.adapted_on} training queries")
        fitted = f"; fitted {self.date} on {self.n} {self.data} queries" if self.data else ""
        return f"using calibration for {self.backend}: {', '.join(parts)}{fitted}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, backend: str, data: dict[str, Any]) -> Calibration:
        known = {f.name for f in fields(cls)} - {"backend"}
        return cls(backend=backend, **{k: v for k, v in data.items() if k in known})


def parse_calibrations(raw: dict[str, Any], source: Path | str = CALIBRATION) -> dict[str, Calibration]:
    """The entries of a ``calibration.json`` as read (``{}`` for an empty file), by backend key."""
    if not raw:
        return {}
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("backends"), dict):
        raise CheckpointError(f"{source}: not a {FORMAT} file; run agent finetune calibrate again")
    try:
        # Keys are normalised again on reading, so a hand-written spelling of a spec still matches.
        entries = [Calibration.from_dict(backend_key(key), entry) for key, entry in raw["backends"].items()]
        return {entry.backend: entry for entry in entries}
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: invalid calibration entry ({exc}); run agent finetune calibrate again") from None


def missing_calibration(model: Any, backend: str | None) -> str:
    """One line when ``model`` (a classifier, or an ensemble of them) has no calibration for
    ``backend``: its confidences and threshold are then the exact backend's. Empty on the exact
    backend, or when the model (any member) has one for it."""
    if backend is None or backend_key(backend) == "exact":
        return ""
    key = backend_key(backend)
    models = getattr(model, "members", None) or [model]
    if any(key in (getattr(m, "calibrations", None) or {}) for m in models):
        return ""
    return (f"no calibration for {backend} in this model: confidences and the out-of-scope threshold are the "
            f"exact backend's; fit one with agent finetune calibrate MODEL --backend {backend} --out DIR")


def read_calibrations(directory: str | Path) -> dict[str, Calibration]:
    """The calibrations stored in a model directory (``{}`` without ``calibration.json``)."""
    path = Path(directory) / CALIBRATION
    return parse_calibrations(read_json(path), path) if path.is_file() else {}


def write_calibration(directory: str | Path, calibration: Calibration, head_weights: dict[str, Any] | None = None) -> Path:
    """Add (or replace) one backend's entry in ``directory``'s ``calibration.json`` and record the
    checksums again, so the model still passes its integrity check; returns the file's path.

    ``head_weights`` (output layers retrained for the backend, :mod:`finetune.models.noise_adapt`)
    are written beside it and named in the entry; an entry replaced without them drops the file the
    old one named.
    """
    from dataclasses import replace

    from finetune.models.integrity import record_checksums, verify_checksums

    path = Path(directory)
    verify_checksums(path)  # never re-record over a corrupted folder
    entries = read_calibrations(path)
    old = entries.get(calibration.backend)
    if head_weights is not None:
        from finetune.models.noise_adapt import save_weights

        calibration = replace(calibration, head_weights=save_weights(path, calibration.backend, head_weights))
    elif calibration.head_weights is not None and not (path / calibration.head_weights).is_file():
        raise CheckpointError(f"{path / calibration.head_weights}: the adapted head weights the entry names are missing")
    entries[calibration.backend] = calibration
    file = path / CALIBRATION
    write_json(file, {"format": FORMAT, "backends": {key: {k: v for k, v in entry.to_dict().items() if k != "backend"}
                                                     for key, entry in sorted(entries.items())}})
    if old is not None and old.head_weights and old.head_weights != calibration.head_weights:
        (path / old.head_weights).unlink(missing_ok=True)
    if (path / MANIFEST).is_file():
        record_checksums(path)
    return file
