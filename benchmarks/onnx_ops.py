"""Which ONNX fusions make a sentence fastest on this CPU: sessions as `OnnxModel` makes
them (SkipLayerNormalization left unfused: `onnx_export.py`, `onnx_model.py`) against
sessions of the same files where ONNX Runtime fuses it, as it does by default.

Exports MODEL into a temporary directory (fp32 and dynamic int8), then
times one window per run on one thread — how the API and bulk jobs run an int8 model —
at several lengths, the variants taking turns (`--rounds` rounds, best of each kept, as
the machine is shared), and prints the time per run of each operator type from ONNX
Runtime's profiler for the int8 graphs (the profiler's own cost inflates those).

    python benchmarks/onnx_ops.py --model runs/quick-conll

Writes benchmarks/results/<--name>.json with the CPU and its flags.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write_result
from shared.ner.onnx_export import _export_fp32, _quantise
from shared.ner.onnx_model import DISABLED_OPTIMIZERS


def session(path: Path, shipped: bool, profile: str | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    if profile:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    disabled = list(DISABLED_OPTIMIZERS) if shipped else []
    return ort.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=disabled
    )


def feeds(sess: Any, length: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    all_inputs = {
        "input_ids": rng.integers(1000, 20000, (1, length), dtype=np.int64),
        "attention_mask": np.ones((1, length), dtype=np.int64),
        "token_type_ids": rng.integers(0, 5, (1, length), dtype=np.int64),
    }
    return {i.name: all_inputs[i.name] for i in sess.get_inputs()}


def time_runs(sess: Any, inputs: dict[str, np.ndarray], runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        sess.run(None, inputs)
    return (time.perf_counter() - started) / runs * 1000


def op_profile(path: Path, shipped: bool, length: int, runs: int, tmp: Path) -> dict[str, float]:
    """Microseconds per run of each operator type (ONNX Runtime's profiler)."""
    sess = session(path, shipped, profile=str(tmp / "profile"))
    inputs = feeds(sess, length)
    for _ in range(runs):
        sess.run(None, inputs)
    profile = Path(sess.end_profiling())
    by_op: collections.Counter[str] = collections.Counter()
    for event in json.loads(profile.read_text()):
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"].get("op_name", "?")] += event["dur"]
    profile.unlink()
    return {op: round(us / runs, 1) for op, us in by_op.most_common()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a saved model directory")
    parser.add_argument("--lengths", default="16,24,48", help="sub-tokens per window")
    parser.add_argument("--runs", type=int, default=100, help="runs per timing")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--name", default="onnx-ops")
    args = parser.parse_args()
    lengths = [int(n) for n in args.lengths.split(",")]

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        files = {"fp32": tmp / "model.onnx", "int8": tmp / "model.int8.onnx"}
        _export_fp32(Path(args.model), files["fp32"])
        _quantise(files["fp32"], files["int8"])
        sessions = {
            f"{name} {kind}": session(path, shipped=name == "shipped")
            for name in ("shipped", "with-skip-layer-norm")
            for kind, path in files.items()
        }
        timings: dict[str, dict[str, float]] = {}
        for length in lengths:
            inputs = {name: feeds(s, length) for name, s in sessions.items()}
            for name, s in sessions.items():
                time_runs(s, inputs[name], 10)  # warm-up
            best: dict[str, float] = {}
            for _ in range(args.rounds):
                for name, s in sessions.items():
                    runs = args.runs if "int8" in name else max(10, args.runs // 3)
                    ms = time_runs(s, inputs[name], runs)
                    best[name] = min(best.get(name, ms), ms)
            timings[str(length)] = {k: round(v, 3) for k, v in best.items()}
            print(f"{length:3} sub-tokens, ms per run: {timings[str(length)]}", flush=True)
        profiles = {
            f"{name} int8": op_profile(files["int8"], name == "shipped", lengths[0], args.runs, tmp)
            for name in ("shipped", "with-skip-layer-norm")
        }
    for name, ops in profiles.items():
        print(f"{name}, µs per run by operator ({lengths[0]} sub-tokens): {ops}")
    speedup = {
        length: {
            kind: round(t[f"with-skip-layer-norm {kind}"] / t[f"shipped {kind}"], 2)
            for kind in ("fp32", "int8")
        }
        for length, t in timings.items()
    }
    print(f"shipped is faster by (time with SkipLayerNormalization / shipped): {speedup}")
    path = write_result(
        args.name,
        {
            "machine": machine(),
            "model": args.model,
            "threads": 1,
            "ms_per_run": timings,
            "speedup_of_shipped": speedup,
            "operator_us_per_run": profiles,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
