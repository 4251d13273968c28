import builtins

import pytest

from eval.bench import format_results, run_quantum_benchmarks
from eval.bench_peers import INSTALL_HINT, peers_available


def test_without_pennylane_the_peers_rows_say_how_to_get_them(monkeypatch):
    real_import = builtins.__import__

    def no_pennylane(name, *args, **kwargs):
        if name.startswith("pennylane"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pennylane)
    assert peers_available() == INSTALL_HINT
    results = run_quantum_benchmarks(n_qubits=2, depth=1, batch=4, include_aer=False, include_torchconnector=False,
                                     peers=True, progress=False)
    assert results["peers_missing"] == INSTALL_HINT
    assert set(results) == {"peers_missing", "exact"}  # our own row is always timed
    assert "pip install -e '.[bench]'" in format_results(results)


@pytest.mark.slow
def test_pennylane_rows_agree_with_ours_on_a_small_circuit():
    pytest.importorskip("pennylane")
    pytest.importorskip("pennylane_lightning")
    from eval.bench_peers import bench_peers

    result = bench_peers(n_qubits=3, depth=1, batch=4, repeats=1, lightning_repeats=1)
    names = [row["name"] for row in result["rows"]]
    assert names == [
        "qagent exact (complex64)",
        "qagent exact (complex128)",
        "qagent complex path (complex64)",
        "default.qubit backprop, broadcast",
        "lightning.qubit adjoint",
    ]
    for row in result["rows"]:
        assert row["max_abs_output_diff"] < 1e-5 and row["max_abs_grad_diff"] < 1e-5, row
    assert result["torch_threads"] == 1
    assert result["speedup_vs_fastest_peer"] > 0 and result["speedup_vs_fastest_peer_min"] > 0
