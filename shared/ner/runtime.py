"""Where and in which precision models run.

torch is imported only by the functions that hand out torch objects: a model served by
ONNX Runtime on a CPU is tagged without it (1.4 s of start-up and ~100 MB less)."""

from __future__ import annotations

import ctypes
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Device files a GPU driver creates: NVIDIA's, WSL 2's (/dev/dxg) and AMD ROCm's (which
# torch also calls "cuda"). CUDA cannot reach a GPU without one of them.
_GPU_DRIVER_FILES = ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/dxg", "/dev/kfd")


@functools.cache
def cpu_has_amx() -> bool:
    """True on CPUs with AMX bf16 tiles (Sapphire Rapids and later), where bf16 is fast."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags


def device_name(device: str = "auto") -> str:
    """The device `device` names; "auto": "cuda" where torch sees a GPU, else "cpu".
    On Linux with no GPU driver that is "cpu" without importing torch."""
    if device != "auto":
        return device
    if sys.platform == "linux" and not any(Path(f).exists() for f in _GPU_DRIVER_FILES):
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_device(device: str = "auto") -> torch.device:
    import torch

    return torch.device(device_name(device))


def use_bf16(device: torch.device, precision: str = "auto") -> bool:
    """bf16 autocast: asked for, or 'auto' on CUDA and on CPUs with AMX.

    benchmarks/speed.py checks that it keeps F1 within 0.3 of fp32 (docs/benchmarks.md).
    """
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"precision must be auto, bf16 or fp32, not {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_amx())


def autocast(device: torch.device, enabled: bool) -> torch.autocast:
    import torch

    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


# What tokenizing and a forward pass raise on input they cannot handle (tokenizers and torch
# report bad input as these): a caller isolating one bad text catches exactly these, and lets
# anything else (MemoryError, KeyboardInterrupt...) through.
MODEL_ERRORS: tuple[type[Exception], ...] = (
    RuntimeError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
)


def release_free_memory() -> None:
    """Hand memory malloc holds but does not use back to the system (glibc's malloc_trim;
    nothing elsewhere). Cheap: a few milliseconds."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
