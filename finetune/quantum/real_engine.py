"""The compiled circuit run in real arithmetic, with a hand-written adjoint backward.

Torch's CPU kernels for complex numbers are several times slower per element than its real
ones, and autograd adds a node (and its bookkeeping) per tensor operation. For circuits made of
one-qubit runs and fixed gates (every ansatz of :mod:`finetune.quantum.ansatz`) this module
runs the same compiled program on a real ``[B, 2, 2**n]`` tensor (real and imaginary parts)
in as few, large operations as it can:

* each fused one-qubit run is its 2x2 complex matrix written as a 4x4 real block
  ``[[Re, -Im], [Im, Re]]``, applied to the top qubit of the register as one batched matrix
  product ``[B, 4, 4] @ [B, 4, 2**(n-1)]``; the register is rotated by one bit between
  qubits (a copy), so every qubit takes its turn on top;
* a run of fixed gates that only permutes basis states (CX rings, X, SWAP, Toffoli) is one
  index gather, with the pending rotation folded into the same index; other fixed runs are one
  real matrix product;
* backward walks the program in reverse (the adjoint method): every step is unitary, so the
  state before a step is recomputed from the state after it, in the same operation that carries
  the gradient back. Memory stays at a few states whatever the depth.

The simulator in :mod:`finetune.quantum.simulate` compiles the circuit and builds the 4x4
blocks (differentiably, from the angles); this module only executes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


# Forward keeps the blocks' inputs for backward up to this size (a batch of 64 on 6 qubits at
# depth 3 needs 0.4 MB); past it, backward recomputes them (the adjoint method: a few states
# whatever the depth, one more product per block).
KEEP_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Instruction:
    """One runtime operation: ``rot`` (rotate the register by ``amount`` bits), ``block``
    (apply block ``index`` of the blocks on ``amount`` qubits to that many top qubits), ``gather`` (``index`` is a tensor of source
    positions, ``inverse`` its inverse) or ``dense`` (``index`` is a real ``[2N, 2N]`` matrix
    applied on the right of the flattened state)."""

    kind: str
    amount: int = 0
    index: object = None
    inverse: object = None


def is_permutation(matrix: np.ndarray) -> bool:
    """True when every row and column holds exactly one 1 and zeros elsewhere."""
    ones = np.isclose(matrix, 1.0, atol=1e-12)
    zeros = np.isclose(matrix, 0.0, atol=1e-12)
    return bool(np.all(ones | zeros) and np.all(ones.sum(0) == 1) and np.all(ones.sum(1) == 1))


def gate_permutation(matrix: np.ndarray, qubits: tuple[int, ...], n: int) -> np.ndarray:
    """Source positions on the full register of a permutation gate on ``qubits``.

    ``out[i] = in[src[i]]``; the gate's matrix follows Qiskit's order (qarg 0 is the low bit).
    """
    sub_source = np.argmax(matrix, axis=1)  # row s reads column sub_source[s]
    i = np.arange(2**n)
    sub = np.zeros_like(i)
    for t, q in enumerate(qubits):
        sub |= ((i >> q) & 1) << t
    source_sub = sub_source[sub]
    src = i.copy()
    for t, q in enumerate(qubits):
        src &= ~(1 << q)
        src |= ((source_sub >> t) & 1) << q
    return src


class Program:
    """A list of :class:`Instruction` built from the simulator's compiled steps.

    ``steps`` is a list of ``("block", qubit, run_index)``, ``("perm", src)`` (``src`` a
    numpy array of source positions, ``out[i] = in[src[i]]``) and ``("dense", matrix)`` (the
    complex ``2**n x 2**n`` unitary). Consecutive one-qubit runs must act on distinct
    qubits (they commute); they are run from the highest qubit down, and runs on up to
    ``max_group`` neighbouring qubits are applied together as one block (the Kronecker
    product of theirs: one batched product and one rotation for the group instead of one per
    qubit). :attr:`groups` lists, per group size, the run indices of each group (highest
    qubit first): the blocks :meth:`run` takes, in that order.
    """

    def __init__(
        self, steps: list[tuple], n: int, real_dtype: torch.dtype, max_group: int = 1, keep_bytes: int = KEEP_BYTES
    ) -> None:
        self.n = n
        self.keep_bytes = keep_bytes
        self.instructions: list[Instruction] = []
        self.groups: dict[int, list[tuple[int, ...]]] = {}
        shift = 0  # logical bit p sits at physical bit (p + shift) % n
        pending: list[np.ndarray] = []  # composed gathers waiting to be emitted

        def logical_gather() -> np.ndarray:
            # Source positions (logical) of everything pending, composed in order.
            src = np.arange(2**n)
            for s in pending:
                src = src[s]
            return src

        def flush_to_logical() -> None:
            nonlocal shift
            if shift % n == 0 and not pending:
                return
            # Output logical i reads logical src[i], which sits at physical rotl(src[i], shift).
            physical = _rotl(logical_gather(), shift % n, n)
            self._gather(physical, real_dtype)
            pending.clear()
            shift = 0

        i = 0
        while i < len(steps):
            kind = steps[i][0]
            if kind == "block":
                run = []
                while i < len(steps) and steps[i][0] == "block":
                    run.append(steps[i])
                    i += 1
                if pending:
                    flush_to_logical()
                for group in _groups(sorted(run, key=lambda s: -s[1]), max_group):
                    amount = (n - 1 - group[0][1] - shift) % n
                    if amount:
                        self.instructions.append(Instruction("rot", amount=amount))
                        shift += amount
                    same_size = self.groups.setdefault(len(group), [])
                    self.instructions.append(Instruction("block", amount=len(group), index=len(same_size)))
                    same_size.append(tuple(r for _, _, r in group))
                continue
            if kind == "perm":
                pending.append(steps[i][1])
            else:  # dense
                flush_to_logical()
                unitary = torch.as_tensor(steps[i][1])
                self._dense(unitary, real_dtype)
            i += 1
        flush_to_logical()

    def _gather(self, src: np.ndarray, real_dtype: torch.dtype) -> None:
        inverse = np.empty_like(src)
        inverse[src] = np.arange(src.size)
        self.instructions.append(
            Instruction("gather", index=torch.as_tensor(src), inverse=torch.as_tensor(inverse))
        )

    def _dense(self, unitary: torch.Tensor, real_dtype: torch.dtype) -> None:
        # out = U @ psi on each row; flattened [re | im] rows times W give [re' | im'].
        ur, ui = unitary.real.T.to(real_dtype), unitary.imag.T.to(real_dtype)
        w = torch.cat([torch.cat([ur, ui], 1), torch.cat([-ui, ur], 1)], 0).contiguous()
        self.instructions.append(Instruction("dense", index=w, inverse=w.T.contiguous()))

    def keeps_states(self, batch: int, element_size: int) -> bool:
        """Whether forward keeps every block's input for backward (up to ``keep_bytes``)."""
        blocks = sum(ins.kind == "block" for ins in self.instructions)
        return batch * 2 ** (self.n + 1) * element_size * blocks <= self.keep_bytes

    def run(self, blocks: dict[int, torch.Tensor], initial: torch.Tensor) -> torch.Tensor:
        """Final state ``[B, 2, 2**n]`` from ``initial`` ``[B, 2, 2**n]`` and, per group size
        g, the blocks ``[G, B, 2**(g+1), 2**(g+1)]`` of the groups in :attr:`groups` order."""
        sizes = sorted(self.groups)
        return _RunProgram.apply(initial, self, sizes, *(blocks[g] for g in sizes))

    def run_shared(self, blocks: dict[int, torch.Tensor], initial: torch.Tensor) -> torch.Tensor:
        """Final states ``[M, 2, 2**n, R]`` when the blocks are shared by rows.

        ``initial`` is ``[M, 2, 2**n, R]``: ``M`` circuits (each with its own blocks, per group
        size g ``[G, M, 2**(g+1), 2**(g+1)]``) each run on ``R`` rows. The rows ride along the
        last axis, so a block is one product with the whole ``[2**(g+1), 2**(n-g) * R]`` slab
        instead of ``R`` tiny ones: the weight-only part of a circuit costs the same few
        operations whatever the batch.
        """
        sizes = sorted(self.groups)
        return _RunShared.apply(initial, self, sizes, *(blocks[g] for g in sizes))


def _groups(run: list[tuple], max_group: int) -> list[list[tuple]]:
    """Split runs sorted by descending qubit into groups of neighbouring qubits."""
    groups: list[list[tuple]] = []
    for step in run:
        last = groups[-1] if groups else None
        if last and len(last) < max_group and last[-1][1] == step[1] + 1:
            last.append(step)
        else:
            groups.append([step])
    return groups


def _rotl(i: np.ndarray, bits: int, n: int) -> np.ndarray:
    if bits % n == 0:
        return i
    return ((i << bits) | (i >> (n - bits))) & (2**n - 1)


def _rotate(state: torch.Tensor, amount: int, n: int) -> torch.Tensor:
    """Move logical bit p to p + amount: ``[.., 2, 2**n]`` viewed as ``[2**amount, 2**(n-amount)]``, swapped."""
    lead = state.shape[:-1]
    view = state.reshape(*lead, 2**amount, 2 ** (n - amount))
    return view.transpose(-1, -2).reshape(*lead, 2**n)


def _gather(state: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    # gather with a broadcast index measured ~2x faster than index_select on the last axis.
    return torch.gather(state, -1, index.expand(state.shape))


class _RunProgram(torch.autograd.Function):
    @staticmethod
    def forward(ctx, initial: torch.Tensor, program: Program, sizes: list[int], *blocks: torch.Tensor) -> torch.Tensor:
        n = program.n
        batch = initial.shape[0]
        state = initial
        # Keep each block's input when that is small (backward then needs one product less per
        # block and no doubled batch); otherwise recompute it backwards from the final state.
        keep = program.keeps_states(batch, initial.element_size())
        inputs: list[torch.Tensor] = []
        for ins in program.instructions:
            if ins.kind == "rot":
                state = _rotate(state, ins.amount, n)
            elif ins.kind == "block":
                size = ins.amount
                top = state.reshape(batch, 2 ** (size + 1), 2 ** (n - size))
                block = blocks[sizes.index(size)][ins.index]
                if keep:
                    inputs.append(top)
                state = torch.bmm(block, top).reshape(batch, 2, 2**n)
            elif ins.kind == "gather":
                state = _gather(state, ins.index)
            else:
                state = (state.reshape(batch, -1) @ ins.index).reshape(batch, 2, 2**n)
        ctx.program, ctx.sizes, ctx.kept = program, sizes, len(inputs)
        ctx.save_for_backward(state, *blocks, *inputs)
        return state

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        program: Program = ctx.program
        final, *saved = ctx.saved_tensors
        sizes = ctx.sizes
        blocks, inputs = saved[: len(sizes)], saved[len(sizes) :]
        n = program.n
        batch = final.shape[0]
        if inputs:
            return _backward_kept(ctx, program, blocks, inputs, grad)
        # Rows :B: the state after the current step (recomputed backwards); rows B: its gradient.
        pair = torch.cat([final, grad])  # [2B, 2, 2**n]
        # Gradients of each block, collected in reverse and stacked once at the end.
        grads: list[dict[int, torch.Tensor]] = [{} for _ in blocks]
        for ins in reversed(program.instructions):
            if ins.kind == "rot":
                pair = _rotate(pair, n - ins.amount, n)
            elif ins.kind == "block":
                size = ins.amount
                which = sizes.index(size)
                block = blocks[which][ins.index].transpose(1, 2)
                top = pair.reshape(2 * batch, 2 ** (size + 1), 2 ** (n - size))
                # The block is unitary: its inverse is its transpose, for the state and the
                # gradient alike (one batched product for both).
                before = torch.bmm(torch.cat([block, block]), top)
                if ctx.needs_input_grad[3 + which]:
                    grads[which][ins.index] = torch.bmm(top[batch:], before[:batch].transpose(1, 2))
                pair = before.reshape(2 * batch, 2, 2**n)
            elif ins.kind == "gather":
                pair = _gather(pair, ins.inverse)
            else:
                pair = (pair.reshape(2 * batch, -1) @ ins.inverse).reshape(2 * batch, 2, 2**n)
        grad_initial = pair[batch:] if ctx.needs_input_grad[0] else None
        grad_blocks = _stacked(ctx, grads)
        return grad_initial, None, None, *grad_blocks


def _stacked(ctx, grads: list[dict[int, torch.Tensor]]) -> list[torch.Tensor | None]:
    """Per group size, the blocks' gradients in block order (None where no gradient is wanted)."""
    return [
        torch.stack([g[i] for i in range(len(g))]) if ctx.needs_input_grad[3 + which] else None
        for which, g in enumerate(grads)
    ]


def _backward_kept(ctx, program: Program, blocks, inputs, grad: torch.Tensor):
    """Backward with every block's input kept from forward: only the gradient travels back."""
    n = program.n
    sizes = ctx.sizes
    batch = grad.shape[0]
    grads: list[dict[int, torch.Tensor]] = [{} for _ in blocks]
    kept = len(inputs)
    for ins in reversed(program.instructions):
        if ins.kind == "rot":
            grad = _rotate(grad, n - ins.amount, n)
        elif ins.kind == "block":
            size = ins.amount
            which = sizes.index(size)
            kept -= 1
            top = grad.reshape(batch, 2 ** (size + 1), 2 ** (n - size))
            if ctx.needs_input_grad[3 + which]:
                grads[which][ins.index] = torch.bmm(top, inputs[kept].transpose(1, 2))
            grad = torch.bmm(blocks[which][ins.index].transpose(1, 2), top).reshape(batch, 2, 2**n)
        elif ins.kind == "gather":
            grad = _gather(grad, ins.inverse)
        else:
            grad = (grad.reshape(batch, -1) @ ins.inverse).reshape(batch, 2, 2**n)
    grad_blocks = _stacked(ctx, grads)
    return grad if ctx.needs_input_grad[0] else None, None, None, *grad_blocks


def _rotate_shared(state: torch.Tensor, amount: int, n: int) -> torch.Tensor:
    """:func:`_rotate` on ``[M, 2, 2**n, R]``: the register axis is the third."""
    m, _, _, rows = state.shape
    view = state.reshape(m, 2, 2**amount, 2 ** (n - amount), rows)
    return view.transpose(2, 3).reshape(m, 2, 2**n, rows)


class _RunShared(torch.autograd.Function):
    """:meth:`Program.run_shared`: forward keeps each block's input (a few states), backward
    carries only the gradient."""

    @staticmethod
    def forward(ctx, initial: torch.Tensor, program: Program, sizes: list[int], *blocks: torch.Tensor) -> torch.Tensor:
        n = program.n
        m, _, dim, rows = initial.shape
        state = initial
        keep = any(ctx.needs_input_grad)  # inference keeps nothing
        inputs: list[torch.Tensor] = []
        for ins in program.instructions:
            if ins.kind == "rot":
                state = _rotate_shared(state, ins.amount, n)
            elif ins.kind == "block":
                size = ins.amount
                top = state.reshape(m, 2 ** (size + 1), 2 ** (n - size) * rows)
                if keep:
                    inputs.append(top)
                state = torch.bmm(blocks[sizes.index(size)][ins.index], top).reshape(m, 2, dim, rows)
            elif ins.kind == "gather":
                state = state.index_select(2, ins.index)
            else:  # rows of the flattened state times W: columns times W^T (kept as ``inverse``)
                state = torch.matmul(ins.inverse, state.reshape(m, 2 * dim, rows)).reshape(m, 2, dim, rows)
        ctx.program, ctx.sizes = program, sizes
        ctx.save_for_backward(*blocks, *inputs)
        return state

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        program: Program = ctx.program
        sizes = ctx.sizes
        saved = ctx.saved_tensors
        blocks, inputs = saved[: len(sizes)], saved[len(sizes) :]
        n = program.n
        m, _, dim, rows = grad.shape
        grads: list[dict[int, torch.Tensor]] = [{} for _ in blocks]
        kept = len(inputs)
        for ins in reversed(program.instructions):
            if ins.kind == "rot":
                grad = _rotate_shared(grad, n - ins.amount, n)
            elif ins.kind == "block":
                size = ins.amount
                which = sizes.index(size)
                kept -= 1
                top = grad.reshape(m, 2 ** (size + 1), 2 ** (n - size) * rows)
                if ctx.needs_input_grad[3 + which]:
                    # Summed over every row that shares the block: one product.
                    grads[which][ins.index] = torch.bmm(top, inputs[kept].transpose(1, 2))
                block = blocks[which][ins.index]
                grad = torch.bmm(block.transpose(1, 2), top).reshape(m, 2, dim, rows)
            elif ins.kind == "gather":
                grad = grad.index_select(2, ins.inverse)
            else:
                grad = torch.matmul(ins.index, grad.reshape(m, 2 * dim, rows)).reshape(m, 2, dim, rows)
        grad_blocks = _stacked(ctx, grads)
        return grad if ctx.needs_input_grad[0] else None, None, None, *grad_blocks
