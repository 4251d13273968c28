"""The benchmark problem every simulator row runs: the bench circuit with seeded inputs, weights
and loss coefficients (``agent bench quantum``, ours and the peers alike)."""

from __future__ import annotations

import numpy as np

def bench_problem(n_qubits: int, depth: int, readout: str, batch: int, seed: int) -> tuple:
    """The benchmark circuit and seeded inputs, weights and loss coefficients."""
    import torch

    from finetune.quantum.ansatz import AnsatzConfig, build_ansatz

    config = AnsatzConfig(n_qubits=n_qubits, depth=depth, readout=readout)
    rng = np.random.default_rng(seed)
    # float32 from the start: TorchConnector casts inputs and weights to float32, so both sides
    # see exactly the same numbers.
    inputs = rng.uniform(-np.pi, np.pi, size=(batch, config.n_inputs)).astype(np.float32)
    weights = rng.uniform(-np.pi, np.pi, size=config.n_weights).astype(np.float32)
    # A weighted sum of the outputs as the loss: for the probs readout a plain sum is the
    # constant 1, whose gradient is zero and would compare nothing.
    coefficients = torch.as_tensor(rng.uniform(0.5, 1.5, size=config.n_outputs), dtype=torch.float32)
    return config, build_ansatz(config), inputs, weights, coefficients
