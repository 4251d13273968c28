"""QSVC baseline: a quantum-kernel support vector machine on encoder features.

Sentence features (384 numbers) are reduced by PCA to one number per qubit, scaled to angles,
loaded by a ZZ feature map, and compared by state fidelity (qiskit-machine-learning's
``FidelityStatevectorKernel`` inside its ``QSVC``). A kernel matrix grows with the square of the
training set, so the baseline trains on a stratified subsample (``per_class`` examples per class).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class QSVCConfig:
    """Shape of the QSVC baseline.

    Args:
        n_qubits: PCA components, one per qubit of the feature map.
        reps: Repetitions of the ZZ feature map.
        entanglement: Feature-map entanglement (``linear``, ``full``, ``circular``).
        per_class: Training examples kept per class (None keeps all).
        C: SVM regularisation.
        seed: Seed of the subsample.
    """

    n_qubits: int = 8
    reps: int = 2
    entanglement: str = "linear"
    per_class: int | None = 20
    C: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.n_qubits <= 20:
            raise ValueError(f"n_qubits must be between 1 and 20 for statevector kernels, got {self.n_qubits}")
        if self.reps < 1:
            raise ValueError(f"reps must be >= 1, got {self.reps}")
        if self.per_class is not None and self.per_class < 1:
            raise ValueError(f"per_class must be >= 1 or None, got {self.per_class}")
        if self.C <= 0:
            raise ValueError(f"C must be > 0, got {self.C}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class QSVCBaseline:
    """PCA → angle scaling → ZZ feature map → fidelity kernel → SVM."""

    def __init__(self, config: QSVCConfig | None = None) -> None:
        self.config = config or QSVCConfig()
        self.train_size = 0
        self.fit_seconds = 0.0
        self._pca = None
        self._scale = None
        self._svc = None

    def fit(self, features: np.ndarray, labels: np.ndarray) -> QSVCBaseline:
        """Fit on (a per-class subsample of) ``features [N, D]`` with integer ``labels [N]``."""
        from qiskit_machine_learning.algorithms import QSVC
        from qiskit_machine_learning.kernels import FidelityStatevectorKernel
        from sklearn.decomposition import PCA

        features, labels = np.asarray(features, dtype=float), np.asarray(labels)
        if features.ndim != 2 or len(features) != len(labels):
            raise ValueError(f"features must be [N, D] with N labels; got {features.shape} and {labels.shape}")
        if len(np.unique(labels)) < 2:
            raise ValueError("QSVC needs at least two classes")
        start = time.perf_counter()
        rows = subsample_per_class(labels, self.config.per_class, self.config.seed)
        x, y = features[rows], labels[rows]
        if self.config.n_qubits > min(x.shape):
            raise ValueError(f"n_qubits={self.config.n_qubits} exceeds the {min(x.shape)} PCA components available")
        self._pca = PCA(n_components=self.config.n_qubits, random_state=self.config.seed).fit(x)
        reduced = self._pca.transform(x)
        # Map each component to about [-π/2, π/2] (3 standard deviations): wider angles make
        # the ZZ kernel nearly diagonal (every pair of points looks orthogonal).
        self._scale = (np.pi / 2) / (3 * reduced.std(axis=0) + 1e-12)
        kernel = FidelityStatevectorKernel(feature_map=_feature_map(self.config))
        self._svc = QSVC(quantum_kernel=kernel, C=self.config.C)
        self._svc.fit(self._angles(reduced), y)
        self.train_size = len(rows)
        self.fit_seconds = time.perf_counter() - start
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Integer labels for ``features [N, D]``."""
        if self._svc is None:
            raise RuntimeError("call fit before predict")
        return self._svc.predict(self._angles(self._pca.transform(np.asarray(features, dtype=float))))

    def _angles(self, reduced: np.ndarray) -> np.ndarray:
        return np.clip(reduced * self._scale, -np.pi, np.pi)


def subsample_per_class(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Sorted row indices keeping at most ``per_class`` rows of each label (seeded)."""
    labels = np.asarray(labels)
    if per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        keep.append(rows if len(rows) <= per_class else rng.choice(rows, size=per_class, replace=False))
    return np.sort(np.concatenate(keep))


def _feature_map(config: QSVCConfig):
    from qiskit.circuit.library import zz_feature_map

    return zz_feature_map(config.n_qubits, reps=config.reps, entanglement=config.entanglement)
