"""Where and in which precision models run.

torch is imported only by the functions that hand out torch objects: a model served by
ONNX Runtime on a CPU is tagged without it (1.4 s of start-up and ~100 MB less)."""

from __future__ import annotations

import ctypes
import functools
import platform
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Device files a GPU driver creates: NVIDIA's, WSL 2's (/dev/dxg) and AMD ROCm's (which
# torch also calls "cuda"). CUDA cannot reach a GPU without one of them.
_GPU_DRIVER_FILES = ("/dev/nvidiactl", "/proc/driver/nvidia", "/dev/dxg", "/dev/kfd")


# Linux gives a process AMX's tile registers only on request (arch_prctl, kernel 5.16+);
# benchmarks/without_amx.py refuses this very request.
SYS_ARCH_PRCTL = 158  # x86-64
ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The C library of this process (errno kept for ctypes.get_errno), or None."""
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


@functools.cache
def cpu_has_amx() -> bool:
    """True where this process can use AMX bf16 tiles (Sapphire Rapids and later), so bf16
    is fast. The CPU flag is not enough: an older kernel or a sandbox may refuse the tiles,
    and then oneDNN runs bf16 on AVX-512, slower than fp32 training here. The request made
    is the one oneDNN and ONNX Runtime make before their first AMX kernel."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    if "amx_bf16" not in flags:
        return False
    c = libc()
    if platform.machine() != "x86_64" or c is None:
        return True
    return bool(c.syscall(SYS_ARCH_PRCTL, ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA) == 0)


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
    trim = getattr(libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)
