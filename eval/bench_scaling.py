"""How a training step of the bench circuit scales: against qubits and against the batch.

``agent bench quantum --scaling --out DIR`` times forward + backward (inputs and weights) of the
bench circuit (depth 3, angle re-uploading, RY+RZ, CX ring, ⟨Z_i⟩) for ours (complex64 and
complex128) and, when installed, PennyLane's ``default.qubit`` (torch backprop, broadcasting)
and ``lightning.qubit`` (adjoint), over

* qubits 4 → 16 at batch 64, and
* batch 1 → 1,024 at 6 qubits,

one torch thread, every row of a point interleaved per round. A row stops (``capped``) at the
first point whose step takes longer than ``time_limit_s`` (a step over a second is timed
once after its warm-up), and skips points whose autograd
buffers would exceed ``memory_limit_bytes`` (``default.qubit`` keeps one state per gate).
Peak memory of one step at the widest register is measured in a fresh process per row (peak
resident set during the step, reset just before it, minus the resident set before it; Linux). Writes ``scaling.json`` and ``scaling.png``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

QUBITS = (4, 6, 8, 10, 12, 14, 16)
BATCHES = (1, 4, 16, 64, 256, 1024)
DEPTH = 3
# A step slower than this is timed once after its warm-up (its spread matters less than the
# sweep's length on a shared machine).
SLOW_STEP_S = 1.0
ROWS = ("qagent complex64", "qagent complex128", "default.qubit backprop", "lightning.qubit adjoint")


def _make_step(row: str, n_qubits: int, batch: int) -> Callable[[], tuple]:
    import torch

    from eval.bench_circuit import bench_problem
    from eval.bench_peers import ours_step, pennylane_step

    _, ansatz, inputs, weights, coefficients = bench_problem(n_qubits, DEPTH, "z", batch, 0)
    if row == "qagent complex64":
        return ours_step(ansatz, inputs, weights, coefficients, torch.complex64)
    if row == "qagent complex128":
        return ours_step(ansatz, inputs, weights, coefficients, torch.complex128)
    if row == "default.qubit backprop":
        return pennylane_step(ansatz, inputs, weights, coefficients, "default.qubit", "backprop")
    return pennylane_step(ansatz, inputs, weights, coefficients, "lightning.qubit", "adjoint")


def _memory_estimate(row: str, n_qubits: int, batch: int) -> int:
    """Bytes of states a row keeps for backward (peers: complex128, one state per gate)."""
    gates = DEPTH * 3 * n_qubits + n_qubits
    if row == "default.qubit backprop":
        return batch * 2**n_qubits * 16 * gates
    if row == "lightning.qubit adjoint":
        return 3 * 2**n_qubits * 16  # one row at a time: state, adjoint state, one scratch
    return batch * 2**n_qubits * 16 * 6


def _sweep(points: list[tuple[int, int]], rows: list[str], repeats: int, time_limit_s: float,
           memory_limit_bytes: int) -> list[dict[str, Any]]:
    capped: set[str] = set()
    results = []
    for n_qubits, batch in points:
        steps: dict[str, Callable[[], tuple]] = {}
        point: dict[str, Any] = {"qubits": n_qubits, "batch": batch, "ms": {}, "min_ms": {}, "skipped": {}}
        for row in rows:
            if row in capped:
                point["skipped"][row] = f"capped: a smaller point took over {time_limit_s:g} s"
            elif _memory_estimate(row, n_qubits, batch) > memory_limit_bytes:
                point["skipped"][row] = f"memory estimate {_memory_estimate(row, n_qubits, batch) / 2**30:.1f} GiB"
            else:
                steps[row] = _make_step(row, n_qubits, batch)
        times: dict[str, list[float]] = {row: [] for row in steps}
        slow: set[str] = set()
        for row, step in steps.items():  # warm-up, and the cap's first measurement
            start = time.perf_counter()
            step()
            took = time.perf_counter() - start
            if took > time_limit_s:
                capped.add(row)
            if took > SLOW_STEP_S:
                slow.add(row)
        for _ in range(repeats):
            for row, step in steps.items():
                if (row in capped or row in slow) and times[row]:
                    continue
                start = time.perf_counter()
                step()
                times[row].append(time.perf_counter() - start)
                if times[row][-1] > time_limit_s:
                    capped.add(row)
        for row, runs in times.items():
            point["ms"][row] = statistics.median(runs) * 1e3
            point["min_ms"][row] = min(runs) * 1e3
        results.append(point)
    return results


def peak_step_memory(row: str, n_qubits: int, batch: int) -> float:
    """Peak resident memory (MiB) one step adds, measured in a fresh process."""
    code = (
        "import json, torch; torch.set_num_threads(1)\n"
        "from eval.bench_scaling import _make_step, _status_kib\n"
        f"step = _make_step({row!r}, {n_qubits}, {batch})\n"
        # Writing 5 to clear_refs resets the peak resident set (VmHWM) to what is resident now,
        # so the peak read after the step is the step's own, not the imports'.
        "open('/proc/self/clear_refs', 'w').write('5')\n"
        "before = _status_kib('VmRSS')\n"
        "step()\n"
        "print(json.dumps(max(_status_kib('VmHWM') - before, 0) / 1024))\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory measurement of {row} failed: {done.stderr.strip().splitlines()[-1:]}")
    return float(done.stdout.strip().splitlines()[-1])


def _status_kib(field: str) -> int:
    """A ``kB`` field of /proc/self/status (Linux), e.g. VmRSS or VmHWM."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def bench_scaling(out: str | Path, qubits: tuple[int, ...] = QUBITS, batches: tuple[int, ...] = BATCHES,
                  repeats: int = 3, time_limit_s: float = 20.0, memory_limit_bytes: int = 2**30,
                  peers: bool = True) -> dict[str, Any]:
    """Run both sweeps and the memory measurement; write ``scaling.json`` and ``scaling.png`` to ``out``."""
    import torch

    from eval.bench_peers import peers_available

    if repeats < 1 or time_limit_s <= 0:
        raise ValueError(f"repeats must be >= 1 and the time limit > 0, got {repeats} and {time_limit_s}")
    rows = list(ROWS if peers and peers_available() is None else ROWS[:2])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        by_qubits = _sweep([(n, 64) for n in qubits], rows, repeats, time_limit_s, memory_limit_bytes)
        by_batch = _sweep([(6, b) for b in batches], rows, repeats, time_limit_s, memory_limit_bytes)
    finally:
        torch.set_num_threads(threads)
    widest = max(qubits)
    memory = {}
    for row in rows:
        if _memory_estimate(row, widest, 64) > memory_limit_bytes:
            memory[row] = None
            continue
        memory[row] = peak_step_memory(row, widest, 64)
    result = {
        "circuit": {"depth": DEPTH, "encoding": "angle", "entangler": "cx_ring", "readout": "z"},
        "rows": rows,
        "by_qubits": by_qubits,
        "by_batch": by_batch,
        "peak_step_memory_mib": {"qubits": widest, "batch": 64, "rows": memory},
        "repeats": repeats,
        "time_limit_s": time_limit_s,
        "memory_limit_bytes": memory_limit_bytes,
        "torch_threads": 1,
        "load_average": os.getloadavg(),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling.json").write_text(json.dumps(result, indent=2))
    plot_scaling(result, out / "scaling.png")
    return result


def plot_scaling(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, points, key, label in (
        (axes[0], result["by_qubits"], "qubits", "qubits (batch 64)"),
        (axes[1], result["by_batch"], "batch", "batch (6 qubits)"),
    ):
        for row in result["rows"]:
            xs = [p[key] for p in points if row in p["ms"]]
            ys = [p["ms"][row] for p in points if row in p["ms"]]
            if xs:
                ax.plot(xs, ys, marker="o", label=row)
        ax.set_yscale("log")
        if key == "batch":
            ax.set_xscale("log", base=2)
        ax.set_xlabel(label)
        ax.set_ylabel("ms per training step (median)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    load = ", ".join(f"{v:.1f}" for v in result["load_average"])
    fig.suptitle(f"bench circuit, depth {result['circuit']['depth']}, forward + backward, 1 thread (load average {load})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def format_scaling(result: dict[str, Any]) -> str:
    lines = []
    for title, points, key in (("qubits (batch 64)", result["by_qubits"], "qubits"), ("batch (6 qubits)", result["by_batch"], "batch")):
        lines.append(f"ms per step by {title}:")
        lines.append("  " + f"{key:>7}" + "".join(f"{row:>26}" for row in result["rows"]))
        for p in points:
            cells = "".join(f"{p['ms'][row]:26.2f}" if row in p["ms"] else f"{'-':>26}" for row in result["rows"])
            lines.append(f"  {p[key]:>7}{cells}")
    memory = result["peak_step_memory_mib"]
    parts = ", ".join(f"{row} {'-' if v is None else f'{v:.0f} MiB'}" for row, v in memory["rows"].items())
    lines.append(f"peak memory of one step at {memory['qubits']} qubits, batch {memory['batch']}: {parts}")
    load = ", ".join(f"{v:.2f}" for v in result["load_average"])
    lines.append(f"rows stop past {result['time_limit_s']:g} s a step; load average {load}")
    return "\n".join(lines)
