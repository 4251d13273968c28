"""Output layers retrained for a backend's noise: the noise model, the retraining, storage and use."""

from __future__ import annotations

import pytest
import torch

from finetune.models.heads import Head, HeadConfig
from finetune.models.noise_adapt import (
    AdaptConfig,
    NoiseModel,
    adapt_output_layers,
    adapted_logits,
    fit_noise_model,
    load_output_layers,
    output_layers,
    read_weights,
    weights_file,
)
from finetune.quantum.ansatz import AnsatzConfig


def _head(kind: str = "hybrid", readout: str = "probs", classes: int = 4) -> Head:
    ansatz = AnsatzConfig(n_qubits=2, depth=1, encoding="amplitude", readout=readout)
    return Head(HeadConfig(kind=kind, in_features=8, n_classes=classes, ansatz=ansatz, n_circuits=2))


def _distributions(rows: int, circuits: int, k: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    p = torch.rand(rows, circuits, k, generator=generator) ** 3
    return (p / p.sum(-1, keepdim=True)).reshape(rows, circuits * k)


def test_the_fit_recovers_the_gain_and_shots_it_was_drawn_with():
    head = _head()
    truth = NoiseModel(readout="probs", outputs=4, scale=4.0, gain=(0.3, 0.7), shots=(400.0, 1500.0))
    exact = 4.0 * _distributions(4000, 2, 4)
    noisy = truth.sample(exact, torch.Generator().manual_seed(1))
    fitted = fit_noise_model(head, exact, noisy)
    assert fitted.readout == "probs" and fitted.outputs == 4 and fitted.scale == 4.0
    assert fitted.gain == pytest.approx(truth.gain, abs=0.02)
    assert fitted.shots == pytest.approx(truth.shots, rel=0.1)


def test_the_fit_reads_z_readouts_too():
    head = _head(readout="z")
    truth = NoiseModel(readout="z", outputs=2, scale=1.0, gain=(0.5, 0.9), shots=(1000.0, 1000.0))
    exact = torch.empty(4000, 4).uniform_(-1, 1, generator=torch.Generator().manual_seed(0))
    fitted = fit_noise_model(head, exact, truth.sample(exact, torch.Generator().manual_seed(2)))
    assert fitted.gain == pytest.approx(truth.gain, abs=0.02)
    assert fitted.shots == pytest.approx(truth.shots, rel=0.15)


def test_a_noiseless_backend_reads_as_a_gain_of_one_and_many_shots():
    exact = 4.0 * _distributions(50, 2, 4)
    fitted = fit_noise_model(_head(), exact, exact.clone())
    assert fitted.gain == pytest.approx((1.0, 1.0)) and min(fitted.shots) >= 1e5


def test_a_head_without_circuits_or_mismatched_readouts_is_refused():
    with pytest.raises(ValueError, match="no circuits"):
        fit_noise_model(_head(kind="linear"), torch.ones(3, 8), torch.ones(3, 8))
    with pytest.raises(ValueError, match="same"):
        fit_noise_model(_head(), torch.ones(3, 8), torch.ones(4, 8))
    with pytest.raises(ValueError, match="gain and shots"):
        NoiseModel(readout="probs", outputs=4, scale=4.0, gain=(0.5,), shots=(1.0, 2.0))
    with pytest.raises(ValueError, match="epochs"):
        AdaptConfig(epochs=0)


def test_retraining_moves_the_decision_to_what_survives_the_noise():
    """The head's circuits carry the label on the exact simulator, its linear path nothing; on a
    backend that keeps 2 % of the signal the head is at chance, and the retrained layers read the
    label from the features the linear path sees instead."""
    torch.manual_seed(0)
    head = _head()
    n, classes = 800, 4
    labels = torch.arange(n) % classes
    features = torch.randn(n, 8) + 3.0 * torch.nn.functional.one_hot(labels, 8).float()
    readouts = torch.zeros(n, 2, 4)
    readouts[torch.arange(n), 0, labels] = 1.0
    readouts[:, 1] = 0.25
    readouts = 4.0 * readouts.reshape(n, 8)
    with torch.no_grad():  # the checkpoint's layers: the circuits decide, the linear path is silent
        head.linear.weight.zero_()
        head.linear.bias.zero_()
        head.quantum_out.weight.zero_()
        head.quantum_out.bias.zero_()
        head.quantum_out.weight[torch.arange(classes), torch.arange(classes)] = 5.0
    own = output_layers(head)
    noise = NoiseModel(readout="probs", outputs=4, scale=4.0, gain=(0.02, 0.02), shots=(200.0, 200.0))
    train, test = slice(0, 600), slice(600, n)
    noisy_test = noise.sample(readouts[test], torch.Generator().manual_seed(5))

    def accuracy(weights):
        return float((adapted_logits(head, weights, features[test], noisy_test).argmax(-1) == labels[test]).float().mean())

    before = accuracy(own)
    adapted = adapt_output_layers(head, features[train], readouts[train], labels[train], noise,
                                  AdaptConfig(epochs=20, lr=0.01))
    after = accuracy(adapted)
    assert before < 0.45 and after > 0.9, (before, after)
    assert all(torch.equal(v, own[k]) for k, v in output_layers(head).items())  # the head itself is untouched
    load_output_layers(head, adapted)
    assert all(torch.equal(v, adapted[k]) for k, v in output_layers(head).items())
    with pytest.raises(ValueError, match="shape"):
        load_output_layers(head, {**adapted, "linear.bias": torch.zeros(3)})


def test_a_broken_or_misnamed_weights_file_is_a_checkpoint_error(tmp_path):
    from finetune.models.files import CheckpointError

    name = weights_file("aer:shots=64")
    assert name.startswith("calibration-") and name.endswith(".safetensors")
    with pytest.raises(CheckpointError, match="missing"):
        read_weights(tmp_path, name)
    (tmp_path / name).write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        read_weights(tmp_path, name)
    with pytest.raises(CheckpointError, match="missing"):
        read_weights(tmp_path, "../head.safetensors")
