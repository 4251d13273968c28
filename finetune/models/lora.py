"""LoRA adapter settings, shared by every recipe that fine-tunes the encoder (see ``Encoder.add_lora``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LoraSettings:
    """LoRA adapter shape (see ``Encoder.add_lora``)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("query", "value")

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha < 1:
            raise ValueError(f"LoRA r and alpha must be >= 1, got r={self.r}, alpha={self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        object.__setattr__(self, "target_modules", tuple(self.target_modules))

    @classmethod
    def from_options(cls, r: int, alpha: int, targets: str | Sequence[str], **kwargs: float) -> LoraSettings:
        """From command-line values: ``targets`` as ``"query,value"`` or a sequence of module names."""
        names = targets.split(",") if isinstance(targets, str) else targets
        return cls(r=r, alpha=alpha, target_modules=tuple(t.strip() for t in names if t.strip()), **kwargs)
