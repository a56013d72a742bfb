"""bf16 training is chosen where AMX is usable, not merely advertised: a process that the
kernel refuses AMX's tiles (an old kernel, a sandbox, or benchmarks/without_amx.py, which
stands in for the project's machines without AMX) trains in fp32."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import torch; from shared.ner.runtime import cpu_has_amx, use_bf16; "
    "print(cpu_has_amx(), use_bf16(torch.device('cpu')))"
)


def _probe(*launcher: str) -> str:
    done = subprocess.run(
        [*launcher, sys.executable, "-c", PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode == 3 and "seccomp" in done.stderr:
        pytest.skip("this sandbox refuses seccomp filters")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_refused_amx_means_fp32_training() -> None:
    assert _probe(sys.executable, "benchmarks/without_amx.py") == "False False"


def test_bf16_only_where_the_cpu_has_amx() -> None:
    # The kernel may refuse the tiles where the CPU has them (then both are False), but
    # nothing is AMX where the CPU lacks it, and training follows what was found.
    advertised = "amx_bf16" in Path("/proc/cpuinfo").read_text()
    usable, bf16 = _probe().split()
    assert usable == bf16
    assert usable == "False" or advertised
