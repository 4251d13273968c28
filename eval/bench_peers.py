"""The bench circuit on PennyLane, for ``agent bench quantum --peers``.

The PennyLane circuit is read gate by gate off the same Qiskit ``QuantumCircuit`` the rest of
qagent runs (``ry``, ``rz``, ``cx``), so both sides simulate one circuit. Rows: ``default.qubit``
with torch backprop and parameter broadcasting, ``lightning.qubit`` with adjoint
differentiation. Each step is forward + backward through inputs and weights, like ours; the
timings are interleaved (one step of every row per round) so a shared CPU's load falls on all
rows alike, and reported as median and spread. Nothing is installed here: without PennyLane
:func:`peers_available` says how to get it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import numpy as np

INSTALL_HINT = "PennyLane rows need pennylane and pennylane-lightning: pip install -e '.[bench]'"
SUPPORTED = ("ry", "rz", "cx")


def peers_available() -> str | None:
    """None when the PennyLane rows can run, else the one line saying how to get them."""
    try:
        import pennylane  # noqa: F401
        import pennylane_lightning  # noqa: F401
    except ImportError:
        return INSTALL_HINT
    return None


def pennylane_step(ansatz, inputs: np.ndarray, weights: np.ndarray, coefficients, device: str, diff_method: str) -> Callable[[], tuple]:
    """One forward + backward of the ansatz on a PennyLane device; returns (out, dx, dw)."""
    import pennylane as qml
    import torch

    index = {p: i for i, p in enumerate(ansatz.parameters)}
    circuit = ansatz.circuit
    program = []
    for instruction in circuit.data:
        name = instruction.operation.name
        if name not in SUPPORTED:
            raise ValueError(f"the PennyLane rows support {', '.join(SUPPORTED)}; the circuit has '{name}'")
        wires = [circuit.find_bit(q).index for q in instruction.qubits]
        column = index[instruction.operation.params[0]] if instruction.operation.params else None
        program.append((name, wires, column))
    n = circuit.num_qubits
    batch = inputs.shape[0]
    broadcast = device == "default.qubit"
    dev = qml.device(device, wires=n)

    @qml.qnode(dev, interface="torch", diff_method=diff_method)
    def node(values):
        for name, wires, column in program:
            if name == "cx":
                qml.CNOT(wires=wires)
            else:
                angle = values[..., column]
                (qml.RY if name == "ry" else qml.RZ)(angle, wires=wires[0])
        return [qml.expval(qml.PauliZ(q)) for q in range(n)]

    readout = torch.as_tensor(ansatz.postprocess(np.eye(len(ansatz.observables))), dtype=torch.float64)

    def step() -> tuple:
        x = torch.tensor(inputs, dtype=torch.float64, requires_grad=True)
        w = torch.tensor(weights, dtype=torch.float64, requires_grad=True)
        values = torch.cat([x, w.expand(batch, -1)], dim=1)
        if broadcast:
            out = torch.stack(node(values), dim=1)
        else:  # adjoint and parameter shift run one circuit per row
            out = torch.stack([torch.stack(node(row)) for row in values])
        out = out.double() @ readout
        (out * coefficients.double()).sum().backward()
        return out.detach(), x.grad, w.grad

    return step


def ours_step(ansatz, inputs: np.ndarray, weights: np.ndarray, coefficients, dtype, engine: str = "auto") -> Callable[[], tuple]:
    """One forward + backward of the ansatz on our exact simulator; returns (out, dx, dw)."""
    import torch

    from finetune.quantum.simulate import ExactBackendModule

    module = ExactBackendModule(ansatz, dtype=dtype, engine=engine)
    real = torch.float32 if dtype == torch.complex64 else torch.float64
    batch = inputs.shape[0]

    def step() -> tuple:
        x = torch.tensor(inputs, dtype=real, requires_grad=True)
        w = torch.tensor(weights, dtype=real, requires_grad=True)
        out = module(torch.cat([x, w.expand(batch, -1)], dim=1))
        (out * coefficients.to(real)).sum().backward()
        return out.detach(), x.grad, w.grad

    return step


def interleaved(steps: dict[str, Callable[[], tuple]], repeats: int, warmup: int = 2) -> tuple[dict[str, list[float]], dict[str, tuple]]:
    """Time every step once per round, ``repeats`` rounds; returns times (s) and last results."""
    results = {}
    for _ in range(warmup):
        for name, step in steps.items():
            results[name] = step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            results[name] = step()
            times[name].append(time.perf_counter() - start)
    return times, results


def bench_peers(n_qubits: int = 6, depth: int = 3, batch: int = 64, readout: str = "z", repeats: int = 15, seed: int = 0, lightning_repeats: int = 3) -> dict[str, Any]:
    """Ours (complex64 and complex128) against PennyLane's fastest configurations, interleaved."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the published figures are single-thread
    try:
        return _bench_peers(n_qubits, depth, batch, readout, repeats, seed, lightning_repeats)
    finally:
        torch.set_num_threads(threads)


def _bench_peers(n_qubits: int, depth: int, batch: int, readout: str, repeats: int, seed: int, lightning_repeats: int) -> dict[str, Any]:
    import os

    import torch

    from eval.bench_circuit import bench_problem

    config, ansatz, inputs, weights, coefficients = bench_problem(n_qubits, depth, readout, batch, seed)
    steps: dict[str, Callable[[], tuple]] = {}
    for dtype in (torch.complex64, torch.complex128):
        steps[f"qagent exact ({str(dtype).removeprefix('torch.')})"] = ours_step(ansatz, inputs, weights, coefficients, dtype)
    # The complex autograd path (what circuits outside the real engine run, and what every
    # circuit ran before it), for the engine's own gain in the same run.
    steps["qagent complex path (complex64)"] = ours_step(ansatz, inputs, weights, coefficients, torch.complex64, "complex")
    steps["default.qubit backprop, broadcast"] = pennylane_step(ansatz, inputs, weights, coefficients, "default.qubit", "backprop")
    slow = {"lightning.qubit adjoint": pennylane_step(ansatz, inputs, weights, coefficients, "lightning.qubit", "adjoint")}
    times, results = interleaved(steps, repeats)
    slow_times, slow_results = interleaved(slow, lightning_repeats, warmup=1)
    times.update(slow_times)
    results.update(slow_results)
    reference = [t.double() for t in results["qagent exact (complex128)"]]
    rows = []
    for name, runs in times.items():
        values = [t.double() for t in results[name]]
        rows.append({
            "name": name,
            "median_ms": statistics.median(runs) * 1e3,
            "min_ms": min(runs) * 1e3,
            "max_ms": max(runs) * 1e3,
            "repeats": len(runs),
            "max_abs_output_diff": float((values[0] - reference[0]).abs().max()),
            "max_abs_grad_diff": float(max((values[1] - reference[1]).abs().max(), (values[2] - reference[2]).abs().max())),
        })
    peers = [r for r in rows if not r["name"].startswith("qagent")]
    fastest_peer = min(peers, key=lambda r: r["median_ms"])
    fastest_peer_min = min(peers, key=lambda r: r["min_ms"])
    ours64 = next(r for r in rows if r["name"] == "qagent exact (complex64)")
    return {
        "config": config.to_dict(),
        "batch": batch,
        "rows": rows,
        "fastest_peer": fastest_peer["name"],
        "speedup_vs_fastest_peer": fastest_peer["median_ms"] / ours64["median_ms"],
        # Fastest step of each: on a loaded machine a millisecond step is preempted more often
        # in proportion than a 100 ms one, which the medians count against the shorter step.
        "speedup_vs_fastest_peer_min": fastest_peer_min["min_ms"] / ours64["min_ms"],
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "versions": {name: version(name) for name in ("pennylane", "pennylane-lightning", "torch")},
    }


def format_peers(result: dict[str, Any]) -> str:
    lines = [f"bench circuit on PennyLane vs ours (batch {result['batch']}; gradients vs ours complex128)"]
    for r in result["rows"]:
        lines.append(
            f"  {r['name']:<36} {r['median_ms']:9.2f} ms (min {r['min_ms']:.2f}, max {r['max_ms']:.2f}, n={r['repeats']})"
            f"  max|Δout| {r['max_abs_output_diff']:.1e}  max|Δgrad| {r['max_abs_grad_diff']:.1e}"
        )
    load = ", ".join(f"{v:.2f}" for v in result["load_average"])
    lines.append(
        f"ours (complex64) vs fastest peer ({result['fastest_peer']}): {result['speedup_vs_fastest_peer']:.1f}x "
        f"(fastest steps: {result['speedup_vs_fastest_peer_min']:.1f}x); "
        f"torch threads {result['torch_threads']}; load average {load}"
    )
    return "\n".join(lines)
