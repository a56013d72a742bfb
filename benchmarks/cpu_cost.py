"""What a training recipe costs on this machine, from a short timed run, scaled to CoNLL.

    python benchmarks/cpu_cost.py --only baseline --only casing --only all-packed-b8

For each named config of benchmarks/ablation.py it runs the core's own training loop
(`train_steps`, what `train()` drives) for one epoch on the first `--sentences`
CoNLL training sentences and one validation pass on the first `--eval-sentences`
validation sentences, timing every step in CPU seconds of the process (wall time with `--wall`): on
a shared machine, other work stretches the wall clock of whatever runs beside it,
but not the CPU time the work needs. The configs take turns, `--rounds` times. The
full run is then estimated by scaling: time per step × steps × the sub-tokens of all
training windows (with that config's context) over those of the part, × epochs, plus
validation time per sentence × the validation sentences × (epochs + 1 for the final
test pass). That estimate is in CPU seconds; its `ratio` to the baseline's, times the
baseline's measured full run (docs/benchmarks.md: 848.5 s wall on the 2 cores), is
the figure to trust.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from transformers import set_seed

from benchmarks.ablation import CONFIGS
from benchmarks.common import SHARED_DATA, machine, write_result
from shared.ner import TrainConfig, read_dataset
from shared.ner.basemodel import resolve_base_model
from shared.ner.encoding import WindowEncoder
from shared.ner.inference import window_length
from shared.ner.labels import label_list
from shared.ner.training import _features, _load, train_steps


def window_tokens(tokenizer: Any, model: Any, data: Any, labels: list[str], config: Any) -> int:
    """Sub-tokens in all training windows of `data` under `config` (context included)."""
    encoder = WindowEncoder(tokenizer, window_length(model, tokenizer), config.stride)
    features = _features(encoder, tokenizer, data, labels, config, casing=False)
    return sum(len(f["input_ids"]) for f in features)


def time_one(
    config: TrainConfig, train_part: Any, valid_part: Any, labels: list[str]
) -> dict[str, float]:
    """Seconds per training step (the first left out: one-off kernel set-up) and for
    one validation pass."""
    set_seed(config.seed)
    tokenizer, model = _load(resolve_base_model(config.base_model), labels)
    steps: list[tuple[float, float]] = []
    evaluated = (0.0, 0.0)
    for p in train_steps(model, tokenizer, train_part, valid_part, labels, config, device="cpu"):
        if p.stage == "training":
            steps.append((time.perf_counter(), time.process_time()))
        if p.stage == "evaluated":
            evaluated = (time.perf_counter(), time.process_time())
            break
    if len(steps) < 3:
        raise SystemExit("too few training steps to time: raise --sentences")
    n = len(steps) - 1
    return {
        "step": (steps[-1][0] - steps[0][0]) / n,
        "step_cpu": (steps[-1][1] - steps[0][1]) / n,
        "steps": len(steps),
        "eval": evaluated[0] - steps[-1][0],
        "eval_cpu": evaluated[1] - steps[-1][1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    conll = SHARED_DATA / "conll2003"
    parser.add_argument("--train", default=str(conll / "train.txt"))
    parser.add_argument("--validation", default=str(conll / "valid.txt"))
    parser.add_argument("--only", action="append", choices=sorted(CONFIGS))
    parser.add_argument("--sentences", type=int, default=1000)
    parser.add_argument("--eval-sentences", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--base-model")
    parser.add_argument("--wall", action="store_true", help="scale wall time, not CPU time")
    parser.add_argument("--baseline-seconds", type=float, default=848.5, help="measured full run")
    args = parser.parse_args()
    names = args.only or ["baseline", "casing", "all-packed-b8"]
    if "baseline" not in names:
        names.insert(0, "baseline")
    train_data = read_dataset(args.train)
    validation = read_dataset(args.validation)
    labels = label_list(train_data.entity_types)
    train_part = train_data.subset(train_data.sentences[: args.sentences], "[part]")
    valid_part = validation.subset(validation.sentences[: args.eval_sentences], "[part]")
    configs = {}
    for name in names:
        overrides = {k: v for k, v in CONFIGS[name].items() if k != "epochs"}
        configs[name] = TrainConfig(**overrides, epochs=1, base_model=args.base_model)
    timings: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for _ in range(args.rounds):
        for name in names:
            timings[name].append(time_one(configs[name], train_part, valid_part, labels))
            print(name, timings[name][-1], file=sys.stderr, flush=True)
    tokenizer, model = _load(resolve_base_model(args.base_model), labels)
    rows = {}
    for name in names:
        config = configs[name]
        part_tokens = window_tokens(tokenizer, model, train_part, labels, config)
        full_tokens = window_tokens(tokenizer, model, train_data, labels, config)
        # CPU seconds of this process, not wall time: on a shared machine other work
        # stretches the wall clock of whichever config runs beside it, while the CPU
        # time the work itself needs stays put. (Both threads count: a quiet 2-core run
        # takes about half of it in wall time; the ratio to the measured baseline is
        # the robust figure.)
        key = "" if args.wall else "_cpu"
        step_s = statistics.median(t["step" + key] for t in timings[name])
        eval_s = statistics.median(t["eval" + key] for t in timings[name])
        n_steps = timings[name][0]["steps"]
        epochs = CONFIGS[name].get("epochs", 5)
        # A step's cost follows its sub-tokens; the part's batches have the part's mix.
        per_epoch = step_s * n_steps * full_tokens / part_tokens
        per_eval = eval_s * len(validation) / len(valid_part)
        rows[name] = {
            "overrides": CONFIGS[name],
            "window_tokens_full": full_tokens,
            "window_tokens_part": part_tokens,
            "seconds_per_step" + ("" if args.wall else "_cpu"): round(step_s, 3),
            "eval_seconds_part": round(eval_s, 1),
            "epoch_seconds": round(per_epoch),
            "validation_pass_seconds": round(per_eval),
            "estimate_seconds": round(epochs * per_epoch + (epochs + 1) * per_eval),
        }
    base = rows["baseline"]["estimate_seconds"]
    for row in rows.values():
        row["ratio"] = round(row["estimate_seconds"] / base, 2)
        row["scaled_from_measured_baseline_s"] = round(args.baseline_seconds * row["ratio"])
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "torch_threads": torch.get_num_threads(),
        "rows": rows,
        "timings": timings,
    }
    path = write_result("cpu-cost", result)
    for name, row in rows.items():
        print(
            f"{name:16s} tokens {row['window_tokens_full']:>9,d} ratio {row['ratio']:.2f} "
            f"estimate {row['estimate_seconds'] / 60:.1f} min, "
            f"from the measured baseline {row['scaled_from_measured_baseline_s'] / 60:.1f} min"
        )
    print(f"wrote {path}", file=sys.stderr)
    print(json.dumps({k: v["scaled_from_measured_baseline_s"] for k, v in rows.items()}))


if __name__ == "__main__":
    main()
