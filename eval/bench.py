"""Benchmarks for the quantum heads: our exact torch simulator against Qiskit's reference path.

:func:`bench_exact_vs_torchconnector` runs one training step (forward, then backward through
inputs and weights) of the same circuit, inputs and weights two ways:

* ours: :class:`~finetune.quantum.simulate.ExactBackendModule` at its default ``complex64``,
  gradients by autograd;
* reference: qiskit-machine-learning's ``TorchConnector(EstimatorQNN(...))`` on Qiskit's
  ``StatevectorEstimator``, gradients by the parameter-shift rule.

It returns a JSON-ready dict: timings, speed-up, and how far apart the outputs and gradients
are (the speed-up means nothing unless those agree). Heavy imports live inside the function.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from typing import Any

import numpy as np

from eval.bench_circuit import bench_problem

# The reference needs minutes per step at the default size (64 examples x 6 observables x 121
# shifted circuits = 46k statevector runs), so it is timed once by default; ours needs milliseconds, so a median over many
# runs after a warm-up is cheap and steadies the noise of a shared CPU.
DEFAULT_REPEATS = 30
DEFAULT_REFERENCE_REPEATS = 1
WARMUP = 3


def bench_exact_vs_torchconnector(
    n_qubits: int = 6,
    depth: int = 3,
    batch: int = 64,
    readout: str = "z",
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    reference_repeats: int = DEFAULT_REFERENCE_REPEATS,
    reference: bool = True,
) -> dict[str, Any]:
    """Time forward + backward of one ansatz with our simulator and with TorchConnector.

    Args:
        n_qubits: Qubits of the ansatz (``AnsatzConfig(n_qubits, depth, readout=readout)``).
        depth: Variational layers.
        batch: Examples per step.
        readout: ``z``, ``zz`` or ``probs``.
        repeats: Timed runs of ours (after a warm-up); the median is reported.
        seed: Seed of the random inputs, weights and loss coefficients.
        reference_repeats: Timed runs of TorchConnector (each takes seconds).
        reference: Time TorchConnector at all; without it only ours is timed (no comparison keys).

    Returns:
        ``ours_ms`` and ``torchconnector_ms`` (medians), ``speedup``, ``max_abs_output_diff``,
        ``max_abs_grad_diff`` (over input and weight gradients), the config, torch threads and
        library versions.
    """
    import torch
    from qiskit.primitives import StatevectorEstimator

    from finetune.quantum.simulate import ExactBackendModule

    if repeats < 1 or reference_repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats} and {reference_repeats}")
    config, ansatz, inputs, weights, coefficients = bench_problem(n_qubits, depth, readout, batch, seed)

    ours = ExactBackendModule(ansatz)  # complex64: what a user gets by default

    def ours_step() -> tuple:
        x = torch.tensor(inputs, requires_grad=True)
        w = torch.tensor(weights, requires_grad=True)
        out = ours(torch.cat([x, w.expand(batch, -1)], dim=1))
        (out * coefficients).sum().backward()
        return out.detach(), x.grad, w.grad

    for _ in range(WARMUP):
        ours_step()
    ours_times, ours_result = _time(ours_step, repeats)
    ours_ms = statistics.median(ours_times) * 1e3
    result = {
        "config": config.to_dict(),
        "batch": batch,
        "seed": seed,
        "n_parameters": config.n_inputs + config.n_weights,
        "ours_ms": ours_ms,
        "ours_ms_min": min(ours_times) * 1e3,
        "ours_dtype": str(ours.simulator.dtype).removeprefix("torch."),
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "versions": {
            name: version(name) for name in ("qiskit", "qiskit-machine-learning", "torch", "numpy")
        },
    }
    if not reference:
        return result
    reference_step = _reference_step(ansatz, StatevectorEstimator(), inputs, weights, coefficients, 0.0)
    reference_times, reference_result = _time(reference_step, reference_repeats)
    reference_ms = statistics.median(reference_times) * 1e3
    out, x_grad, w_grad = (t.double() for t in ours_result)
    ref_out, ref_x_grad, ref_w_grad = (t.double() for t in reference_result)
    return {
        **result,
        "torchconnector_ms": reference_ms,
        "torchconnector_runs_ms": [t * 1e3 for t in reference_times],
        "speedup": reference_ms / ours_ms,
        "max_abs_output_diff": float((out - ref_out).abs().max()),
        "max_abs_grad_diff": float(
            max((x_grad - ref_x_grad).abs().max(), (w_grad - ref_w_grad).abs().max())
        ),
        # Weight gradients sum over the batch (tens in size), where one float32 step is ~1e-5:
        # the relative difference says whether a gap is rounding or a real disagreement.
        "max_abs_grad": float(max(ref_x_grad.abs().max(), ref_w_grad.abs().max())),
        "max_rel_grad_diff": float(
            max((x_grad - ref_x_grad).abs().max(), (w_grad - ref_w_grad).abs().max())
            / max(ref_x_grad.abs().max(), ref_w_grad.abs().max())
        ),
        "max_abs_input_grad_diff": float((x_grad - ref_x_grad).abs().max()),
        "max_abs_weight_grad_diff": float((w_grad - ref_w_grad).abs().max()),
        "torchconnector_repeats": reference_repeats,
    }


def _reference_step(ansatz, estimator, inputs, weights, coefficients, precision: float) -> Callable[[], tuple]:
    """One forward + backward of qiskit-machine-learning's TorchConnector(EstimatorQNN)."""
    import torch
    from qiskit_machine_learning.connectors import TorchConnector
    from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient
    from qiskit_machine_learning.neural_networks import EstimatorQNN

    qnn = EstimatorQNN(
        circuit=ansatz.circuit,
        estimator=estimator,
        observables=list(ansatz.observables),
        input_params=list(ansatz.inputs),
        weight_params=list(ansatz.weights),
        gradient=ParamShiftEstimatorGradient(estimator),
        input_gradients=True,
        default_precision=precision,  # EstimatorQNN's default (1/64) would add shot noise
    )
    reference = TorchConnector(qnn, initial_weights=weights)
    # EstimatorQNN gives ⟨observable⟩; the probs readout is a fixed linear map of those (identity
    # for z and zz), applied in torch so the same loss flows back through it.
    post = torch.as_tensor(ansatz.postprocess(np.eye(len(ansatz.observables))), dtype=torch.float32)

    def step() -> tuple:
        reference.zero_grad()
        x = torch.tensor(inputs, requires_grad=True)
        out = reference(x) @ post
        (out * coefficients).sum().backward()
        return out.detach(), x.grad, reference.weight.grad.clone()

    return step


def _time(step: Callable[[], tuple], repeats: int) -> tuple[list[float], tuple]:
    times = []
    result: tuple = ()
    for _ in range(repeats):
        start = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - start)
    return times, result


def format_table(results: dict[str, Any] | Sequence[dict[str, Any]]) -> str:
    """A plain-text table of one or more :func:`bench_exact_vs_torchconnector` results."""
    rows = [results] if isinstance(results, dict) else list(results)
    header = ("qubits", "depth", "batch", "readout", "ours ms", "TorchConnector ms", "speed-up", "max|Δgrad|", "max|Δout|")
    body = [
        (
            str(r["config"]["n_qubits"]),
            str(r["config"]["depth"]),
            str(r["batch"]),
            r["config"]["readout"],
            f"{r['ours_ms']:.2f}",
            # "-": TorchConnector not timed (--no-torchconnector)
            *((f"{r['torchconnector_ms']:.0f}", f"{r['speedup']:.0f}x", f"{r['max_abs_grad_diff']:.1e}",
               f"{r['max_abs_output_diff']:.1e}") if "torchconnector_ms" in r else ("-",) * 4),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in (header, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if rows:
        r = rows[0]
        versions = ", ".join(f"{k} {v}" for k, v in r["versions"].items())
        reference = (f"TorchConnector: median of {r['torchconnector_repeats']}" if "torchconnector_repeats" in r
                     else "TorchConnector: not timed")
        lines.append(
            f"ours: {r['ours_dtype']}, median of {r['repeats']}; {reference}; torch threads {r['torch_threads']}; {versions}"
        )
    return "\n".join(lines)


def bench_aer_vs_torchconnector(
    shots: int | None = None,
    n_qubits: int = 6,
    depth: int = 3,
    batch: int = 16,
    readout: str = "z",
    seed: int = 0,
    reference: bool = True,
) -> dict[str, Any]:
    """One training step on Aer: our :class:`CircuitLayer` against TorchConnector + Aer EstimatorV2
    (``reference=False``: ours alone).

    Both use parameter-shift gradients for inputs and weights on the same circuit and values.
    Ours sends the batch and all its shifted rows as one job (Aer ``EstimatorV2`` without shots;
    with shots, Aer's exact outcome distribution sampled per row); the reference is qiskit-machine-learning's ``EstimatorQNN`` with
    Aer's ``EstimatorV2`` (with shots it emulates them through ``default_precision = 1/√shots``).
    Each side is timed once: a step takes seconds to minutes.
    """
    import torch
    from qiskit_aer.primitives import EstimatorV2 as AerEstimator

    from finetune.quantum.layer import CircuitLayer

    config, ansatz, inputs, weights, coefficients = bench_problem(n_qubits, depth, readout, batch, seed)
    spec = "aer" if shots is None else f"aer:shots={shots}"
    layer = CircuitLayer(ansatz, spec, gradient="parameter_shift")

    def ours_step() -> tuple:
        x = torch.tensor(inputs, requires_grad=True)
        w = torch.tensor(weights, requires_grad=True)
        out = layer(torch.cat([x, w.expand(batch, -1)], dim=1))
        (out * coefficients).sum().backward()
        return out.detach(), x.grad, w.grad

    ours_step()  # warm-up: transpiles and caches the circuit once, as training does
    ours_times, ours_result = _time(ours_step, 1)
    result = {"backend": spec, "config": config.to_dict(), "batch": batch, "ours_ms": ours_times[0] * 1e3}
    if not reference:
        return result
    precision = 0.0 if shots is None else 1 / np.sqrt(shots)
    estimator = AerEstimator(options={"default_precision": precision, "run_options": {"seed": seed + 1}})
    reference_step = _reference_step(ansatz, estimator, inputs, weights, coefficients, precision)
    reference_times, reference_result = _time(reference_step, 1)
    out, x_grad, w_grad = (t.double() for t in ours_result)
    ref_out, ref_x_grad, ref_w_grad = (t.double() for t in reference_result)
    result.update(torchconnector_ms=reference_times[0] * 1e3, speedup=reference_times[0] / ours_times[0])
    if shots is None:  # with shots both sides are noisy: only exact values can be compared
        result["max_abs_output_diff"] = float((out - ref_out).abs().max())
        result["max_abs_grad_diff"] = float(max((x_grad - ref_x_grad).abs().max(), (w_grad - ref_w_grad).abs().max()))
    return result


def run_quantum_benchmarks(
    n_qubits: int = 6,
    depth: int = 3,
    batch: int = 64,
    readout: str = "z",
    include_aer: bool = True,
    aer_batch: int = 16,
    progress: bool = True,
    peers: bool = False,
    include_torchconnector: bool = True,
) -> dict[str, Any]:
    """Everything ``agent bench quantum`` reports: exact simulator, then Aer without and with shots.

    Our simulator's rows are always timed; ``include_torchconnector=False`` only leaves out the
    TorchConnector reference beside them (minutes per step), ``include_aer=False`` the Aer rows.
    """
    import sys

    def say(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    results: dict[str, Any] = {}
    if peers:
        from eval.bench_peers import bench_peers, peers_available

        missing = peers_available()
        if missing:
            results["peers_missing"] = missing
        else:
            say(f"PennyLane peers: {n_qubits} qubits, depth {depth}, batch {batch}…")
            results["peers"] = bench_peers(n_qubits, depth, batch, readout)
    reference = include_torchconnector
    say(f"exact: {n_qubits} qubits, depth {depth}, batch {batch}"
        + (" (the TorchConnector step takes minutes)…" if reference else "…"))
    results["exact"] = bench_exact_vs_torchconnector(n_qubits, depth, batch, readout, reference=reference)
    if include_aer:
        results["aer"] = []
        for shots in (None, 1024):
            say(f"aer shots={shots}: batch {aer_batch}…")
            results["aer"].append(bench_aer_vs_torchconnector(shots, n_qubits, depth, aer_batch, readout,
                                                              reference=reference))
    return results


def format_results(results: dict[str, Any]) -> str:
    """Tables for :func:`run_quantum_benchmarks`."""
    lines = []
    if "peers" in results:
        from eval.bench_peers import format_peers

        lines += [format_peers(results["peers"]), ""]
    if "peers_missing" in results:
        lines += [results["peers_missing"], ""]
    if "exact" in results:
        lines += ["exact simulator vs TorchConnector(EstimatorQNN, StatevectorEstimator)", format_table(results["exact"])]
    for row in results.get("aer", []):
        lines.append("")
        reference = (f", TorchConnector + Aer EstimatorV2 {row['torchconnector_ms']:.0f} ms, speed-up {row['speedup']:.1f}x"
                     if "torchconnector_ms" in row else " (TorchConnector not timed)")
        lines.append(
            f"training step on {row['backend']} (batch {row['batch']}): ours {row['ours_ms']:.0f} ms{reference}"
            + (f", max|Δgrad| {row['max_abs_grad_diff']:.1e}" if "max_abs_grad_diff" in row else "")
        )
    return "\n".join(lines)
