"""Tests for eval.bench: the exact-vs-TorchConnector benchmark runs and its numbers agree.

No timing assertions: speed is what the benchmark reports, never what a test checks.
"""

from __future__ import annotations

import json

import pytest

from eval.bench import bench_exact_vs_torchconnector, format_table


@pytest.fixture(scope="module")
def tiny_result() -> dict:
    return bench_exact_vs_torchconnector(n_qubits=2, depth=1, batch=4, repeats=2, reference_repeats=1)


def test_tiny_bench_reports_every_field_as_json(tiny_result):
    for key in (
        "ours_ms",
        "torchconnector_ms",
        "speedup",
        "max_abs_grad_diff",
        "max_abs_output_diff",
        "config",
        "torch_threads",
        "versions",
        "repeats",
    ):
        assert key in tiny_result
    assert tiny_result["config"]["n_qubits"] == 2 and tiny_result["batch"] == 4
    assert tiny_result["repeats"] == 2
    assert set(tiny_result["versions"]) >= {"qiskit", "qiskit-machine-learning", "torch"}
    assert tiny_result["ours_ms"] > 0 and tiny_result["torchconnector_ms"] > 0
    assert json.loads(json.dumps(tiny_result)) == tiny_result


def test_tiny_bench_gradients_and_outputs_agree_with_parameter_shift(tiny_result):
    assert tiny_result["max_abs_grad_diff"] < 1e-5
    assert tiny_result["max_abs_output_diff"] < 1e-5


@pytest.mark.parametrize("readout", ["zz", "probs"])
def test_bench_agrees_for_other_readouts(readout):
    result = bench_exact_vs_torchconnector(n_qubits=2, depth=1, batch=2, readout=readout, repeats=1, reference_repeats=1)
    assert result["max_abs_grad_diff"] < 1e-5
    assert result["max_abs_output_diff"] < 1e-5


def test_format_table_shows_one_row_per_result(tiny_result):
    table = format_table([tiny_result, tiny_result])
    lines = table.splitlines()
    assert "speed-up" in lines[0] and "TorchConnector ms" in lines[0]
    assert len(lines) == 5  # header, rule, two rows, footer
    assert f"{tiny_result['speedup']:.0f}x" in lines[2]
    assert "qiskit-machine-learning" in lines[-1]


def test_bench_refuses_zero_repeats():
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        bench_exact_vs_torchconnector(n_qubits=1, depth=1, batch=1, repeats=0)


@pytest.mark.parametrize("aer", ["--no-aer", "--aer"])
def test_our_rows_print_without_torchconnector(aer):
    from typer.testing import CliRunner

    from agent.cli import app

    result = CliRunner().invoke(app, ["bench", "quantum", "--no-torchconnector", aer, "--qubits", "2", "--depth", "1",
                                      "--batch", "4", "--aer-batch", "2"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    (row,) = [line for line in lines if line.split()[:4] == ["2", "1", "4", "z"]]
    assert float(row.split()[4]) > 0 and row.split()[5:] == ["-"] * 4  # ours timed, TorchConnector not
    assert "TorchConnector: not timed" in result.stdout
    aer_rows = [line for line in lines if line.startswith("training step on aer")]
    assert len(aer_rows) == (2 if aer == "--aer" else 0)
    assert all("ours" in line and "TorchConnector not timed" in line for line in aer_rows)
