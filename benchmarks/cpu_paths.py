"""Which instructions each compute path runs on this CPU: does a figure measured here hold
on a CPU without AMX?

Machines of this project's kind differ: some have AMX (bf16 and int8 tile multiplies),
others only AVX-512 with VNNI. This measures, on one core:

- ONNX Runtime (what serves): the multiply-adds per second of an fp32 MatMul and of the
  int8 DynamicQuantizeMatMul the int8 export is made of, on a large matrix (2048 x 384
  by 384 x 1536, a MiniLM feed-forward layer over 2048 sub-tokens) and on a sentence
  (16 rows). Their ratio tells the int8 kernel's class without knowing the clock:
  AVX-512 fp32 does 32 multiply-adds per cycle, VNNI int8 128 (ratio about 4), AMX
  int8 1,024 (ratio 10 or more).
- PyTorch (what trains, and the stock pipeline the speed goals compare with): the
  instruction set oneDNN reports for a bf16 and an fp32 matrix multiply (ONEDNN_VERBOSE).

Where ONNX Runtime's int8 is VNNI-class, the served path runs the same instructions on a
CPU with only AVX-512 VNNI; and fp32 PyTorch (the pipeline) never uses AMX. Speed ratios
measured here between the two then carry to such a CPU (its clock and caches set the
absolute times); only bf16 training, which uses AMX, differs there (it runs fp32:
`train_throughput.py --precision fp32` measures that path).

    python benchmarks/cpu_paths.py

Writes benchmarks/results/<--name>.json with the CPU and its flags.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_result

K, N = 384, 1536
# int8 / fp32 multiply-adds per second, per cycle of each instruction set on one core:
# AVX-512 FMA 2 x 16 fp32; VNNI 2 x 64 int8 (4x); AMX TMUL 1,024 int8 (32x).
AMX_CLASS_RATIO = 10.0


def _session(node: Any, weights: list[Any], a_type: int) -> Any:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [node],
        "gemm",
        [helper.make_tensor_value_info("A", a_type, ["M", K])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["M", N])],
        weights,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def ort_rates(rows: list[int], seconds: float, rounds: int) -> dict[str, dict[str, float]]:
    """GMAC/s of ONNX Runtime's fp32 MatMul and int8 DynamicQuantizeMatMul, one thread."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    fp32 = _session(
        helper.make_node("MatMul", ["A", "W"], ["Y"]),
        [numpy_helper.from_array(rng.standard_normal((K, N)).astype(np.float32), "W")],
        TensorProto.FLOAT,
    )
    int8 = _session(
        helper.make_node("DynamicQuantizeMatMul", ["A", "W", "S"], ["Y"], domain="com.microsoft"),
        [
            numpy_helper.from_array(rng.integers(-127, 128, (K, N)).astype(np.int8), "W"),
            numpy_helper.from_array(np.full(N, 0.01, dtype=np.float32), "S"),
        ],
        TensorProto.FLOAT,
    )
    out: dict[str, dict[str, float]] = {}
    for m in rows:
        a = rng.standard_normal((m, K)).astype(np.float32)
        rates: dict[str, float] = {"fp32": 0.0, "int8": 0.0}
        for _ in range(3):
            fp32.run(None, {"A": a})
            int8.run(None, {"A": a})
        # Turns, best of each kept: the machine is shared, and a slow moment would make
        # the ratio (the class) depend on which kernel it fell on.
        for _ in range(rounds):
            for name, sess in (("fp32", fp32), ("int8", int8)):
                runs, started = 0, time.perf_counter()
                while time.perf_counter() - started < seconds / rounds:
                    sess.run(None, {"A": a})
                    runs += 1
                elapsed = (time.perf_counter() - started) / runs
                rates[name] = max(rates[name], round(m * K * N / elapsed / 1e9, 1))
        rates["int8_over_fp32"] = round(rates["int8"] / rates["fp32"], 2)
        out[str(m)] = rates
    return out


_PROBE = """
import torch
a = torch.randn(256, 384)
layer = torch.nn.Linear(384, 1536)
with torch.no_grad():
    layer(a)
    layer.to(torch.bfloat16)(a.to(torch.bfloat16))
"""


def torch_isa() -> dict[str, str | None]:
    """The kernel oneDNN ran for PyTorch's fp32 and bf16 linear layers (None: not oneDNN,
    e.g. MKL's own fp32 GEMM)."""
    env = {**os.environ, "ONEDNN_VERBOSE": "1"}
    text = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    found: dict[str, str | None] = {"fp32": None, "bf16": None}
    for line in text.splitlines():
        if ",primitive,exec," not in line:
            continue
        kind = "bf16" if "src:bf16" in line else "fp32" if "src:f32" in line else None
        match = re.search(r",(\w+):(\w+),", line)
        if kind and match and found[kind] is None:
            found[kind] = f"{match.group(1)}:{match.group(2)}"
    isa = re.search(r"info,cpu,isa:(.*)", text)
    found["onednn_cpu"] = isa.group(1).strip() if isa else None
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="16,2048", help="rows of the activation matrix")
    parser.add_argument("--seconds", type=float, default=4.0, help="per kernel and size")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--name", default="cpu-paths")
    args = parser.parse_args()

    rates = ort_rates([int(r) for r in args.rows.split(",")], args.seconds, args.rounds)
    largest = rates[max(rates, key=int)]
    int8_class = "AMX" if largest["int8_over_fp32"] >= AMX_CLASS_RATIO else "VNNI (no AMX)"
    isa = torch_isa()
    for m, r in rates.items():
        print(
            f"onnxruntime, {m:>5} rows: fp32 {r['fp32']} GMAC/s, int8 {r['int8']} GMAC/s "
            f"({r['int8_over_fp32']}x)"
        )
    print(f"onnxruntime int8 kernels: {int8_class}")
    fp32_kernel = isa["fp32"] or "not oneDNN (MKL's GEMM)"
    print(f"pytorch linear layers: fp32 {fp32_kernel}, bf16 {isa['bf16']}")
    path = write_result(
        args.name,
        {
            "machine": machine(),
            "threads": 1,
            "matrix": f"M x {K} by {K} x {N}",
            "onnxruntime_gmac_per_second": rates,
            "onnxruntime_int8_class": int8_class,
            "pytorch_onednn_kernels": isa,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
