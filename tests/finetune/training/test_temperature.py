"""Temperature scaling: fitted on synthetic over- and under-confident logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.metrics import expected_calibration_error
from finetune.training.temperature import fit_temperature, nll


def _synthetic(scale: float, n: int = 2000, classes: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of a calibrated model (labels drawn from softmax(z)), multiplied by ``scale``:
    > 1 makes it over-confident, < 1 under-confident; the right temperature is ``scale``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, size=(n, classes))
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    targets = np.array([rng.choice(classes, p=row) for row in p])
    return torch.tensor(z * scale), torch.tensor(targets)


def _ece(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> float:
    probs = torch.softmax(logits / temperature, -1).numpy()
    return expected_calibration_error(probs, probs.argmax(-1) == targets.numpy())


@pytest.mark.parametrize("scale", [3.0, 0.3])
def test_fitted_temperature_undoes_over_and_under_confidence(scale):
    logits, targets = _synthetic(scale)
    temperature = fit_temperature(logits, targets)
    assert temperature == pytest.approx(scale, rel=0.15)
    assert _ece(logits, targets, temperature) < 0.5 * _ece(logits, targets, 1.0)
    assert _ece(logits, targets, temperature) < 0.04
    assert nll(logits, targets, temperature) < nll(logits, targets)


def test_a_calibrated_model_keeps_a_temperature_near_one():
    logits, targets = _synthetic(1.0)
    assert fit_temperature(logits, targets) == pytest.approx(1.0, abs=0.15)


def test_the_argmax_never_moves():
    logits, targets = _synthetic(3.0, n=200)
    temperature = fit_temperature(logits, targets)
    assert torch.equal((logits / temperature).argmax(-1), logits.argmax(-1))


def test_empty_or_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="logits"):
        fit_temperature(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="logits"):
        fit_temperature(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))
