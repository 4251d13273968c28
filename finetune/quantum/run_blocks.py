"""Fused one-qubit runs as real 4x4 blocks, built from the parameters in a few batched operations.

A run such as ``ry(x) · ry(w) · rz(v)`` on one qubit is one 2x2 unitary per example. Written
as a 4x4 real block ``[[Re, -Im], [Im, Re]]`` it is what :mod:`finetune.quantum.real_engine`
applies. Building it by multiplying the gates' matrices example by example costs one tiny
batched product per gate; instead, at compile time:

* neighbouring rotations about the same axis merge into one (``ry(a) ry(b) = ry(a + b)``: the
  angle is still affine in the parameters, so it is one more column of the angle matrix);
* every rotation is ``cos(θ/2)·C + sin(θ/2)·S``, so a run of ``L`` rotations (with any fixed
  gates between them) expands into ``2**L`` constant matrices weighted by products of cosines
  and sines; the constant matrices are multiplied once, here.

At run time a step is then one angle product, one cos/sin, one gather-and-product for the
weights and one batched matrix product for all runs together. Runs longer than
``MAX_EXPANDED`` rotations are split into segments multiplied at run time.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

ROTATIONS = ("rx", "ry", "rz")
# 2**4 = 16 weighted constant matrices per segment at most: past that, one more batched product
# per extra segment is cheaper than doubling the terms again.
MAX_EXPANDED = 4
MAX_GROUP_TERMS = 64
_COS = np.eye(2, dtype=complex)
_SIN = {
    "rx": np.array([[0, -1j], [-1j, 0]]),
    "ry": np.array([[0, -1], [1, 0]], dtype=complex),
    "rz": np.array([[-1j, 0], [0, 1j]]),
}


def supported(run_ops: list) -> bool:
    """True when every gate of the run is a rotation (rx, ry, rz) or a fixed gate."""
    return all(op.matrix is not None or op.name in ROTATIONS for op in run_ops)


def real_block(matrix: np.ndarray) -> np.ndarray:
    """``[..., 2, 2]`` complex → ``[..., 4, 4]`` real ``[[Re, -Im], [Im, Re]]``."""
    re, im = matrix.real, matrix.imag
    return np.concatenate([np.concatenate([re, -im], -1), np.concatenate([im, re], -1)], -2)


class RunBlocks:
    """Compiled builder of the blocks of every one-qubit run of a circuit.

    Args:
        runs: Each run's gates in application order (objects with ``name``, ``matrix`` (a
            complex tensor for fixed gates, else None) and ``angle_slice``); every run must
            pass :func:`supported`.
        coeffs: ``[P, A]`` angle matrix (angle = values @ coeffs + offsets).
        offsets: ``[A]``.
        real_dtype: ``torch.float32`` or ``torch.float64``.
    """

    def __init__(self, runs: list[list], coeffs: np.ndarray, offsets: np.ndarray, real_dtype: torch.dtype) -> None:
        columns: list[np.ndarray] = []  # merged angle columns: coefficient rows
        column_offsets: list[float] = []
        segments: list[list] = []  # per segment: [("rot", name, column) | ("fixed", matrix)]
        self.segment_of_run: list[list[int]] = []
        for run in runs:
            merged: list = []
            for op in run:
                if op.matrix is not None:
                    merged.append(["fixed", op.matrix.numpy().astype(complex)])
                    continue
                a = op.angle_slice.start
                if merged and merged[-1][0] == "rot" and merged[-1][1] == op.name:
                    merged[-1][2] += coeffs[:, a]
                    merged[-1][3] += offsets[a]
                else:
                    merged.append(["rot", op.name, coeffs[:, a].copy(), float(offsets[a])])
            own: list[int] = []
            current: list = []
            count = 0
            for item in merged:
                if item[0] == "rot" and count == MAX_EXPANDED:
                    own.append(len(segments))
                    segments.append(current)
                    current, count = [], 0
                if item[0] == "rot":
                    current.append(("rot", item[1], len(columns)))
                    columns.append(item[2])
                    column_offsets.append(item[3])
                    count += 1
                else:
                    current.append(("fixed", item[1]))
            own.append(len(segments))
            segments.append(current)
            self.segment_of_run.append(own)
        n_params = coeffs.shape[0]
        self.coeffs = torch.as_tensor(np.stack(columns, 1) if columns else np.zeros((n_params, 0)), dtype=real_dtype)
        self.offsets = torch.as_tensor(np.array(column_offsets, dtype=float), dtype=real_dtype)
        n_columns = len(columns)
        longest = max((sum(kind == "rot" for kind, *_ in seg) for seg in segments), default=0)
        terms = 2**longest
        # trig is laid out [cos of every column, sin of every column, 1]: index 2A is the one.
        one = 2 * n_columns
        index = np.full((len(segments), terms, max(longest, 1)), one, dtype=np.int64)
        basis = np.zeros((len(segments), terms, 2, 2), dtype=complex)
        for s, seg in enumerate(segments):
            rotations = [item for item in seg if item[0] == "rot"]
            for k, bits in enumerate(itertools.product((0, 1), repeat=len(rotations))):
                matrix = np.eye(2, dtype=complex)
                r = 0
                for item in seg:
                    if item[0] == "fixed":
                        gate = item[1]
                    else:
                        gate = _SIN[item[1]] if bits[r] else _COS
                        index[s, k, r] = item[2] + n_columns * bits[r]
                        r += 1
                    matrix = gate @ matrix
                basis[s, k] = matrix
        self.index = torch.as_tensor(index)
        self._complex_basis = basis  # [S, K, 2, 2]
        self.basis = torch.as_tensor(real_block(basis).reshape(len(segments), terms, 16), dtype=real_dtype)
        self.real_dtype = real_dtype
        self.terms = terms
        self.chained = any(len(own) > 1 for own in self.segment_of_run)
        self.groups: dict[int, list[tuple[int, ...]]] = {}
        self._group_basis: dict[int, torch.Tensor] = {}

    def max_group(self, cap: int = 2) -> int:
        """Most neighbouring runs (up to ``cap``) one block may join: their Kronecker product
        has terms**g weighted matrices, kept to 64 (beyond that, building the block costs more
        than the register operations it saves); none when runs are chained."""
        if self.chained:
            return 1
        group = 1
        while group < cap and self.terms ** (group + 1) <= MAX_GROUP_TERMS:
            group += 1
        return group

    def set_groups(self, groups: dict[int, list[tuple[int, ...]]]) -> None:
        """Blocks to build, per group size: run indices of each group, highest qubit first."""
        if self.chained and set(groups) - {1}:
            raise ValueError("chained runs cannot be grouped")
        self.groups = {g: list(members) for g, members in groups.items()}
        for g, members in self.groups.items():
            if g == 1:
                continue
            bases = []
            for group in members:
                basis = self._complex_basis[group[0]]
                for run in group[1:]:
                    other = self._complex_basis[run]
                    basis = np.einsum("aij,bkl->abikjl", basis, other).reshape(
                        basis.shape[0] * other.shape[0], basis.shape[1] * 2, basis.shape[2] * 2
                    )
                bases.append(real_block(basis).reshape(basis.shape[0], -1))
            self._group_basis[g] = torch.as_tensor(np.stack(bases), dtype=self.real_dtype)

    def __call__(self, values: torch.Tensor) -> dict[int, torch.Tensor]:
        """Per group size g, blocks ``[G, B, 2**(g+1), 2**(g+1)]`` in :meth:`set_groups` order."""
        batch = values.shape[0]
        half = (values.to(self.real_dtype) @ self.coeffs + self.offsets) / 2
        ones = torch.ones((batch, 1), dtype=self.real_dtype)
        trig = torch.cat([torch.cos(half), torch.sin(half), ones], 1)  # [B, 2A + 1]
        factors = trig[:, self.index]  # [B, S, K, L]
        # Explicit products: prod's backward (division-safe) cost several times more.
        weights = factors[..., 0]
        for j in range(1, factors.shape[-1]):
            weights = weights * factors[..., j]  # [B, S, K]
        out: dict[int, torch.Tensor] = {}
        for g, members in self.groups.items():
            if g > 1:
                table = torch.as_tensor(members)  # [G, g]
                w = weights[:, table[:, 0]]
                for j in range(1, g):
                    w = (w[..., :, None] * weights[:, table[:, j], None, :]).flatten(-2)
                blocks = torch.matmul(w.transpose(0, 1), self._group_basis[g])  # [G, B, d*d]
                d = 2 ** (g + 1)
                out[g] = blocks.reshape(len(members), batch, d, d)
                continue
            runs = [group[0] for group in members]
            if not self.chained:
                index = torch.as_tensor(runs)
                out[1] = torch.matmul(weights[:, index].transpose(0, 1), self.basis[index]).reshape(len(runs), batch, 4, 4)
                continue
            blocks = torch.matmul(weights.transpose(0, 1), self.basis).reshape(len(self.basis), batch, 4, 4)
            products = []
            for run in runs:
                own = self.segment_of_run[run]
                product = blocks[own[0]]
                for s in own[1:]:
                    product = blocks[s] @ product
                products.append(product)
            out[1] = torch.stack(products)
        return out
