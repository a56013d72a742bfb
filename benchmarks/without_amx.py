"""Run a command as it runs on a CPU without AMX: the closest this project's AMX machines
can come to the other machine kind (AVX-512 with VNNI, no AMX, no bf16).

Linux hands a process AMX's tile registers only when it asks (`arch_prctl
ARCH_REQ_XCOMP_PERM`, kernel 5.16+); ONNX Runtime's MLAS and PyTorch's oneDNN both ask
before they pick an AMX kernel, and take their AVX-512 VNNI kernels when refused. This
installs a seccomp filter that refuses that one request (EPERM) and then runs the command,
whose child processes inherit the filter. It also sets `ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI`
(unless set), so oneDNN leaves the avx512_bf16 instructions alone too, as on that CPU.

What it does not change: the clock, the caches and the memory of this machine. Figures
measured under it say which kernels the other kind runs and how the ratios move, not its
absolute speed.

    python benchmarks/without_amx.py python benchmarks/speed.py --model runs/quick-conll

Exits 3 when the kernel refuses the filter itself (no seccomp in this sandbox).
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.ner.runtime import ARCH_REQ_XCOMP_PERM, SYS_ARCH_PRCTL, libc

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_AUDIT_ARCH_X86_64 = 0xC000003E
_EPERM = 1
# Classic BPF over struct seccomp_data {int nr; u32 arch; u64 ip; u64 args[6]}.
_LD_ABS, _JEQ, _RET = 0x20, 0x15, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000


def _insn(code: int, jump_true: int, jump_false: int, k: int) -> bytes:
    return struct.pack("HBBI", code, jump_true, jump_false, k)


# arch == x86_64 and nr == arch_prctl and args[0] == ARCH_REQ_XCOMP_PERM → EPERM, else allow.
# (Jumps count instructions after the next one; each "no" lands on the last line.)
_FILTER = b"".join(
    [
        _insn(_LD_ABS, 0, 0, 4),
        _insn(_JEQ, 0, 5, _AUDIT_ARCH_X86_64),
        _insn(_LD_ABS, 0, 0, 0),
        _insn(_JEQ, 0, 3, SYS_ARCH_PRCTL),
        _insn(_LD_ABS, 0, 0, 16),
        _insn(_JEQ, 0, 1, ARCH_REQ_XCOMP_PERM),
        _insn(_RET, 0, 0, _RET_ERRNO | _EPERM),
        _insn(_RET, 0, 0, _RET_ALLOW),
    ]
)


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def refuse_amx() -> None:
    """Refuse AMX to this process and every process it starts from now on."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        raise OSError("only Linux on x86-64 has AMX to refuse")
    c = libc()
    if c is None:
        raise OSError("no C library to call prctl with")
    code = ctypes.create_string_buffer(_FILTER, len(_FILTER))
    program = _Program(len(_FILTER) // 8, ctypes.addressof(code))
    if c.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or (
        c.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0
    ):
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))


def main() -> None:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        refuse_amx()
    except OSError as exc:
        print(f"without_amx: cannot install the seccomp filter: {exc}", file=sys.stderr)
        sys.exit(3)
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI")
    try:
        os.execvp(sys.argv[1], sys.argv[1:])
    except OSError as exc:  # as a shell says it: 127 not found, 126 not runnable
        print(f"without_amx: {sys.argv[1]}: {exc.strerror}", file=sys.stderr)
        sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)


if __name__ == "__main__":
    main()
