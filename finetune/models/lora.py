"""LoRA adapter settings, shared by every recipe that fine-tunes the encoder (see ``Encoder.add_lora``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


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


def widen_adapter(source: str | Path, target: str | Path, r: int, *, seed: int = 0) -> LoraSettings:
    """Copy the saved adapter in ``source`` to ``target`` at the larger rank ``r``; return its shape.

    Each ``lora_A`` gets new rows drawn as peft draws a fresh adapter's, each ``lora_B`` new zero
    columns, and alpha grows with the rank so the scale ``alpha / r`` stays: the widened adapter
    computes exactly what the old one did, and training can use the added rank from there.
    """
    import json
    import math

    import torch
    from safetensors.torch import load_file, save_file

    source, target = Path(source), Path(target)
    config = json.loads((source / "adapter_config.json").read_text())
    old_r, alpha = int(config["r"]), int(config["lora_alpha"])
    if config.get("rank_pattern") or config.get("alpha_pattern"):
        raise ValueError(f"{source} gives some modules their own rank or alpha; only a uniform adapter can be widened")
    if r <= old_r:
        raise ValueError(f"the adapter in {source} already has rank {old_r}; widen it to a larger rank, not {r}")
    if (alpha * r) % old_r:
        raise ValueError(f"rank {r} would need a fractional alpha ({alpha} x {r} / {old_r}); choose a rank that "
                         f"is a multiple of {old_r // math.gcd(alpha, old_r)}")
    generator = torch.Generator().manual_seed(seed)
    weights = load_file(str(source / "adapter_model.safetensors"))
    widened: dict[str, torch.Tensor] = {}
    for name, value in sorted(weights.items()):
        if name.endswith("lora_A.weight"):
            extra = torch.empty(r - old_r, value.shape[1])
            # peft's default for A: kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
            bound = 1.0 / math.sqrt(value.shape[1])
            extra.uniform_(-bound, bound, generator=generator)
            value = torch.cat([value, extra.to(value.dtype)], dim=0)
        elif name.endswith("lora_B.weight"):
            value = torch.cat([value, value.new_zeros(value.shape[0], r - old_r)], dim=1)
        widened[name] = value.contiguous()
    target.mkdir(parents=True, exist_ok=True)
    save_file(widened, str(target / "adapter_model.safetensors"))
    config.update(r=r, lora_alpha=alpha * r // old_r)
    (target / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return LoraSettings(r=r, alpha=alpha * r // old_r, dropout=float(config.get("lora_dropout", 0.05)),
                        target_modules=tuple(sorted(config["target_modules"])))
