"""A trainable circuit on any backend: exact autograd, parameter shift, or SPSA.

:class:`CircuitLayer` maps parameter values ``[B, P]`` to readouts ``[B, K]`` like
:class:`~finetune.quantum.simulate.ExactBackendModule`, but on any
:class:`~finetune.quantum.device.QuantumBackend`. On a sampling backend, the forward pass
submits ONE job holding the batch and every row its gradient needs, keeps the Jacobian
``[B, K, P]``, and the backward pass is a contraction with it.

Parameter shift, exactly. Our circuits feed one parameter to several gates (input re-uploading)
through affine angles (amplitude encoding uses ``(a + b) / 2``), so shifting a *parameter* by
π/2 is not exact. Instead a shadow copy of the circuit gives every parametric gate occurrence its
own parameter θ_j = c_j·v + o_j; for a gate exp(-iθG/2) with G² = I (rx, ry, rz, rxx, ryy, rzz,
and p up to a global phase), ∂f/∂θ_j = [f(θ_j + π/2) − f(θ_j − π/2)] / 2 holds exactly, and the
chain rule gives ∂f/∂v = Σ_j ∂f/∂θ_j · c_j.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from finetune.quantum.backends import ExactBackend, get_backend
from finetune.quantum.device import QuantumBackend

if TYPE_CHECKING:
    from finetune.quantum.ansatz import Ansatz

GRADIENTS = ("parameter_shift", "spsa")
# Gates exp(-iθG/2) with G² = I: the two-term shift rule is exact for them.
TWO_TERM_GATES = ("rx", "ry", "rz", "p", "rxx", "ryy", "rzz")


@dataclass(frozen=True, eq=False)
class ShiftPlan:
    """The shadow circuit of an ansatz and the affine map back to its parameters.

    Attributes:
        shadow: An :class:`Ansatz` with the same gates, where parametric gate occurrence ``j``
            has its own parameter ``θ_j`` (so its ``parameters`` are the ``A`` angles).
        coeffs: ``[P, A]``: θ = values @ coeffs + offsets.
        offsets: ``[A]``.
    """

    shadow: Ansatz
    coeffs: np.ndarray
    offsets: np.ndarray

    def angles(self, values: np.ndarray) -> np.ndarray:
        return values @ self.coeffs + self.offsets


def shift_plan(ansatz: Ansatz) -> ShiftPlan:
    """Build the shadow circuit used by exact parameter-shift gradients.

    Raises:
        UnsupportedCircuitError: A parametric gate without a two-term shift rule.
    """
    from qiskit.circuit import ParameterExpression, ParameterVector

    from finetune.quantum.ansatz import Ansatz
    from finetune.quantum.simulate import UnsupportedCircuitError, _affine

    index = {param: i for i, param in enumerate(ansatz.parameters)}
    rows, offsets, occurrences = [], [], []
    for position, instruction in enumerate(ansatz.circuit.data):
        operation = instruction.operation
        if not any(isinstance(p, ParameterExpression) and p.parameters for p in operation.params):
            continue
        if operation.name not in TWO_TERM_GATES:
            raise UnsupportedCircuitError(
                f"parameter shift needs gates with a two-term rule ({', '.join(TWO_TERM_GATES)}); "
                f"got '{operation.name}': use gradient='spsa' or the exact backend"
            )
        row, offset = _affine(operation.params[0], index, operation.name)
        rows.append(row)
        offsets.append(offset)
        occurrences.append(position)
    theta = ParameterVector("theta", len(occurrences))
    slot = {position: j for j, position in enumerate(occurrences)}
    shadow = ansatz.circuit.copy_empty_like(name=f"{ansatz.circuit.name}_shadow")
    if isinstance(shadow.global_phase, ParameterExpression):
        shadow.global_phase = 0.0  # a global phase changes no expectation value
    for position, instruction in enumerate(ansatz.circuit.data):
        operation = instruction.operation
        if position in slot:
            operation = operation.copy()
            operation.params = [theta[slot[position]]]
        shadow.append(operation, instruction.qubits, instruction.clbits)
    shadow_ansatz = Ansatz(
        ansatz.config, shadow, theta, ParameterVector("unused", 0), ansatz.observables
    )
    coeffs = np.stack(rows, axis=1) if rows else np.zeros((len(index), 0))
    return ShiftPlan(shadow_ansatz, coeffs, np.asarray(offsets, dtype=np.float64))


class CircuitLayer(torch.nn.Module):
    """An ansatz as a differentiable layer on any backend.

    Args:
        ansatz: The circuit and readout.
        backend: A backend or a spec string (``exact``, ``aer:shots=1024``, ``ibm:…``).
        gradient: ``parameter_shift`` (exact in expectation; 2 circuits per gate occurrence per
            row) or ``spsa`` (2 circuits per row, an unbiased but noisy estimate). Ignored on
            ``exact``, which uses torch autograd.
        spsa_epsilon: SPSA perturbation size.
        seed: Seed of the SPSA directions.
    """

    def __init__(
        self,
        ansatz: Ansatz,
        backend: QuantumBackend | str = "exact",
        gradient: str = "parameter_shift",
        spsa_epsilon: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if gradient not in GRADIENTS:
            raise ValueError(f"gradient must be one of {', '.join(GRADIENTS)}; got {gradient!r}")
        if not spsa_epsilon > 0:
            raise ValueError(f"spsa_epsilon must be > 0, got {spsa_epsilon}")
        self.ansatz = ansatz
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self.gradient = gradient
        self.spsa_epsilon = float(spsa_epsilon)
        self._rng = np.random.default_rng(seed)
        self._plan: ShiftPlan | None = None
        self.exact: torch.nn.Module | None = None
        if isinstance(self.backend, ExactBackend):
            from finetune.quantum.simulate import ExactBackendModule

            self.exact = ExactBackendModule(ansatz)
        elif gradient == "parameter_shift":
            self._plan = shift_plan(ansatz)  # fail now, not at the first backward pass

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """Readout ``[B, K]`` for parameter values ``[B, P]`` (inputs, then weights)."""
        n_params = len(self.ansatz.parameters)
        if values.dim() != 2 or values.shape[1] != n_params:
            raise ValueError(f"values must be [batch, {n_params}], got {list(values.shape)}")
        if self.exact is not None:
            return self.exact(values)
        need_grad = torch.is_grad_enabled() and values.requires_grad
        return _BackendFunction.apply(values, self, need_grad)

    def evaluate(self, values: np.ndarray, need_grad: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Readout ``[B, K]`` and, when ``need_grad``, the Jacobian ``[B, K, P]``: one job."""
        if not need_grad:
            return self.backend.expectations(self.ansatz, values), None
        if self.gradient == "spsa":
            return self._spsa(values)
        return self._parameter_shift(values)

    def _parameter_shift(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        plan = self._plan
        batch, n_angles = values.shape[0], plan.coeffs.shape[1]
        theta = plan.angles(values)  # [B, A]
        shifts = np.concatenate([np.zeros((1, n_angles)), np.eye(n_angles), -np.eye(n_angles)])
        shifts *= np.pi / 2
        rows = (theta[None, :, :] + shifts[:, None, :]).reshape(-1, n_angles)  # [(1+2A)·B, A]
        out = self.backend.expectations(plan.shadow, rows).reshape(1 + 2 * n_angles, batch, -1)
        d_theta = (out[1 : 1 + n_angles] - out[1 + n_angles :]) / 2  # [A, B, K]
        return out[0], np.einsum("abk,pa->bkp", d_theta, plan.coeffs)

    def _spsa(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        batch = values.shape[0]
        delta = self._rng.choice((-1.0, 1.0), size=values.shape)  # Rademacher: 1/Δ = Δ
        step = self.spsa_epsilon * delta
        rows = np.concatenate([values, values + step, values - step])
        out = self.backend.expectations(self.ansatz, rows)
        base, plus, minus = out[:batch], out[batch : 2 * batch], out[2 * batch :]
        slope = (plus - minus) / (2 * self.spsa_epsilon)  # [B, K]
        return base, slope[:, :, None] * delta[:, None, :]

    def training_state(self) -> dict[str, Any]:
        """What a resumed training run needs besides the weights (see :class:`finetune.training.trainer.Trainer`):
        SPSA's random stream, and the backend's job count, which seeds each job's shots and
        names the job a resumed run looks up instead of submitting it again."""
        return {"rng": self._rng.bit_generator.state, "jobs": getattr(self.backend, "_jobs", 0)}

    def load_training_state(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`training_state` returned."""
        self._rng.bit_generator.state = state["rng"]
        if hasattr(self.backend, "_jobs"):
            self.backend._jobs = int(state["jobs"])

    def extra_repr(self) -> str:
        return f"backend={self.backend.name!r}, gradient={self.gradient!r}"


class _BackendFunction(torch.autograd.Function):
    """Forward runs the backend (one job); backward contracts with the kept Jacobian."""

    @staticmethod
    def forward(ctx: Any, values: torch.Tensor, layer: CircuitLayer, need_grad: bool) -> torch.Tensor:
        array = values.detach().cpu().numpy().astype(np.float64)
        out, jacobian = layer.evaluate(array, need_grad)
        if jacobian is not None:
            ctx.save_for_backward(torch.as_tensor(jacobian, dtype=values.dtype, device=values.device))
        return torch.as_tensor(out, dtype=values.dtype, device=values.device)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        if not ctx.saved_tensors:
            return None, None, None
        (jacobian,) = ctx.saved_tensors
        return torch.einsum("bk,bkp->bp", grad_out, jacobian), None, None
