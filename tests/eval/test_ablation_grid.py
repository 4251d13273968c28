"""The regime × seed × head ablation: sampling, splits, scores, intervals, resume (tiny fake features)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from eval.ablation_grid import (
    NLUPP_REGIME,
    GridConfig,
    Split,
    banking_split,
    format_summary,
    head_configs,
    k_shot,
    micro_f1_at_half,
    nlupp_split,
    run_grid,
    score,
    summarize,
    t_interval,
)
from finetune.models.heads import Head, HeadConfig, count_parameters
from finetune.quantum.ansatz import AnsatzConfig
from finetune.training.trainer import TrainingArguments

SMALL = HeadConfig(in_features=8, n_classes=3, n_circuits=1,
                   ansatz=AnsatzConfig(n_qubits=2, depth=1, encoding="amplitude", readout="probs"))


def test_k_shot_draws_k_per_class_and_depends_on_the_seed():
    labels = torch.tensor([0] * 20 + [1] * 20 + [2] * 3)
    chosen = k_shot(labels, 5, seed=0)
    counts = np.bincount(labels[chosen].numpy())
    assert counts.tolist() == [5, 5, 3]  # a class with fewer gives all it has
    assert len(set(chosen.tolist())) == len(chosen)
    assert not torch.equal(chosen, k_shot(labels, 5, seed=1))
    assert torch.equal(chosen, k_shot(labels, 5, seed=0))


def test_full_keeps_every_training_row_and_shots_keep_validation_and_test_whole():
    x = {side: torch.randn(n, 4) for side, n in (("train", 30), ("validation", 7), ("test", 9))}
    y = {side: torch.arange(len(v)) % 3 for side, v in x.items()}
    assert len(banking_split(x, y, "full", 0).x["train"]) == 30
    few = banking_split(x, y, "2", 0)
    assert len(few.x["train"]) == 6 and len(few.x["validation"]) == 7 and len(few.x["test"]) == 9


def test_nlupp_20_fold_trains_on_one_fold_validates_on_the_next_and_tests_on_the_rest():
    features = [torch.full((2, 3), float(k)) for k in range(20)]
    labels = [torch.zeros(2, 4) for _ in range(20)]
    split = nlupp_split(features, labels, seed=19)
    assert split.multi_label
    assert split.x["train"][0, 0] == 19 and split.x["validation"][0, 0] == 0
    assert sorted(set(split.x["test"][:, 0].tolist())) == list(range(1, 19))


def test_the_entanglement_free_head_is_the_quantum_head_without_entanglers():
    configs = head_configs(SMALL)
    assert configs["quantum-noent"].ansatz.entangler == "none"
    assert configs["quantum"].ansatz.entangler != "none"
    assert count_parameters(Head(configs["quantum-noent"])) == count_parameters(Head(configs["quantum"]))
    for row, target in (("mlp=quantum", "quantum"), ("mlp=hybrid", "hybrid")):
        mlp, quantum = count_parameters(Head(configs[row])), count_parameters(Head(configs[target]))
        assert abs(mlp - quantum) <= 8 + 3 + 1  # one hidden unit's worth


def test_t_interval_matches_the_textbook_value():
    mean, half = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # sd = 1.5811, t(0.975, 4) = 2.7764: 2.7764 * 1.5811 / sqrt(5) = 1.9632
    assert mean == 3.0 and half == pytest.approx(1.9632, abs=1e-4)
    assert t_interval([0.7]) == (0.7, 0.0)


def test_multi_label_scores_are_exact_match_and_micro_f1():
    truth = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    logits = torch.tensor([[2.0, -1.0, 3.0], [1.0, 1.0, -1.0]])  # row 2 predicts one intent too many
    split = Split({"test": torch.zeros(2, 1)}, {"test": truth}, multi_label=True)
    scores = score(split, logits)
    assert scores["accuracy"] == 0.5
    assert scores["micro_f1"] == pytest.approx(2 * 3 / (4 + 3))
    assert micro_f1_at_half(truth.numpy(), logits.numpy()) == scores["micro_f1"]


def test_grid_config_refuses_bad_settings():
    with pytest.raises(ValueError, match="shots must be"):
        GridConfig(shots=("ten",))
    with pytest.raises(ValueError, match="unknown ablation rows"):
        GridConfig(rows=("linear", "transformer"))
    with pytest.raises(ValueError, match="seeds must be"):
        GridConfig(seeds=0)
    assert GridConfig(shots=("full", "10")).regimes == ["banking77-10shot", NLUPP_REGIME, "banking77-full"]


def test_run_grid_trains_every_cell_writes_the_report_and_resumes(tmp_path):
    generator = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 8, generator=generator) * 3

    def data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(n) % 3
        return centers[y] + torch.randn(n, 8, generator=generator), y

    x, y = {}, {}
    for side, n in (("train", 60), ("validation", 15), ("test", 30)):
        x[side], y[side] = data(n)
    config = GridConfig(shots=("5", "full"), nlupp=False, seeds=2, rows=("linear", "quantum-noent"))
    args = TrainingArguments(epochs=20, batch_size=8, lr=0.05, progress=False)
    seen = []
    features = lambda regime: (lambda seed: banking_split(x, y, regime.removeprefix("banking77-").removesuffix("shot"), seed))
    report = run_grid(config, out=tmp_path, features=features, head=SMALL, args=args, on_run=seen.append)
    assert len(seen) == 2 * 2 * 2
    assert (tmp_path / "ablation_grid.png").is_file()
    stored = json.loads((tmp_path / "ablation_grid.json").read_text())
    assert len(stored["runs"]) == 8 and stored["summary"] == report["summary"]
    line = next(s for s in report["summary"] if s["regime"] == "banking77-full" and s["head"] == "linear")
    assert line["seeds"] == [0, 1] and line["accuracy"]["mean"] > 0.6  # separable clusters
    assert {run["train_examples"] for run in seen if run["regime"] == "banking77-5shot"} == {15}
    assert "banking77-5shot | linear" in format_summary(report["summary"])
    again = []
    run_grid(config, out=tmp_path, features=features, head=SMALL, args=args, on_run=again.append)
    assert again == []  # every cell was already there


def test_paired_differences_compare_heads_seed_by_seed():
    from eval.ablation_grid import format_differences, paired_differences

    runs = [{"regime": "banking77-10shot", "seed": s, "head": h, "accuracy": acc, "macro_f1": acc / 2}
            for s, (q, m) in enumerate([(0.80, 0.78), (0.90, 0.88), (0.70, 0.68)])
            for h, acc in (("quantum", q), ("mlp=quantum", m))]
    (row,) = paired_differences(runs)
    assert (row["head"], row["baseline"], row["seeds"]) == ("quantum", "mlp=quantum", [0, 1, 2])
    # Seed-to-seed spread is large, yet every seed shows +2 points: the paired interval is ~0.
    assert row["accuracy_difference"]["mean"] == pytest.approx(0.02)
    assert row["accuracy_difference"]["ci95"] == pytest.approx(0.0, abs=1e-9)
    assert row["f1_difference"]["mean"] == pytest.approx(0.01) and row["f1_difference"]["metric"] == "macro_f1"
    assert "quantum − mlp=quantum | 3 | +2.00 ± 0.00 | +1.00 ± 0.00" in format_differences([row])
