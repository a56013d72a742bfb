"""Ablation of the accuracy features on CoNLL-2003: each alone, together, and a few variants.

    python benchmarks/ablation.py                       # every config, CPU or GPU (auto)
    python benchmarks/ablation.py --device cuda --base-model DIR --only baseline --only all
    python benchmarks/ablation.py --max-sentences 500 --epochs 1   # a quick smoke run

Each named config is a set of `TrainConfig` fields over the defaults; it is trained
with the core's `train()` (the code path of `ner train` and of a training job) on
the training file, validated on the validation file, saved, reloaded, and scored
on the validation file with each decoding (Viterbi and argmax) by `evaluate()`, the
code of `ner evaluate`. Results (F1, per type, seconds, the full config) go to
benchmarks/results/ablation-<name>.json after every config, so an interrupted run
keeps what it finished. `--budget-seconds` skips the configs that would not finish
in time, in the order listed (most important first).
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:  # seqeval imports scikit-learn for one warning class only
    import sklearn.exceptions
except ImportError:  # a bare GPU machine: give seqeval the class it imports, nothing more
    sklearn = types.ModuleType("sklearn")
    exceptions = types.ModuleType("sklearn.exceptions")
    # A spec, because torch._dynamo looks up the spec of every module named sklearn.
    sklearn.__spec__ = importlib.machinery.ModuleSpec("sklearn", None, is_package=True)
    exceptions.__spec__ = importlib.machinery.ModuleSpec("sklearn.exceptions", None)

    class UndefinedMetricWarning(UserWarning):
        pass

    exceptions.UndefinedMetricWarning = UndefinedMetricWarning  # type: ignore[attr-defined]
    sklearn.exceptions = exceptions  # type: ignore[attr-defined]
    sys.modules.update({"sklearn": sklearn, "sklearn.exceptions": exceptions})

import torch

from benchmarks.common import SHARED_DATA, machine, write_result
from shared.ner import Predictor, TrainConfig, evaluate, read_dataset, train

# What the shipped defaults were before this work: sentence windows, argmax decoding.
BASELINE: dict[str, Any] = {
    "casing": False,
    "context_length": 0,
    "context_mode": "around",
    "decoding": "argmax",
    "layer_decay": 1.0,
    "ema_decay": 0.0,
    "learning_rate": 1e-4,
    "warmup_ratio": 0.1,
    "epochs": 5,
}
# Context costs compute, differently by mode. "around" (FLERT: a window per sentence with
# its neighbours, labels on the sentence only) encodes every word many times: on CoNLL
# train a 32-sub-token window holds 1.7x the sub-tokens of the bare sentences, 64 3.2x,
# 128 6.2x. "packed" (documents cut into windows, every word labelled once) costs about
# the same as bare sentences at any length, but gives ~4x fewer, longer windows per
# epoch, hence the smaller-batch variants. On the 2-core CPU, where the default must
# train in 30 minutes, that is the price to weigh (benchmarks/cpu_cost.py).
CASING = {**BASELINE, "casing": True}
AROUND = {"context_length": 64, "context_mode": "around"}
PACKED = {"context_length": 128, "context_mode": "packed"}
ALL = {**CASING, **AROUND, "decoding": "viterbi"}
ALL_PACKED = {**CASING, **PACKED, "decoding": "viterbi"}
SCHEDULE = {"layer_decay": 0.9, "warmup_ratio": 0.06}

# Most important first: with --budget-seconds the tail is what gets skipped. The first
# eleven are the configs measured on the H100 (docs/benchmarks.md), in that run's order
# and meaning; the packed-context ones came later. Viterbi alone needs no run of its own:
# it is a decoding choice, and every run is scored with both decodings
# (`f1_by_decoding`), so "baseline" scored with Viterbi is "+viterbi" and "casing"
# scored with Viterbi is the default recipe.
CONFIGS: dict[str, dict[str, Any]] = {
    "baseline": BASELINE,
    "all": ALL,
    "casing": CASING,
    "context": {**BASELINE, **AROUND},
    "all-ctx32": {**ALL, "context_length": 32},
    "all-ctx128": {**ALL, "context_length": 128},
    "all+schedule": {**ALL, **SCHEDULE},
    "all-lr2e-4": {**ALL, "learning_rate": 2e-4},
    "casing-lr2e-4": {**CASING, "learning_rate": 2e-4},
    "all-3ep": {**ALL, "epochs": 3},
    "viterbi": {**BASELINE, "decoding": "viterbi"},  # checks the derived figure
    "packed": {**BASELINE, **PACKED},
    "all-packed": ALL_PACKED,
    "all-packed-b8": {**ALL_PACKED, "batch_size": 8},
    "all-packed-b8-lr2e-4": {**ALL_PACKED, "batch_size": 8, "learning_rate": 2e-4},
    "all-packed256-b8": {**ALL_PACKED, "batch_size": 8, "context_length": 256},
    "casing+ema": {**CASING, "ema_decay": 0.999},  # measured on the CPU: docs/benchmarks.md
}


def run_one(
    name: str,
    overrides: dict[str, Any],
    args: argparse.Namespace,
    train_data: Any,
    validation: Any,
    workdir: Path,
) -> dict[str, Any]:
    settings = {**overrides, "seed": args.seed}
    if args.base_model:
        settings["base_model"] = args.base_model
    if args.epochs:
        settings["epochs"] = args.epochs
    if args.max_sentences:
        settings["max_sentences"] = args.max_sentences
    config = TrainConfig(**settings)
    out = workdir / name
    start = time.perf_counter()
    result = train(
        train_data,
        out,
        config,
        validation=validation,
        progress_bar=args.progress,
        device=args.device,
    )
    seconds = time.perf_counter() - start
    # Scored as `ner evaluate` scores a saved model, once per decoding: Viterbi is a
    # decoding choice only, so every run also shows what it adds or costs.
    by_decoding = {}
    for decoding in ("viterbi", "argmax"):
        predictor = Predictor.load(out, device=args.device, decoding=decoding)
        by_decoding[decoding] = evaluate(predictor, validation)
    scores = by_decoding[config.decoding]
    if not args.keep_models:
        shutil.rmtree(out, ignore_errors=True)
    return {
        "name": name,
        "f1": scores["f1"],
        "precision": scores["precision"],
        "recall": scores["recall"],
        "f1_strict": scores["f1_strict"],
        "per_type": {k: v["f1"] for k, v in scores["per_type"].items()},
        "f1_by_decoding": {k: v["f1"] for k, v in by_decoding.items()},
        "train_seconds": round(seconds, 1),
        "epochs_run": len(result.history),
        "history": [{"epoch": h["epoch"], "f1": h["f1"]} for h in result.history],
        "overrides": overrides,
        "config": config.model_dump(),
        "device": args.device,
        "validation_scores": scores,
    }


def save(report: dict[str, Any], args: argparse.Namespace) -> Path:
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return write_result(f"ablation-{args.name}", report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    conll = SHARED_DATA / "conll2003"
    parser.add_argument("--train", default=str(conll / "train.txt"))
    parser.add_argument("--validation", default=str(conll / "valid.txt"))
    parser.add_argument("--base-model", help="encoder name or directory (default: packaged)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--only", action="append", choices=sorted(CONFIGS), help="repeatable")
    parser.add_argument("--max-sentences", type=int, help="train on at most N sentences")
    parser.add_argument("--epochs", type=int, help="override every config's epochs")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--budget-seconds", type=float, help="skip configs that would overrun")
    parser.add_argument("--name", default="conll", help="results file: ablation-NAME.json")
    parser.add_argument("--json", help="also write the results to this path (e.g. under $OUT)")
    parser.add_argument("--keep-models", help="directory to keep the trained models in")
    parser.add_argument("--progress", action="store_true", help="a progress bar per run")
    args = parser.parse_args()
    names = args.only or list(CONFIGS)
    known = set(TrainConfig.model_fields)
    for name in names:
        unknown = set(CONFIGS[name]) - known
        if unknown:  # a config naming a field TrainConfig does not have is a bug here
            raise SystemExit(f"config {name}: unknown TrainConfig fields {sorted(unknown)}")
    began = time.perf_counter()
    train_data = read_dataset(args.train)
    validation = read_dataset(args.validation)
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "data": {"train": args.train, "validation": args.validation},
        "results": [],
        "skipped": [],
    }
    workdir = Path(args.keep_models or tempfile.mkdtemp(prefix="ablation-"))
    workdir.mkdir(parents=True, exist_ok=True)
    longest = 0.0
    try:
        for name in names:
            elapsed = time.perf_counter() - began
            if args.budget_seconds and elapsed + longest > args.budget_seconds:
                report["skipped"].append(name)
                print(f"{name}: skipped (budget)", file=sys.stderr, flush=True)
                continue
            t0 = time.perf_counter()
            row = run_one(name, CONFIGS[name], args, train_data, validation, workdir)
            longest = max(longest, time.perf_counter() - t0)
            report["results"].append(row)
            report["total_seconds"] = round(time.perf_counter() - began, 1)
            path = save(report, args)
            per_type = " ".join(f"{k} {v:.4f}" for k, v in row["per_type"].items())
            print(
                f"{name:16s} f1 {row['f1']:.4f} (viterbi {row['f1_by_decoding']['viterbi']:.4f}"
                f" argmax {row['f1_by_decoding']['argmax']:.4f}) {per_type}"
                f" train {row['train_seconds']:.0f}s epochs {row['epochs_run']}",
                flush=True,
            )
    finally:
        if not args.keep_models:
            shutil.rmtree(workdir, ignore_errors=True)
    report["total_seconds"] = round(time.perf_counter() - began, 1)
    path = save(report, args)
    print(json.dumps({r["name"]: r["f1"] for r in report["results"]}))
    print(f"wrote {path}", file=sys.stderr)
    if torch.cuda.is_available():
        print(
            f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB", file=sys.stderr
        )


if __name__ == "__main__":
    main()
