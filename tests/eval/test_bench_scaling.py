import json

import pytest
from typer.testing import CliRunner

from agent.cli import app
from eval.bench_scaling import bench_scaling, format_scaling


def test_a_small_sweep_writes_json_and_png_with_every_point(tmp_path):
    result = bench_scaling(tmp_path, qubits=(2, 3), batches=(1, 2), repeats=1, peers=False)
    saved = json.loads((tmp_path / "scaling.json").read_text())
    assert (tmp_path / "scaling.png").read_bytes()[:4] == b"\x89PNG"
    assert saved["rows"] == ["qagent complex64", "qagent complex128"]
    assert [(p["qubits"], p["batch"]) for p in saved["by_qubits"]] == [(2, 64), (3, 64)]
    assert [(p["qubits"], p["batch"]) for p in saved["by_batch"]] == [(6, 1), (6, 2)]
    for point in saved["by_qubits"] + saved["by_batch"]:
        assert set(point["ms"]) == {"qagent complex64", "qagent complex128"}
        assert all(ms > 0 for ms in point["ms"].values())
    memory = saved["peak_step_memory_mib"]
    assert memory["qubits"] == 3 and set(memory["rows"]) == set(saved["rows"])
    assert "ms per step by qubits (batch 64)" in format_scaling(result)


def test_a_row_past_the_time_limit_is_capped_for_the_larger_points(tmp_path):
    result = bench_scaling(tmp_path, qubits=(2, 3), batches=(1,), repeats=1, time_limit_s=1e-9, peers=False)
    first, second = result["by_qubits"]
    assert set(first["ms"]) == {"qagent complex64", "qagent complex128"}
    assert second["ms"] == {}
    assert second["skipped"]["qagent complex64"].startswith("capped: a smaller point took over")


def test_scaling_refuses_a_bad_time_limit_in_one_line(tmp_path):
    result = CliRunner().invoke(app, ["bench", "quantum", "--scaling", "--time-limit", "0", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "time limit > 0" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_recipe_bench_times_both_heads_on_the_same_batches(data_dir):
    from eval.bench_recipe import bench_recipe_heads, format_recipe

    result = bench_recipe_heads(steps=2, batch_size=4, data_dir=data_dir)
    assert [r["name"] for r in result["rows"]] == ["lora+hybrid", "lora+linear"]
    assert all(r["steps"] == 2 and r["median_ms"] > 0 for r in result["rows"])
    assert "hybrid / linear" in format_recipe(result)
