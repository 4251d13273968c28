"""Can a correction fitted on validation data win back the intents accuracy that device noise costs?

Run: ``python -m eval.noise_corrections [--backend aer:noise=fake_sherbrooke,shots=1024] [--limit 200] [--out DIR]``

Temperature scaling (``agent finetune calibrate``) never moves the argmax, so it cannot win back
the queries that noise flips. This measures what corrections that *do* move it buy on the shipped
intents model (LoRA encoder + hybrid head): the head's quantum-branch readouts are taken on the
exact backend and on the noisy one, for the calibration's validation queries (the same seeded
subsample ``agent finetune calibrate --limit N`` fits on, plus as many out-of-scope ones) and for
a seeded subsample of test queries (as ``agent eval intents --limit N``). Every correction is fitted
on the validation readouts only, then scored on test:

- ``none``: the noisy readouts as they come;
- ``affine per circuit`` / ``affine per output``: least squares of the exact readout on the noisy
  one (one scale and offset per circuit, or per readout value);
- ``depolarising inverse``: noisy = g·exact + b per circuit fitted, then inverted
  (what a global depolarising channel would call for);
- ``branch weight``: the quantum branch's logits scaled by β beside the linear path's, β and a
  temperature fitted together by validation log-loss;
- ``linear path only``: the hybrid head without its quantum branch (β = 0).

Writes ``noise_corrections.json``. Accuracy is the argmax over the model's labels.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

DEFAULT_OUT = Path("qagent-eval/noise-corrections")
DEFAULT_BACKEND = "aer:noise=fake_sherbrooke,shots=1024"


def capture(classifier: Any, features: torch.Tensor, backend: str) -> tuple[np.ndarray, float]:
    """The quantum branch's readouts ``[N, F]`` of ``features`` on ``backend``, and the seconds it took."""
    from finetune.models.heads import QuantumBranch

    classifier.set_backend(backend)
    captured: list[torch.Tensor] = []
    hooks = [module.register_forward_hook(lambda _m, _a, out: captured.append(out.detach().clone()))
             for module in classifier.head.modules() if isinstance(module, QuantumBranch)]
    start = time.perf_counter()
    try:
        classifier.logits(features)
    finally:
        for hook in hooks:
            hook.remove()
    if not captured:
        raise ValueError("the model's head has no quantum branch")
    return torch.cat(captured).numpy(), time.perf_counter() - start


def corrections(head: Any, data: dict[str, np.ndarray], n_val: int) -> dict[str, dict[str, float]]:
    """Each correction fitted on validation, scored on validation (in-scope) and test."""
    k = head.quantum.ansatz.n_outputs
    m = head.config.n_circuits
    with torch.no_grad():
        linear = {s: head.linear(torch.tensor(data[f"{s}_features"])).numpy() for s in ("val", "test")}
    bias = head.quantum_out.bias.detach().numpy()

    def branch(readout: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return head.quantum_out(torch.tensor(readout, dtype=torch.float32)).numpy() - bias

    def accuracy(split: str, logits: np.ndarray) -> float:
        labels = data[f"{split}_labels"]
        n = n_val if split == "val" else len(labels)
        return float((logits[:n].argmax(-1) == labels[:n]).mean())

    def score(map_readout=lambda r: r, beta: float = 1.0) -> dict[str, float]:
        return {split: accuracy(split, linear[split] + bias + beta * branch(map_readout(data[f"{split}_noisy"])))
                for split in ("val", "test")}

    noisy, exact = data["val_noisy"][:n_val], data["val_exact"][:n_val]
    per_circuit = [slice(c * k, (c + 1) * k) for c in range(m)]

    def affine(columns: list[slice | int]) -> tuple[np.ndarray, np.ndarray]:
        scale, offset = np.ones(noisy.shape[1]), np.zeros(noisy.shape[1])
        for cols in columns:
            scale[cols], offset[cols] = np.polyfit(noisy[:, cols].ravel(), exact[:, cols].ravel(), 1)
        return scale, offset

    def depolarising() -> tuple[np.ndarray, np.ndarray]:
        scale, offset = np.ones(noisy.shape[1]), np.zeros(noisy.shape[1])
        for cols in per_circuit:
            gain, shift = np.polyfit(exact[:, cols].ravel(), noisy[:, cols].ravel(), 1)
            scale[cols], offset[cols] = 1 / gain, -shift / gain
        return scale, offset

    results: dict[str, dict[str, float]] = {"none": score()}
    for name, (scale, offset) in (("affine per circuit", affine(per_circuit)),
                                  ("affine per output", affine(list(range(noisy.shape[1])))),
                                  ("depolarising inverse", depolarising())):
        results[name] = score(lambda r, s=scale, o=offset: r * s + o)
    beta = _fit_branch_weight(linear["val"][:n_val] + bias, branch(noisy), data["val_labels"][:n_val])
    results["branch weight"] = {**score(beta=beta), "beta": round(beta, 4)}
    results["linear path only"] = score(beta=0.0)
    return results


def _fit_branch_weight(linear: np.ndarray, quantum: np.ndarray, labels: np.ndarray) -> float:
    """β (with a temperature) minimising the log-loss of ``(linear + β·quantum) / T``."""
    lin, q, y = torch.tensor(linear), torch.tensor(quantum), torch.tensor(labels)
    log_t = torch.zeros(1, requires_grad=True)
    beta = torch.ones(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t, beta], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy((lin + beta * q) / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(beta.item())


def run(backend: str = DEFAULT_BACKEND, limit: int = 200, seed: int = 0) -> dict[str, Any]:
    from agent.shipped import model_path
    from eval.calibrate_cli import _recorded_options
    from eval.classification import _subsample, load_eval_data
    from finetune.models.checkpoint import read_json
    from finetune.models.files import CONFIG
    from finetune.models.loading import load_classifier

    source = model_path("default", "intents")
    classifier = load_classifier(source)
    recorded = _recorded_options(read_json(source / CONFIG).get("command"))
    val_fraction = float(recorded.get("--val-fraction", 0.1))
    val = load_eval_data("intents", "banking77", "validation", val_fraction=val_fraction, oos_source="clinc150")
    test = load_eval_data("intents", "banking77", "test", val_fraction=val_fraction)
    sets = {"val": _subsample(val.examples, limit, seed) + _subsample(val.oos, limit, seed),
            "test": _subsample(test.examples, limit, seed)}
    data: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for split, examples in sets.items():
        features = classifier.encode([ex.text for ex in examples])
        data[f"{split}_features"] = features.numpy()
        data[f"{split}_labels"] = np.array([classifier.labels.index(ex.label) for ex in examples])
        data[f"{split}_exact"], _ = capture(classifier, features, "exact")
        data[f"{split}_noisy"], seconds[split] = capture(classifier, features, backend)
    n_val = min(limit, len(val.examples))
    head = classifier.head.eval()
    return {"backend": backend, "limit": limit, "seed": seed, "val_queries": n_val,
            "val_oos_queries": len(sets["val"]) - n_val, "test_queries": len(sets["test"]),
            "noisy_seconds": seconds, "results": corrections(head, data, n_val)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m eval.noise_corrections", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=DEFAULT_BACKEND)
    parser.add_argument("--limit", type=int, default=200, help="validation and test queries (seeded subsamples)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = run(args.backend, args.limit, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "noise_corrections.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"| correction (fitted on {report['val_queries']} validation queries) | validation accuracy | "
          f"test accuracy ({report['test_queries']} queries) |")
    print("|---|---:|---:|")
    for name, row in report["results"].items():
        print(f"| {name} | {row['val']:.3f} | {row['test']:.3f} |")
    return report


if __name__ == "__main__":
    main()
