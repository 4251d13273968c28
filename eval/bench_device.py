"""The exact simulator on the CPU against the same simulator on a CUDA device, in one run.

One training step (forward + backward of a weighted sum of the readout) of the benchmark circuit
(:func:`eval.bench_circuit.bench_problem`) at several batch sizes, timed on both devices with the
same inputs; the outputs and gradients must agree, or the ratio means nothing. ``agent bench
quantum --device cuda`` prints it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

from eval.bench_circuit import bench_problem

BATCHES = (64, 1024, 8192)
WARMUP = 3


def bench_exact_devices(device: str, n_qubits: int = 6, depth: int = 3, readout: str = "z",
                        batches: Sequence[int] = BATCHES, repeats: int = 10, seed: int = 0) -> list[dict[str, Any]]:
    """Median ms per step on the CPU and on ``device`` for each batch size, and their ratio."""
    import torch

    from finetune.quantum.simulate import ExactBackendModule

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    rows = []
    for batch in batches:
        config, ansatz, inputs, weights, coefficients = bench_problem(n_qubits, depth, readout, batch, seed)
        module = ExactBackendModule(ansatz)

        def step(on: str) -> tuple:
            x = torch.tensor(inputs, device=on, requires_grad=True)
            w = torch.tensor(weights, device=on, requires_grad=True)
            out = module(torch.cat([x, w.expand(batch, -1)], dim=1))
            (out * torch.as_tensor(coefficients, device=on)).sum().backward()
            if on != "cpu":
                torch.cuda.synchronize()
            return out.detach().cpu(), x.grad.cpu(), w.grad.cpu()

        timings: dict[str, list[float]] = {}
        results: dict[str, tuple] = {}
        for on in ("cpu", device):
            for _ in range(WARMUP):
                step(on)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                results[on] = step(on)
                times.append(time.perf_counter() - start)
            timings[on] = times
        cpu_ms = statistics.median(timings["cpu"]) * 1e3
        device_ms = statistics.median(timings[device]) * 1e3
        diff = max(float((a.double() - b.double()).abs().max()) for a, b in zip(results["cpu"], results[device]))
        rows.append({"config": config.to_dict(), "batch": batch, "device": device,
                     "device_name": torch.cuda.get_device_name(torch.device(device)) if device != "cpu" else "cpu",
                     "cpu_ms": cpu_ms, "device_ms": device_ms, "speedup": cpu_ms / device_ms,
                     "max_abs_diff": diff, "repeats": repeats, "torch_threads": torch.get_num_threads()})
    return rows


def format_devices(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table of :func:`bench_exact_devices`."""
    if not rows:
        return ""
    lines = [f"exact simulator, CPU vs {rows[0]['device_name']} (one forward + backward)",
             f"{'qubits':>6} {'depth':>5} {'batch':>6} {'cpu ms':>9} {'device ms':>10} {'speed-up':>8} {'max|Δ|':>8}"]
    for row in rows:
        c = row["config"]
        lines.append(f"{c['n_qubits']:>6} {c['depth']:>5} {row['batch']:>6} {row['cpu_ms']:>9.1f} "
                     f"{row['device_ms']:>10.2f} {row['speedup']:>7.1f}x {row['max_abs_diff']:>8.1e}")
    return "\n".join(lines)
