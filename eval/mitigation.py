"""What error mitigation buys on Aer with a device noise model, before any QPU time is spent.

Run: ``python -m eval.mitigation [--noise fake_sherbrooke] [--shots 1024] [--queries 25] [--out DIR]``

Two heads, their circuits run at the parameter values they really see:

- ``demo``: the two-moons head of ``agent demo quantum`` (2 qubits, ⟨Z⟩ readout), trained on the
  exact backend as the demo trains it, at its test points;
- ``intents``: the shipped intents head (6 qubits, 4 circuits per query, probability readout),
  at a seeded sample of BANKING77 test queries.

Each circuit runs on the exact backend and on the noisy one four ways: no mitigation, readout
mitigation (``readout=m3``), zero-noise extrapolation (``zne=…``) and both. The error is the mean
|⟨Z_i⟩ noisy − ⟨Z_i⟩ exact| over every qubit of every circuit (for the probability readout,
⟨Z_i⟩ = Σ_x p(x)(1 − 2 x_i)). The cost columns count circuits and shots per circuit row, and
M3's one-off calibration circuits. Writes ``mitigation.json`` and ``mitigation.png``.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

DEFAULT_OUT = Path("qagent-eval/mitigation")


@dataclass(frozen=True)
class MitigationConfig:
    """Settings of the measurement.

    Args:
        noise: Fake IBM device whose noise model Aer uses.
        shots: Shots per circuit.
        zne: Noise scale factors of zero-noise extrapolation.
        zne_fit: ``linear`` or ``richardson``.
        queries: BANKING77 test queries run through the intents head (seeded sample).
        seed: Seed of the sample, the demo's training and the simulators.
    """

    noise: str = "fake_sherbrooke"
    shots: int = 1024
    zne: tuple[int, ...] = (1, 3, 5)
    zne_fit: str = "linear"
    queries: int = 25
    seed: int = 0

    def __post_init__(self) -> None:
        if self.queries < 1:
            raise ValueError(f"queries must be >= 1, got {self.queries}")
        from finetune.quantum.device import parse_backend

        for spec in self.specs().values():
            parse_backend(spec)  # one-line error for a bad device, shots or scale factors

    def specs(self) -> dict[str, str]:
        """The four noisy variants, by name."""
        from finetune.quantum.device import format_scales

        base = f"aer:noise={self.noise},shots={self.shots}"
        zne = f"zne={format_scales(self.zne)},zne_fit={self.zne_fit}"
        return {"none": base, "readout (M3)": f"{base},readout=m3", "ZNE": f"{base},{zne}",
                "readout + ZNE": f"{base},readout=m3,{zne}"}


def capture_circuit_inputs(head: torch.nn.Module, features: torch.Tensor) -> list[tuple[Any, np.ndarray]]:
    """``(ansatz, values [B, P])`` of every circuit layer of ``head`` when it reads ``features``."""
    from finetune.models.heads import QuantumBranch

    captured: list[tuple[Any, np.ndarray]] = []

    def hook(branch: QuantumBranch):  # the branch's circuit module is exact, Aer or IBM alike
        return lambda module, args: captured.append(
            (branch.ansatz, branch.circuit_values(args[0]).detach().double().numpy())
        )

    hooks = [branch.register_forward_pre_hook(hook(branch))
             for branch in head.modules() if isinstance(branch, QuantumBranch)]
    try:
        with torch.no_grad():
            head.eval()
            head(features)
    finally:
        for hook in hooks:
            hook.remove()
    if not captured:
        raise ValueError("the head has no quantum circuit to measure")
    return captured


def z_expectations(ansatz: Any, readout: np.ndarray) -> np.ndarray:
    """``[B, n_qubits]`` ⟨Z_i⟩ from a readout: as is for ``z``, from the distribution for ``probs``."""
    kind = ansatz.config.readout
    if kind == "z":
        return readout
    if kind != "probs":
        raise ValueError(f"readout {kind!r} is not measured here (z or probs)")
    n = ansatz.n_qubits
    signs = np.array([[1 - 2 * ((x >> i) & 1) for i in range(n)] for x in range(2**n)], dtype=np.float64)
    return readout @ signs


def measure_head(name: str, circuits: list[tuple[Any, np.ndarray]], specs: dict[str, str]) -> dict[str, Any]:
    """The error and cost of each mitigation variant on one head's circuits."""
    from finetune.quantum.backends import get_backend

    exact = get_backend("exact")
    reference = [z_expectations(ansatz, exact.expectations(ansatz, values)) for ansatz, values in circuits]
    rows = sum(values.shape[0] for _, values in circuits)
    result: dict[str, Any] = {"head": name, "circuit_rows": rows, "qubits": circuits[0][0].n_qubits,
                              "readout": circuits[0][0].config.readout, "variants": {}}
    for variant, spec in specs.items():
        backend = get_backend(spec)
        start = time.perf_counter()
        errors = [np.abs(z_expectations(ansatz, backend.expectations(ansatz, values)) - ref).ravel()
                  for (ansatz, values), ref in zip(circuits, reference)]
        seconds = time.perf_counter() - start
        compiled = [backend.compiled(ansatz) for ansatz, _ in circuits]
        mitigators = {id(c.mitigator): c.mitigator for c in compiled if c.mitigator is not None}
        per_row = backend.circuits_per_row()
        everything = np.concatenate(errors)
        result["variants"][variant] = {
            "backend": spec,
            "mean_abs_z_error": round(float(everything.mean()), 5),
            "max_abs_z_error": round(float(everything.max()), 5),
            "circuits_per_row": per_row,
            "shots_per_row": per_row * backend.shots,
            "calibration_circuits": sum(m.calibration_circuits for m in mitigators.values()),
            "calibration_shots": sum(m.calibration_shots for m in mitigators.values()),
            "seconds": round(seconds, 2),
        }
    return result


def demo_circuits(config: MitigationConfig) -> list[tuple[Any, np.ndarray]]:
    """The demo head trained on exact (as ``agent demo quantum`` trains it), at its test points."""
    from eval.demo import DemoConfig, moons
    from finetune.models.heads import Head
    from finetune.training.trainer import Trainer, TrainingArguments

    demo = DemoConfig(backends=("exact",), seed=config.seed, progress=False)
    data = moons(demo.n_samples, demo.seed)
    torch.manual_seed(demo.seed)
    head = Head(demo.head_config(), backend="exact")
    args = TrainingArguments(epochs=demo.epochs, batch_size=demo.batch_size, lr=demo.lr, patience=demo.epochs,
                             seed=demo.seed, progress=False)
    Trainer(head, args).fit(*data["train"], *data["validation"])
    return capture_circuit_inputs(head, data["test"][0])


def intents_circuits(config: MitigationConfig, data_dir: str | Path | None = None) -> list[tuple[Any, np.ndarray]]:
    """The shipped intents head at a seeded sample of BANKING77 test queries."""
    from agent.shipped import INTENTS_MODEL
    from finetune.data.loaders import load_intents
    from finetune.models.classifier import TextClassifier

    classifier = TextClassifier.load(INTENTS_MODEL)
    test = load_intents("banking77", data_dir=data_dir).test
    pick = np.random.default_rng(config.seed).choice(len(test), size=min(config.queries, len(test)), replace=False)
    features = classifier.encode([test[int(i)].text for i in sorted(pick)])
    return capture_circuit_inputs(classifier.head, features)


def run_mitigation(config: MitigationConfig, out: str | Path | None = None,
                   data_dir: str | Path | None = None) -> dict[str, Any]:
    """Measure both heads (see the module docstring); write the JSON and the plot into ``out``."""
    specs = config.specs()
    heads = {"demo": measure_head("demo", demo_circuits(config), specs),
             "intents": measure_head("intents", intents_circuits(config, data_dir), specs)}
    report = {"config": {**config.__dict__, "zne": list(config.zne)}, "heads": heads}
    if out is not None:
        _write(report, Path(out))
    return report


def _write(report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from eval.reports import write_report

    write_report(out, "mitigation", report)
    heads = list(report["heads"])
    variants = list(next(iter(report["heads"].values()))["variants"])
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(variants)
    for i, variant in enumerate(variants):
        values = [report["heads"][h]["variants"][variant]["mean_abs_z_error"] for h in heads]
        ax.bar(np.arange(len(heads)) + i * width, values, width, label=variant)
    ax.set_xticks(np.arange(len(heads)) + width * (len(variants) - 1) / 2, heads)
    ax.set_ylabel("mean |⟨Z⟩ noisy − exact|")
    ax.set_title(f"Error mitigation on aer:noise={report['config']['noise']},shots={report['config']['shots']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "mitigation.png", dpi=120)
    plt.close(fig)


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'head':<8}{'mitigation':<16}{'mean |dZ|':>10}{'circuits/row':>14}{'shots/row':>11}"
             f"{'M3 cal. circuits':>18}{'seconds':>9}"]
    for name, head in report["heads"].items():
        for variant, row in head["variants"].items():
            lines.append(f"{name:<8}{variant:<16}{row['mean_abs_z_error']:>10.4f}{row['circuits_per_row']:>14}"
                         f"{row['shots_per_row']:>11}{row['calibration_circuits']:>18}{row['seconds']:>9.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", default="fake_sherbrooke")
    parser.add_argument("--shots", type=int, default=1024)
    parser.add_argument("--zne", default="1,3,5", help="noise scale factors, e.g. 1,3,5")
    parser.add_argument("--zne-fit", default="linear", choices=("linear", "richardson"))
    parser.add_argument("--queries", type=int, default=25, help="BANKING77 test queries for the intents head")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        scales = tuple(int(part) for part in args.zne.split(","))
        config = MitigationConfig(noise=args.noise, shots=args.shots, zne=scales, zne_fit=args.zne_fit,
                                  queries=args.queries, seed=args.seed)
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")
    report = run_mitigation(config, args.out, args.data_dir)
    print(format_report(report))
    print(f"\nreport: {args.out / 'mitigation.json'}, plot: {args.out / 'mitigation.png'}")
    return report


if __name__ == "__main__":
    main()
