import json

import pytest
import torch
from qiskit import qasm3

from finetune.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from finetune.models.heads import Head, HeadConfig
from finetune.quantum.ansatz import AnsatzConfig

CONFIG = HeadConfig(kind="hybrid", in_features=8, n_classes=3, n_circuits=2,
                    ansatz=AnsatzConfig(n_qubits=2, depth=1, encoding="angle", readout="zz"))


def saved(tmp_path):
    torch.manual_seed(0)
    head = Head(CONFIG)
    with torch.no_grad():
        head.quantum_out.weight.normal_()  # make the quantum branch matter
    path = save_checkpoint(tmp_path / "model", task="intents", head=head, labels=["a", "b", "c"],
                           encoder={"model": "default"}, training={"epochs": 1},
                           settings={"threshold": 0.4}, metrics={"accuracy": 0.5}, command="agent finetune intents")
    return head, path


def test_round_trip_rebuilds_the_same_circuit_and_outputs(tmp_path):
    head, path = saved(tmp_path)
    loaded = load_checkpoint(path)
    x = torch.randn(4, 8)
    head.eval()
    assert torch.allclose(loaded.head(x), head(x), atol=1e-6)
    assert qasm3.dumps(loaded.head.quantum.ansatz.circuit) == qasm3.dumps(head.quantum.ansatz.circuit)
    assert (loaded.task, loaded.labels, loaded.settings, loaded.metrics) == (
        "intents", ["a", "b", "c"], {"threshold": 0.4}, {"accuracy": 0.5})
    assert loaded.config["command"] == "agent finetune intents"


def test_directory_holds_only_safetensors_and_json(tmp_path):
    _, path = saved(tmp_path)
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "head.safetensors", "labels.json", "metrics.json"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "labels.json").unlink(), "labels.json is missing"),
        (lambda p: (p / "config.json").write_text("{not json"), "is not valid JSON"),
        (lambda p: (p / "head.safetensors").write_bytes(b"garbage"), "head.safetensors is unreadable"),
        (lambda p: (p / "labels.json").write_text(json.dumps(["a", "b"])), "must list 3 class names"),
        (lambda p: _edit(p, lambda c: c["head"]["ansatz"].update(n_qubits=3)), "does not match config.json"),
        (lambda p: _edit(p, lambda c: c.update(format="other/9")), "unknown format"),
    ],
)
def test_damaged_checkpoints_fail_clearly(tmp_path, damage, message):
    _, path = saved(tmp_path)
    damage(path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="model directory not found"):
        load_checkpoint(tmp_path / "nope")


def test_label_count_must_match_the_head(tmp_path):
    with pytest.raises(CheckpointError, match="2 labels for a head with 3 classes"):
        save_checkpoint(tmp_path, task="t", head=Head(CONFIG), labels=["a", "b"], encoder={})


def _edit(path, change):
    config = json.loads((path / "config.json").read_text())
    change(config)
    (path / "config.json").write_text(json.dumps(config))
