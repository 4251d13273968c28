"""Temperature scaling (Guo et al. 2017): one scalar ``T`` that makes ``softmax(logits / T)`` calibrated.

Fitted by minimising the negative log-likelihood of held-out examples with torch's L-BFGS over
``log T`` (so ``T`` stays positive). Dividing by ``T`` never changes the argmax, so accuracy is
untouched; only the confidences move.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

# Bounds on T: a fit outside them means the data say nothing useful (e.g. every example right
# and the NLL still falling as T -> 0), and a temperature that extreme would make every answer 0 or 1.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.01, 100.0


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, *, max_iter: int = 200) -> float:
    """The temperature minimising the NLL of ``targets`` under ``softmax(logits / T)``.

    Args:
        logits: Raw logits ``[N, C]``.
        targets: True class indices ``[N]``.
        max_iter: L-BFGS iterations.

    Raises:
        ValueError: No examples, or shapes that do not match.
    """
    logits = torch.as_tensor(logits, dtype=torch.float64).detach()
    targets = torch.as_tensor(targets, dtype=torch.long)
    if logits.ndim != 2 or len(logits) == 0 or targets.shape != logits.shape[:1]:
        raise ValueError(f"need logits [N, C] with N >= 1 and targets [N]; got {list(logits.shape)} and {list(targets.shape)}")
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(min(max(log_t.exp().item(), MIN_TEMPERATURE), MAX_TEMPERATURE))


def nll(logits: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``targets`` under ``softmax(logits / temperature)``."""
    logits = torch.as_tensor(logits, dtype=torch.float64)
    return float(F.cross_entropy(logits / temperature, torch.as_tensor(targets, dtype=torch.long)))
