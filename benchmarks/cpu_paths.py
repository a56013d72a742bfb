"""Which instructions each compute path runs on this CPU, and what they run where AMX is
missing: does a figure measured here hold on a CPU without AMX?

Machines of this project's kind differ: some have AMX (bf16 and int8 tile multiplies),
others only AVX-512 with VNNI. This measures, on one core, twice: as this process finds
the CPU, and with AMX refused to it (benchmarks/without_amx.py, the stand-in for the other
kind: ONNX Runtime and oneDNN then pick their AVX-512 VNNI kernels):

- ONNX Runtime (what serves): the multiply-adds per second of an fp32 MatMul and of the
  int8 DynamicQuantizeMatMul the int8 export is made of, on a large matrix (2048 x 384
  by 384 x 1536, a MiniLM feed-forward layer over 2048 sub-tokens) and on a sentence
  (16 rows). int8 faster as is than refused: it ran AMX tiles here.
- PyTorch (what trains, and the stock pipeline the speed goals compare with): the
  kernel oneDNN reports for a bf16 and an fp32 matrix multiply (ONEDNN_VERBOSE).

An earlier version judged the int8 kernel by its ratio to fp32 (AMX would be 10x or more)
and concluded VNNI; disassembling the hot loop showed AMX tile instructions
(tdpbusd): the int8 rate is held back by the packing and the output scaling around the
tiles, not by the tiles. Comparing with AMX refused is the measurement that tells.

    python benchmarks/cpu_paths.py

Writes benchmarks/results/<--name>.json with the CPU and its flags.
"""

from __future__ import annotations

import argparse
import json
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
        # onednn_verbose,v1,primitive,exec,cpu,<primitive>,<implementation>,...
        fields = line.split(",")
        if kind and len(fields) > 6 and found[kind] is None:
            found[kind] = fields[6]
    isa = re.search(r"info,cpu,isa:(.*)", text)
    found["onednn_cpu"] = isa.group(1).strip() if isa else None
    return found


def _measure(rows: str, seconds: float, rounds: int, refuse_amx: bool) -> dict[str, Any]:
    """Both probes in a fresh process, AMX refused to it or not (benchmarks/without_amx.py)."""
    launcher = [sys.executable, str(Path(__file__).with_name("without_amx.py"))]
    command = [
        *(launcher if refuse_amx else []),
        sys.executable,
        __file__,
        "--child",
        "--rows",
        rows,
        "--seconds",
        str(seconds),
        "--rounds",
        str(rounds),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="16,2048", help="rows of the activation matrix")
    parser.add_argument("--seconds", type=float, default=4.0, help="per kernel and size")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--name", default="cpu-paths")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rows = [int(r) for r in args.rows.split(",")]
        print(json.dumps({"ort": ort_rates(rows, args.seconds, args.rounds), "torch": torch_isa()}))
        return

    found = {
        "as_is": _measure(args.rows, args.seconds, args.rounds, refuse_amx=False),
        "amx_refused": _measure(args.rows, args.seconds, args.rounds, refuse_amx=True),
    }
    amx_gain: dict[str, float] = {}
    for m, r in found["as_is"]["ort"].items():
        refused = found["amx_refused"]["ort"][m]
        amx_gain[m] = round(r["int8"] / refused["int8"], 2)
        print(
            f"onnxruntime, {m:>5} rows: fp32 {r['fp32']} GMAC/s, int8 {r['int8']} GMAC/s; "
            f"AMX refused: fp32 {refused['fp32']}, int8 {refused['int8']} "
            f"(int8 {amx_gain[m]}x with AMX)"
        )
    for label, part in found.items():
        isa = part["torch"]
        fp32_kernel = isa["fp32"] or "not oneDNN (MKL's GEMM)"
        print(f"pytorch linear layers, {label}: fp32 {fp32_kernel}, bf16 {isa['bf16']}")
    path = write_result(
        args.name,
        {
            "machine": machine(),
            "threads": 1,
            "matrix": f"M x {K} by {K} x {N}",
            "onnxruntime_gmac_per_second": found["as_is"]["ort"],
            "onnxruntime_gmac_per_second_amx_refused": found["amx_refused"]["ort"],
            "onnxruntime_int8_amx_over_refused": amx_gain,
            "pytorch_onednn_kernels": found["as_is"]["torch"],
            "pytorch_onednn_kernels_amx_refused": found["amx_refused"]["torch"],
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
