"""QSVC baseline: learns a separable toy problem; subsampling and settings are checked."""

from __future__ import annotations

import numpy as np
import pytest

from finetune.quantum.kernel import QSVCBaseline, QSVCConfig, subsample_per_class


def _blobs(n: int = 60, dim: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = 3 * rng.normal(size=(3, dim))
    labels = rng.integers(0, 3, n)
    return centres[labels] + 0.3 * rng.normal(size=(n, dim)), labels


def test_qsvc_separates_well_separated_classes():
    x, y = _blobs()
    model = QSVCBaseline(QSVCConfig(n_qubits=3, reps=1, per_class=12)).fit(x, y)
    assert model.train_size == 36
    test_x, test_y = _blobs(30, seed=0)
    assert (model.predict(test_x) == test_y).mean() >= 0.9
    assert model.fit_seconds > 0


def test_subsample_keeps_at_most_per_class_rows_of_each_label():
    labels = np.array([0] * 10 + [1] * 3)
    rows = subsample_per_class(labels, 4, seed=1)
    assert np.bincount(labels[rows]).tolist() == [4, 3]
    assert rows.tolist() == sorted(rows.tolist())
    assert len(subsample_per_class(labels, None, seed=1)) == 13


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n_qubits": 0}, "n_qubits"), ({"reps": 0}, "reps"), ({"per_class": 0}, "per_class"), ({"C": 0.0}, "C must be")],
)
def test_bad_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        QSVCConfig(**kwargs)


def test_predict_before_fit_and_single_class_are_errors():
    with pytest.raises(RuntimeError, match="call fit"):
        QSVCBaseline().predict(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="two classes"):
        QSVCBaseline().fit(np.zeros((4, 4)), np.zeros(4))
