import hashlib
import json

import pytest
import torch
from qiskit import qasm3

from finetune.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from finetune.models.heads import Head, HeadConfig
from finetune.models.integrity import manifest_digest, record_checksums
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
    assert sorted(p.name for p in path.iterdir()) == [
        "checksums.json", "config.json", "head.safetensors", "labels.json", "metrics.json"]


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
    (path / "checksums.json").unlink()  # as saved before checksums were recorded: the files' own checks
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


@pytest.mark.parametrize("name, damage", [
    ("labels.json", lambda p: (p / "labels.json").write_text(json.dumps(["c", "a", "b"]))),  # shuffled
    ("config.json", lambda p: _edit(p, lambda c: c["head"].update(n_classes=4))),
    ("head.safetensors", lambda p: _flip_last_byte(p / "head.safetensors")),
    ("metrics.json", lambda p: (p / "metrics.json").write_text(json.dumps({"accuracy": 0.99}))),
])
def test_a_file_that_differs_from_its_recorded_checksum_is_named_as_corrupted(tmp_path, name, damage):
    _, path = saved(tmp_path)
    damage(path)
    with pytest.raises(CheckpointError, match=rf"{name} does not match its checksum .*corrupted.*re-train .*restore") as err:
        load_checkpoint(path)
    assert len(str(err.value).splitlines()) == 1


def test_an_edited_class_count_is_blamed_on_config_json_not_labels(tmp_path):
    _, path = saved(tmp_path)
    (path / "checksums.json").unlink()
    _edit(path, lambda c: c["head"].update(n_classes=4))
    with pytest.raises(CheckpointError, match=r"config\.json says n_classes 4, but head\.safetensors and labels\.json hold 3"):
        load_checkpoint(path)


def test_too_few_labels_for_config_and_weights_are_blamed_on_labels_json(tmp_path):
    _, path = saved(tmp_path)
    (path / "checksums.json").unlink()
    (path / "labels.json").write_text(json.dumps(["a", "b"]))
    with pytest.raises(CheckpointError, match=r"labels\.json must list 3 class names .*not 2"):
        load_checkpoint(path)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_head_weights_are_refused_naming_file_and_tensor(tmp_path, value):
    torch.manual_seed(0)
    head = Head(CONFIG)
    with torch.no_grad():
        head.linear.weight[0, 0] = value
    path = save_checkpoint(tmp_path / "nan", task="intents", head=head, labels=["a", "b", "c"], encoder={})
    with pytest.raises(CheckpointError, match=r"head\.safetensors: tensor 'linear\.weight' holds NaN or infinite"):
        load_checkpoint(path)


def test_non_finite_adapter_weights_are_refused_naming_file_and_tensor(tmp_path):
    _, path = saved(tmp_path)
    _write_adapter(path, torch.tensor([[1.0, float("nan")]]))
    record_checksums(path)
    with pytest.raises(CheckpointError, match=r"adapter_model\.safetensors: tensor 'lora_A' holds NaN"):
        load_checkpoint(path)


def test_unreadable_adapter_weights_name_the_file(tmp_path):
    _, path = saved(tmp_path)
    _write_adapter(path, torch.ones(2, 2))
    (path / "adapter" / "adapter_model.safetensors").write_bytes(b"garbage")
    record_checksums(path)  # the checksums agree: the file was written broken
    with pytest.raises(CheckpointError, match=r"adapter/adapter_model\.safetensors is unreadable"):
        load_checkpoint(path)
    (path / "checksums.json").unlink()  # and without checksums
    with pytest.raises(CheckpointError, match=r"adapter/adapter_model\.safetensors is unreadable"):
        load_checkpoint(path)


def test_adapter_weights_are_covered_by_the_checksums(tmp_path):
    _, path = saved(tmp_path)
    _write_adapter(path, torch.ones(2, 2))
    with pytest.raises(CheckpointError, match=r"adapter/adapter_\w+\.\w+ is not in checksums\.json"):
        load_checkpoint(path)  # added after saving, unrecorded
    record_checksums(path)
    load_checkpoint(path)
    _flip_last_byte(path / "adapter" / "adapter_model.safetensors")
    with pytest.raises(CheckpointError, match=r"adapter_model\.safetensors does not match its checksum"):
        load_checkpoint(path)


def test_checkpoints_saved_before_checksums_still_load(tmp_path):
    _, path = saved(tmp_path)
    (path / "checksums.json").unlink()
    assert load_checkpoint(path).labels == ["a", "b", "c"]
    assert manifest_digest(path) is None


def test_a_pinned_digest_covers_every_file(tmp_path):
    _, path = saved(tmp_path)
    digest = manifest_digest(path)
    assert digest == hashlib.sha256((path / "checksums.json").read_bytes()).hexdigest()
    assert load_checkpoint(path, expect_sha256=digest.upper()).labels == ["a", "b", "c"]
    # An edit with recomputed checksums passes the checksums but not the pin.
    (path / "labels.json").write_text(json.dumps(["c", "a", "b"]))
    record_checksums(path)
    load_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"is not the pinned one: its checksums\.json hashes to [0-9a-f]{64}"):
        load_checkpoint(path, expect_sha256=digest)
    with pytest.raises(ValueError, match="64 hex digits"):
        load_checkpoint(path, expect_sha256="abc")


def test_removed_metrics_load_unless_pinned(tmp_path):
    _, path = saved(tmp_path)
    digest = manifest_digest(path)
    (path / "metrics.json").unlink()
    assert load_checkpoint(path).metrics == {}
    with pytest.raises(CheckpointError, match=r"metrics\.json is missing"):
        load_checkpoint(path, expect_sha256=digest)


def test_json_files_never_hold_nan(tmp_path):
    head = Head(CONFIG)
    path = save_checkpoint(tmp_path / "m", task="intents", head=head, labels=["a", "b", "c"], encoder={},
                           metrics={"val_loss": float("nan"), "history": [{"loss": float("inf")}]})
    metrics = json.loads((path / "metrics.json").read_text(), parse_constant=_reject)
    assert metrics == {"val_loss": None, "history": [{"loss": None}]}


def _reject(constant):
    raise AssertionError(f"{constant} is not JSON")


def _flip_last_byte(file):
    data = bytearray(file.read_bytes())
    data[-1] ^= 1
    file.write_bytes(bytes(data))


def _write_adapter(path, tensor):
    from safetensors.torch import save_file

    (path / "adapter").mkdir()
    (path / "adapter" / "adapter_config.json").write_text("{}")
    save_file({"lora_A": tensor.contiguous()}, str(path / "adapter" / "adapter_model.safetensors"))
