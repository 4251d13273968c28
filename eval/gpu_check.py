"""The prepared check for a machine with a CUDA GPU: tests, a LoRA epoch against the CPU, the simulator.

Run on the GPU machine from the repository root (the data sets at ``$QAGENT_DATA_DIR``)::

    python -m eval.gpu_check --out gpu-check

It does three things and writes ``<out>/gpu_check.json`` after each:

1. ``pytest -m gpu``: the tests that need CUDA (they skip everywhere else).
2. The shipped intents recipe (LoRA r=16 on query/key/value/dense + hybrid head of 4 × 6-qubit
   amplitude circuits, batch 32, max length 64; BANKING77 with the 5 % validation carve) for one
   epoch on CUDA through ``agent finetune intents --epochs 1 --device cuda``, timed; and the same
   model's optimisation step on the CPU of the same machine for ``--cpu-steps`` steps, which gives
   the CPU's time per step (a CPU epoch takes close to an hour, so its epoch time is that per-step
   time × the epoch's steps, and the report says so).
3. ``agent bench quantum --device cuda``: the exact simulator on the CPU against the GPU.

A machine without CUDA stops at once with one line saying so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RECIPE = ["--data", "banking77", "--val-fraction", "0.05", "--head", "hybrid", "--qubits", "6", "--depth", "2",
          "--encoding", "amplitude", "--circuits", "4", "--batch-size", "32", "--lr", "1e-3",
          "--label-smoothing", "0.1", "--lora", "--lora-r", "16", "--lora-alpha", "32",
          "--lora-targets", "query,key,value,dense", "--max-length", "64"]


def lora_step_seconds(device: str, steps: int, *, data_dir: str | None = None, warmup: int = 2) -> dict[str, Any]:
    """Median seconds of one optimisation step of the recipe's model on ``device`` (BANKING77 batches)."""
    import statistics

    import torch

    from finetune.data.loaders import load_intents
    from finetune.models.classifier import EncodedClassifier
    from finetune.models.encoder import Encoder, EncoderConfig
    from finetune.models.heads import HeadConfig
    from finetune.models.lora import LoraSettings
    from finetune.quantum.ansatz import AnsatzConfig
    from finetune.training.recipe import add_adapter, build_head

    dataset = load_intents("banking77", data_dir=data_dir, val_fraction=0.05)
    labels = sorted({ex.label for ex in dataset.train})
    index = {label: i for i, label in enumerate(labels)}
    encoder = Encoder.load(EncoderConfig(max_length=64)).to(device)
    head_config = HeadConfig(kind="hybrid", ansatz=AnsatzConfig(n_qubits=6, depth=2, encoding="amplitude", readout="probs"),
                             n_circuits=4)
    head = build_head(head_config, encoder, len(labels), "exact", seed=0)
    add_adapter(encoder, LoraSettings.from_options(16, 32, "query,key,value,dense"), seed=0)
    model = EncodedClassifier(encoder, head).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    times = []
    for step in range(warmup + steps):
        batch = dataset.train[step * 32 : (step + 1) * 32]
        start = time.perf_counter()
        logits = model([ex.text for ex in batch])
        loss = loss_fn(logits, torch.tensor([index[ex.label] for ex in batch], device=logits.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device != "cpu":
            torch.cuda.synchronize()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    steps_per_epoch = -(-len(dataset.train) // 32)
    per_step = statistics.median(times)
    return {"device": device, "steps_timed": steps, "seconds_per_step": per_step, "steps_per_epoch": steps_per_epoch,
            "epoch_seconds_from_steps": per_step * steps_per_epoch, "torch_threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m eval.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Folder for gpu_check.json and the epoch's model.")
    parser.add_argument("--cpu-steps", type=int, default=10, help="CPU optimisation steps to time (after 2 warm-up steps).")
    parser.add_argument("--skip-tests", action="store_true", help="Do not run pytest -m gpu.")
    parser.add_argument("--skip-epoch", action="store_true", help="Do not train the one-epoch LoRA model.")
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        parser.exit(2, "error: torch sees no CUDA device here; run this on a machine with a GPU "
                       "(the CPU numbers are in BENCHMARKS.md)\n")
    args.out.mkdir(parents=True, exist_ok=True)
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None
    report: dict[str, Any] = {"card": torch.cuda.get_device_name(0), "torch": torch.__version__,
                              "cuda": torch.version.cuda, "load_average_at_start": load}
    path = args.out / "gpu_check.json"

    def save() -> None:
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    agent = [sys.executable, "-m", "agent"]
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    if not args.skip_tests:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"],
                              capture_output=True, text=True)
        report["gpu_tests"] = {"exit_code": done.returncode, "summary": done.stdout.strip().splitlines()[-1:],
                               "seconds": time.perf_counter() - start}
        save()
    if not args.skip_epoch:
        start = time.perf_counter()
        done = subprocess.run([*agent, "finetune", "intents", *RECIPE, *data, "--epochs", "1", "--device", "cuda",
                               "--out", str(args.out / "intents-1-epoch"), "--json"], capture_output=True, text=True)
        epoch: dict[str, Any] = {"exit_code": done.returncode, "wall_seconds": time.perf_counter() - start}
        if done.returncode == 0:
            summary = json.loads(done.stdout)
            epoch.update({key: summary.get(key) for key in ("train_seconds", "val_macro_f1", "best_epoch")})
        else:
            epoch["error"] = done.stderr.strip().splitlines()[-3:]
        report["lora_epoch_cuda"] = epoch
        save()
    report["lora_step_cuda"] = lora_step_seconds("cuda", max(args.cpu_steps, 10), data_dir=args.data_dir)
    save()
    report["lora_step_cpu"] = lora_step_seconds("cpu", args.cpu_steps, data_dir=args.data_dir)
    report["lora_step_speedup"] = report["lora_step_cpu"]["seconds_per_step"] / report["lora_step_cuda"]["seconds_per_step"]
    save()
    done = subprocess.run([*agent, "bench", "quantum", "--device", "cuda", "--no-aer", "--no-torchconnector", "--json"],
                          capture_output=True, text=True)
    report["bench_quantum"] = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()[-500:]}
    save()
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
