"""calibration.json: the backend key, the round trip, checksums, and applying it only on its backend."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from finetune.data.loaders import OUT_OF_SCOPE
from finetune.models.calibration import Calibration, backend_key, read_calibrations, write_calibration
from finetune.models.checkpoint import CheckpointError, save_checkpoint
from finetune.models.classifier import TextClassifier
from finetune.models.heads import Head, HeadConfig
from finetune.models.integrity import verify_checksums
from finetune.quantum.ansatz import AnsatzConfig
from finetune.quantum.device import BackendConfigError

LABELS = ["balance", "card_lost", OUT_OF_SCOPE]
NOISY = "aer:noise=fake_sherbrooke,shots=1024"


@pytest.fixture()
def model(tmp_path):
    torch.manual_seed(0)
    config = HeadConfig(kind="hybrid", in_features=8, n_classes=3, n_circuits=1,
                        ansatz=AnsatzConfig(n_qubits=2, depth=1, encoding="angle"))
    return save_checkpoint(tmp_path / "model", task="intents", head=Head(config), labels=LABELS,
                           encoder={}, settings={"threshold": 0.2})


def _entry(backend: str = NOISY, temperature: float = 0.5, threshold: float | None = 0.4,
           clarify_margin: float | None = 0.12) -> Calibration:
    return Calibration(backend=backend_key(backend), temperature=temperature, threshold=threshold,
                       clarify_margin=clarify_margin, n=200,
                       n_oos=100, data="banking77 validation", date="2026-12-06", ece_before=0.56,
                       ece_after=0.05, accuracy=0.97)


@pytest.mark.parametrize(("spec", "key"), [
    ("exact", "exact"),
    (" EXACT ", "exact"),
    ("aer", "aer"),
    ("aer:shots=1024,noise=fake_sherbrooke", NOISY),
    ("aer:noise=fake_sherbrooke, shots=1024,seed=7", NOISY),
    ("ibm:fake_sherbrooke,shots=2048", "ibm:fake_sherbrooke,shots=2048"),
])
def test_backend_key_normalises_the_spec(spec, key):
    assert backend_key(spec) == key


def test_a_bad_backend_is_one_line():
    with pytest.raises(BackendConfigError, match="valid backends") as info:
        backend_key("aer:colour=red")
    assert "\n" not in str(info.value)


def test_calibration_round_trips_and_checksums_still_verify(model):
    write_calibration(model, _entry())
    write_calibration(model, _entry("exact", temperature=1.2, threshold=None))
    found = read_calibrations(model)
    assert found == {NOISY: _entry(), "exact": _entry("exact", temperature=1.2, threshold=None)}
    raw = json.loads((model / "calibration.json").read_text())
    assert raw["backends"][NOISY]["temperature"] == 0.5 and raw["backends"][NOISY]["date"] == "2026-12-06"
    assert raw["backends"][NOISY]["clarify_margin"] == 0.12
    assert verify_checksums(model) is not None
    assert "calibration.json" in json.loads((model / "checksums.json").read_text())["sha256"]


def test_an_edited_calibration_fails_the_integrity_check(model):
    write_calibration(model, _entry())
    path = model / "calibration.json"
    path.write_text(path.read_text().replace('"temperature": 0.5', '"temperature": 5.0'))
    with pytest.raises(CheckpointError, match="calibration.json does not match its checksum"):
        TextClassifier.load(model)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_a_temperature_must_be_positive(temperature):
    with pytest.raises(ValueError, match="temperature"):
        _entry(temperature=temperature)


@pytest.mark.parametrize("margin", [-0.1, 1.5])
def test_a_clarify_margin_must_be_a_probability_gap(margin):
    with pytest.raises(ValueError, match="clarify_margin"):
        _entry(clarify_margin=margin)


def test_the_entry_says_what_it_sets():
    line = _entry().describe()
    assert line.startswith(f"using calibration for {NOISY}: temperature 0.500")
    assert "out-of-scope threshold 0.4" in line and "clarify margin 0.12" in line and "200 banking77 validation" in line


def test_applied_only_on_its_backend(model, caplog):
    write_calibration(model, _entry())
    features = torch.randn(5, 8)
    classifier = TextClassifier.load(model)
    assert classifier.calibration is None and classifier.threshold == 0.2
    raw_logits = classifier.logits(features)
    np.testing.assert_allclose(classifier.probabilities(features), torch.softmax(raw_logits, -1).numpy(), atol=1e-6)

    with caplog.at_level(logging.INFO, logger="finetune.models.classifier"):
        classifier.set_backend(NOISY + ",seed=9")  # another seed of the same noise: the same entry
    assert classifier.calibration == _entry() and classifier.threshold == 0.4
    assert f"calibration for {NOISY}: temperature 0.500" in caplog.text

    classifier.set_backend("aer:noise=fake_sherbrooke,shots=4096")  # other shots: no entry
    assert classifier.calibration is None and classifier.threshold == 0.2
    classifier.set_backend("exact")
    assert classifier.calibration is None and classifier.threshold == 0.2


def test_the_temperature_divides_the_logits(model):
    write_calibration(model, _entry("exact", temperature=0.25, threshold=None))
    classifier = TextClassifier.load(model)
    features = torch.randn(4, 8)
    expected = torch.softmax(classifier.logits(features) / 0.25, -1).numpy()
    np.testing.assert_allclose(classifier.probabilities(features), expected, atol=1e-6)
    assert classifier.threshold == 0.2  # no threshold in the entry: the model's own


def test_a_broken_calibration_file_is_one_line(model):
    (model / "calibration.json").write_text(json.dumps({"format": "other"}))
    (model / "checksums.json").unlink()
    with pytest.raises(CheckpointError, match="not a qagent-calibration/1 file"):
        TextClassifier.load(model)
