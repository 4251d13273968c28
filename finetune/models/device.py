"""Where models and tensors live: the one place ``--device auto|cpu|cuda`` is turned into a device.

Everything that builds a model or a batch asks :func:`resolve_device` once and moves its modules
there; checkpoints are always written from CPU copies (see :mod:`finetune.models.checkpoint`), so a
model trained on a GPU loads on a machine without one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finetune.errors import SettingError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str = "auto") -> str:
    """``auto`` → ``cuda`` when a CUDA device is visible, else ``cpu``; ``cpu``/``cuda`` as asked.

    ``cuda:N`` names one card of several.

    Raises:
        SettingError: An unknown name, or ``cuda`` asked for on a machine without CUDA.
    """
    name = (device or "").strip().lower()
    kind, _, index = name.partition(":")
    if kind not in DEVICES or (index and (kind != "cuda" or not index.isdigit())):
        raise SettingError("device", f"device must be auto, cpu or cuda (cuda:N for one card of several); got {device!r}")
    if kind == "auto":
        return "cuda" if cuda_available() else "cpu"
    if kind == "cuda":
        if not cuda_available():
            raise SettingError("device", "CUDA was asked for but torch sees no CUDA device on this machine "
                                         "(no GPU, or a CPU-only torch build): use --device cpu or --device auto")
        import torch

        if index and int(index) >= torch.cuda.device_count():
            raise SettingError("device", f"{name} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return name


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module with neither)."""
    import torch

    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")
