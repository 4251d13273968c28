"""Training-step cost of the LoRA intents recipe with a hybrid head against a linear head.

``agent bench recipe`` builds the shipped intents recipe twice — all-MiniLM-L6-v2 with the same
seeded LoRA adapter (r 16, alpha 32 on query/key/value/dense), max length 64, batch 32 — once
with the hybrid head (4 × 6-qubit amplitude-encoded circuits, depth 2, on the exact
simulator) and once with a linear head, and times the same BANKING77 training batches through
both (forward, backward, AdamW step), interleaved step by step so a shared CPU's load falls on
both alike. It reports the median step of each and their ratio.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_STEPS = 200
WARMUP = 3


def bench_recipe_heads(steps: int = DEFAULT_STEPS, batch_size: int = 32, data_dir: str | Path | None = None, seed: int = 0) -> dict[str, Any]:
    """Median training-step time of LoRA + hybrid and LoRA + linear on the same batches."""
    import torch

    from finetune.data.loaders import load_intents
    from finetune.models.classifier import EncodedClassifier
    from finetune.models.encoder import Encoder, EncoderConfig
    from finetune.models.heads import HeadConfig
    from finetune.quantum.ansatz import AnsatzConfig
    from finetune.training.recipe import add_adapter, build_head
    from finetune.models.lora import LoraSettings

    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    dataset = load_intents("banking77", data_dir=data_dir)
    labels = sorted({ex.label for ex in dataset.train})
    index = {label: i for i, label in enumerate(labels)}
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(dataset.train))
    hybrid = HeadConfig(kind="hybrid", ansatz=AnsatzConfig(n_qubits=6, depth=2, encoding="amplitude", readout="probs"), n_circuits=4)
    lora = LoraSettings(r=16, alpha=32, target_modules=("query", "key", "value", "dense"))
    models = {}
    for name, head_config in (("lora+hybrid", hybrid), ("lora+linear", replace(hybrid, kind="linear"))):
        encoder = Encoder.load(EncoderConfig(max_length=64))
        add_adapter(encoder, lora, seed=seed)
        head = build_head(head_config, encoder, len(labels), "exact", seed=seed)
        model = EncodedClassifier(encoder, head)
        model.train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        models[name] = (model, optimizer)

    def batch(i: int) -> tuple[list[str], torch.Tensor]:
        rows = [dataset.train[j] for j in order[(i * batch_size) % len(order):][:batch_size]]
        return [ex.text for ex in rows], torch.tensor([index[ex.label] for ex in rows])

    times: dict[str, list[float]] = {name: [] for name in models}
    for i in range(WARMUP + steps):
        texts, targets = batch(i)
        for name, (model, optimizer) in models.items():
            start = time.perf_counter()
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(texts), targets)
            loss.backward()
            optimizer.step()
            if i >= WARMUP:
                times[name].append(time.perf_counter() - start)
    rows = [
        {"name": name, "median_ms": statistics.median(t) * 1e3, "min_ms": min(t) * 1e3, "max_ms": max(t) * 1e3, "steps": len(t)}
        for name, t in times.items()
    ]
    return {
        "batch_size": batch_size,
        "max_length": 64,
        "rows": rows,
        "hybrid_over_linear": rows[0]["median_ms"] / rows[1]["median_ms"],
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
    }


def format_recipe(result: dict[str, Any]) -> str:
    lines = [f"LoRA intents recipe, one training step (batch {result['batch_size']}, max length {result['max_length']})"]
    for r in result["rows"]:
        lines.append(f"  {r['name']:<12} {r['median_ms']:8.1f} ms (min {r['min_ms']:.1f}, max {r['max_ms']:.1f}, n={r['steps']})")
    load = ", ".join(f"{v:.2f}" for v in result["load_average"])
    lines.append(f"hybrid / linear: {result['hybrid_over_linear']:.3f}; torch threads {result['torch_threads']}; load average {load}")
    return "\n".join(lines)
