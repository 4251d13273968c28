"""`--device auto|cpu|cuda`: one resolver, clear errors, CPU checkpoints, and CUDA runs (marked gpu)."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from agent.cli import app
from finetune.errors import SettingError
from finetune.models import device as device_module
from finetune.models.checkpoint import load_checkpoint, save_checkpoint
from finetune.models.device import module_device, resolve_device
from finetune.models.heads import Head, HeadConfig
from finetune.quantum.ansatz import AnsatzConfig

runner = CliRunner()
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch sees none)")
SMALL = HeadConfig(kind="hybrid", in_features=8, n_classes=3, n_circuits=2,
                   ansatz=AnsatzConfig(n_qubits=3, depth=1, encoding="amplitude", readout="probs"))


def test_cpu_is_cpu_and_auto_follows_cuda(monkeypatch):
    assert resolve_device("cpu") == "cpu"
    monkeypatch.setattr(device_module, "cuda_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(device_module, "cuda_available", lambda: True)
    assert resolve_device("AUTO") == "cuda"


def test_cuda_without_cuda_says_what_to_do(monkeypatch):
    monkeypatch.setattr(device_module, "cuda_available", lambda: False)
    with pytest.raises(SettingError, match="no CUDA device.*--device cpu or --device auto") as error:
        resolve_device("cuda")
    assert error.value.option == "--device"


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cpu:0", ""])
def test_unknown_device_names_are_refused(name):
    with pytest.raises(SettingError, match="device must be auto, cpu or cuda"):
        resolve_device(name)


def test_cli_cuda_without_cuda_is_one_line(monkeypatch):
    monkeypatch.setattr(device_module, "cuda_available", lambda: False)
    result = runner.invoke(app, ["bench", "ablation", "--device", "cuda", "--shots", "10", "--out", "unused"])
    assert result.exit_code != 0
    assert "no CUDA device" in result.output and "--device cpu" in result.output
    assert "Traceback" not in result.output


def test_checkpoint_saved_from_a_moved_head_loads_on_cpu(tmp_path):
    head = Head(SMALL).to("cpu")
    save_checkpoint(tmp_path / "m", task="intents", head=head, labels=["a", "b", "c"], encoder={})
    loaded = load_checkpoint(tmp_path / "m").head
    assert module_device(loaded).type == "cpu"
    for name, value in head.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name


def test_finetune_and_eval_run_end_to_end_with_device_cpu(intents_csv, tmp_path):
    model = tmp_path / "model"
    fast = ["--head", "hybrid", "--qubits", "2", "--depth", "1", "--circuits", "1", "--epochs", "1", "--batch-size", "8"]
    result = runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), *fast, "--device", "cpu",
                                 "--out", str(model), "--json"])
    assert result.exit_code == 0, result.output
    assert "--device cpu" in json.loads((model / "config.json").read_text())["command"]
    result = runner.invoke(app, ["eval", "intents", str(model), "--data", str(intents_csv), "--device", "cpu",
                                 "--out", str(tmp_path / "report"), "--json"])
    assert result.exit_code == 0, result.output
    assert 0.0 <= json.loads(result.stdout)["accuracy"] <= 1.0


def test_eval_refuses_a_gpu_for_the_onnx_runtime(monkeypatch, intents_csv, tmp_path):
    monkeypatch.setattr(device_module, "cuda_available", lambda: True)
    result = runner.invoke(app, ["eval", "intents", "default", "--data", str(intents_csv), "--runtime", "onnx",
                                 "--device", "cuda"])
    assert result.exit_code != 0 and "runs on the CPU" in result.output and "Traceback" not in result.output


@pytest.mark.gpu
@needs_cuda
def test_exact_head_gives_the_same_logits_and_gradients_on_cuda():
    torch.manual_seed(0)
    head = Head(SMALL)
    x = torch.randn(16, 8)
    cpu_out = head.eval()(x)
    cuda_head = Head(SMALL).eval()
    cuda_head.load_state_dict(head.state_dict())
    cuda_out = cuda_head.to("cuda")(x.to("cuda"))
    assert cuda_out.device.type == "cuda"
    assert torch.allclose(cpu_out, cuda_out.cpu(), atol=1e-4)
    cuda_out.sum().backward()
    assert all(p.grad is not None and p.grad.device.type == "cuda" for p in cuda_head.parameters())


@pytest.mark.gpu
@needs_cuda
def test_cuda_training_writes_a_checkpoint_that_loads_on_cpu(intents_csv, tmp_path):
    model = tmp_path / "model"
    result = runner.invoke(app, ["finetune", "intents", "--data", str(intents_csv), "--head", "hybrid", "--qubits", "2",
                                 "--depth", "1", "--circuits", "1", "--epochs", "1", "--batch-size", "8",
                                 "--lora", "--lora-r", "2", "--lora-alpha", "4", "--device", "cuda",
                                 "--out", str(model), "--json"])
    assert result.exit_code == 0, result.output
    head = load_checkpoint(model).head
    assert module_device(head).type == "cpu"
    cpu = runner.invoke(app, ["eval", "intents", str(model), "--data", str(intents_csv), "--device", "cpu", "--json",
                              "--out", str(tmp_path / "cpu")])
    gpu = runner.invoke(app, ["eval", "intents", str(model), "--data", str(intents_csv), "--device", "cuda", "--json",
                              "--out", str(tmp_path / "gpu")])
    assert cpu.exit_code == 0 and gpu.exit_code == 0, cpu.output + gpu.output
    assert json.loads(cpu.stdout)["accuracy"] == pytest.approx(json.loads(gpu.stdout)["accuracy"], abs=0.05)


@pytest.mark.gpu
@needs_cuda
def test_frozen_features_and_encoder_passes_come_back_on_cpu(base_encoder):
    import copy

    encoder = copy.deepcopy(base_encoder).to("cuda")
    features = encoder.encode(["my card was declined", "what is my balance"])
    assert features.device.type == "cpu" and features.shape == (2, encoder.dim)
    reference = base_encoder.encode(["my card was declined", "what is my balance"])
    assert torch.allclose(features, reference, atol=1e-4)


