"""Training throughput: our `train()` against a plain Hugging Face `Trainer` run.

Same data (the first N sentences of CoNLL-2003 train), same base model, label list,
tokenizer, batch size, epochs, learning rate, seed and precision, in one process,
the two runs alternating (ABBA order) so both see the same machine load. Reports
training sub-tokens/second of each, per round and the median, and their ratio
(ours / Trainer: 1.0 or more means ours is at least as fast). Records the CPU
model and the CPU flags that decide the kernels (AMX, AVX-512 bf16/VNNI).

    python benchmarks/train_throughput.py
    python benchmarks/train_throughput.py --trainer-group-by-length   # Trainer with our sampler

The Trainer arm needs `accelerate` (pip install 'accelerate>=1.1.0'), which the
project itself does not. Before the rounds each arm runs once untimed on 2 batches
(first calls pick kernels); --no-warmup skips that.

What is timed:
- ours: from just before the first training step to the end of the last epoch's
  validation (`Progress.seconds` of the last "evaluated" report, measured by
  `train_steps` itself). That is every training step plus one evaluation per epoch of
  the tiny validation set (32 sentences): a little work the Trainer arm does not do,
  so the comparison leans against ours. The cost of one such evaluation is measured
  (the final test pass on the same 32 sentences) and reported beside it. Not timed:
  loading the model, encoding the data, the test pass, saving (no ONNX export).
- Trainer: `train_runtime` of the metrics `trainer.train()` returns (its training loop,
  from just before the first step to the end of the last); the wall time of the whole
  `trainer.train()` call (optimizer and loader set-up too) is reported beside it.
  Not timed: loading the model, tokenizing the data.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    PrinterCallback,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.utils import logging as hf_logging

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED_DATA, machine, write_result
from shared.ner import Dataset, Progress, TrainConfig, read_dataset, train
from shared.ner.basemodel import default_base_model, resolve_base_model
from shared.ner.encoding import IGNORE, WindowEncoder
from shared.ner.inference import window_length
from shared.ner.labels import label_list
from shared.ner.runtime import cpu_has_amx, use_bf16

VALIDATION_SENTENCES = 32


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def max_length_of(base: str, tokenizer: Any) -> int:
    """The window length our training uses for this encoder (`TrainConfig.max_length` unset)."""
    return window_length(SimpleNamespace(config=AutoConfig.from_pretrained(base)), tokenizer)


def our_token_count(tokenizer: Any, data: Dataset, max_length: int, stride: int) -> int:
    """Sub-tokens per epoch as our training encodes the data (special tokens included)."""
    encoder = WindowEncoder(tokenizer, max_length, stride)
    return sum(len(w.input_ids) for w in encoder.encode([s.tokens for s in data.sentences]))


def trainer_features(
    tokenizer: Any, data: Dataset, labels: list[str], max_length: int
) -> list[dict[str, list[int]]]:
    """The usual Hugging Face recipe: words tokenized with `is_split_into_words`, each
    word's label on its first sub-token, -100 on later sub-tokens and special tokens."""
    index = {label: i for i, label in enumerate(labels)}
    sentences = [s for s in data.sentences if s.tokens]
    enc = tokenizer(
        [s.tokens for s in sentences],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    features = []
    for i, sentence in enumerate(sentences):
        word_ids = enc.word_ids(i)
        tags = []
        previous = None
        for w in word_ids:
            tags.append(IGNORE if w is None or w == previous else index[sentence.tags[w]])
            previous = w
        feature = {key: enc[key][i] for key in enc}
        feature["labels"] = tags
        features.append(feature)
    return features


def run_ours(data: Dataset, small: Dataset, config: TrainConfig, precision: str) -> dict[str, Any]:
    reports: list[Progress] = []

    def callback(p: Progress) -> None:
        if p.stage != "training":
            reports.append(p)

    with tempfile.TemporaryDirectory(prefix="train-throughput-ours-") as tmp:
        t0 = time.perf_counter()
        train(
            data,
            Path(tmp) / "model",
            config,
            validation=small,
            test=small,
            callback=callback,
            precision=precision,
            device="cpu",
        )
        wall = time.perf_counter() - t0
    evaluated = [p for p in reports if p.stage == "evaluated"]
    tested = [p for p in reports if p.stage == "tested"]
    last = evaluated[-1]
    if last.epoch != config.epochs or last.step != last.total_steps:
        raise SystemExit(f"our run stopped early: epoch {last.epoch}, step {last.step}")
    # The test pass evaluates the same 32 sentences once: what one validation costs.
    eval_seconds = tested[-1].seconds - last.seconds if tested else None
    return {
        "seconds": last.seconds,
        "steps": last.step,
        "one_small_evaluation_seconds": eval_seconds,
        # Informational only (the ratio uses "seconds"): the evaluations taken off.
        "seconds_less_evaluations_estimate": (
            last.seconds - len(evaluated) * eval_seconds if eval_seconds is not None else None
        ),
        "evaluations_included": len(evaluated),
        "wall_seconds_whole_train_call": wall,
    }


def run_trainer(
    base: str,
    tokenizer: Any,
    features: list[dict[str, list[int]]],
    labels: list[str],
    args: argparse.Namespace,
    bf16: bool,
    seed: int,
) -> dict[str, Any]:
    set_seed(seed)
    model = AutoModelForTokenClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        ignore_mismatched_sizes=True,
    )
    with tempfile.TemporaryDirectory(prefix="train-throughput-trainer-") as tmp:
        training_args = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=args.batch_size,
            num_train_epochs=args.epochs,
            learning_rate=1e-4,
            eval_strategy="no",
            save_strategy="no",
            report_to=[],
            logging_strategy="no",
            disable_tqdm=True,
            use_cpu=True,
            bf16=bf16,
            dataloader_num_workers=0,
            seed=seed,
            train_sampling_strategy=(
                "group_by_length" if args.trainer_group_by_length else "random"
            ),
        )
        trainer = Trainer(
            model=model,
            args=training_args,
            train_dataset=features,  # type: ignore[arg-type]
            data_collator=DataCollatorForTokenClassification(tokenizer),
            processing_class=tokenizer,
        )
        trainer.remove_callback(PrinterCallback)  # its end-of-run metrics line on stdout
        t0 = time.perf_counter()
        output = trainer.train()
        wall = time.perf_counter() - t0
    return {
        "seconds": output.metrics["train_runtime"],
        "steps": output.global_step,
        "wall_seconds_whole_train_call": wall,
        "optimizer": getattr(training_args.optim, "value", str(training_args.optim)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED_DATA / "conll2003" / "train.txt"))
    parser.add_argument("--validation", default=str(SHARED_DATA / "conll2003" / "valid.txt"))
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--base-model", default=None, help="default: the packaged MiniLM")
    parser.add_argument(
        "--trainer-group-by-length",
        action="store_true",
        help="give the Trainer length-grouped batches, as ours has",
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the untimed warm-up run of each arm (2 batches) before the rounds",
    )
    parser.add_argument("--name", default="train-throughput")
    args = parser.parse_args()
    try:
        import accelerate  # noqa: F401  (the Trainer needs it; the project does not)
    except ImportError:
        raise SystemExit(
            "the Trainer arm needs accelerate: pip install 'accelerate>=1.1.0'"
        ) from None
    hf_logging.set_verbosity_error()  # the new classifier head's "newly initialized" warning
    hf_logging.disable_progress_bar()  # "Loading weights" bars

    start_machine = machine()
    # The CPU flags (machine() reads them) and the kernels torch picked from them.
    flags = {
        **start_machine["cpu_flags"],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    base = resolve_base_model(args.base_model) if args.base_model else default_base_model()
    full = read_dataset(args.data)
    data = full.subset(full.sentences[: args.sentences], f"[:{args.sentences}]")
    valid = read_dataset(args.validation)
    small = valid.subset(valid.sentences[:VALIDATION_SENTENCES], f"[:{VALIDATION_SENTENCES}]")
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        base_model=base,
        onnx=False,
        # Early stopping must not cut our run short of the Trainer's epochs (the tiny
        # validation set often scores the same twice); patience only decides stopping.
        patience=max(2, args.epochs),
    )
    bf16 = use_bf16(torch.device("cpu"), args.precision)
    assert bf16 == (args.precision == "bf16" or (args.precision == "auto" and cpu_has_amx()))

    tokenizer = AutoTokenizer.from_pretrained(base)
    labels = label_list(data.entity_types)
    max_length = config.max_length or max_length_of(base, tokenizer)
    ours_tokens = our_token_count(tokenizer, data, max_length, config.stride)
    features = trainer_features(tokenizer, data, labels, max_length)
    trainer_tokens = sum(len(f["input_ids"]) for f in features)
    tokens = ours_tokens * args.epochs
    log(
        f"{len(data)} sentences, {ours_tokens} sub-tokens an epoch (Trainer's encoding: "
        f"{trainer_tokens}), {args.epochs} epoch(s), batch {args.batch_size}, bf16 {bf16}, "
        f"{torch.get_num_threads()} threads"
    )

    if not args.no_warmup:
        # First calls pick and compile kernels (oneDNN): paid here, untimed, by each arm.
        warm = data.subset(data.sentences[: 2 * args.batch_size], "[warm-up]")
        warm_config = config.model_copy(update={"epochs": 1, "patience": 2})
        log(f"warm-up: {len(warm)} sentences, each arm once, untimed")
        run_ours(warm, small, warm_config, args.precision)
        warm_args = argparse.Namespace(**{**vars(args), "epochs": 1})
        warm_features = trainer_features(tokenizer, warm, labels, max_length)
        run_trainer(base, tokenizer, warm_features, labels, warm_args, bf16, config.seed)

    rounds = []
    for r in range(args.rounds):
        # ABBA: neither arm is always the first to run on a fresh process or a hot machine.
        order = ["ours", "trainer"] if r % 2 == 0 else ["trainer", "ours"]
        runs: dict[str, dict[str, Any]] = {}
        for arm in order:
            gc.collect()
            if arm == "ours":
                runs[arm] = run_ours(data, small, config, args.precision)
            else:
                runs[arm] = run_trainer(base, tokenizer, features, labels, args, bf16, config.seed)
            runs[arm]["tokens_per_second"] = tokens / runs[arm]["seconds"]
            log(
                f"round {r + 1} {arm}: {runs[arm]['seconds']:.1f} s, "
                f"{runs[arm]['tokens_per_second']:,.0f} tokens/s"
            )
        ratio = runs["ours"]["tokens_per_second"] / runs["trainer"]["tokens_per_second"]
        log(f"round {r + 1}: ratio ours/trainer {ratio:.3f}")
        rounds.append({"order": order, **runs, "ratio_ours_over_trainer": ratio})

    def median(arm: str, key: str) -> float:
        return statistics.median(r[arm][key] for r in rounds)

    ratios = [r["ratio_ours_over_trainer"] for r in rounds]
    result = {
        "command": " ".join(["python", *sys.argv]),
        "machine": start_machine,
        "cpu_flags": flags,
        "base_model": base,
        "data": {"name": data.name, **data.stats()},
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "warmup": not args.no_warmup,
        "precision": args.precision,
        "bf16": bf16,
        "threads": torch.get_num_threads(),
        "tokens": tokens,
        "tokens_counted_as": (
            "non-padding sub-tokens (special tokens included) of the training windows as our "
            "training encodes them (WindowEncoder), times epochs; the same count divides both "
            "times, so the tokens/s ratio is the inverse time ratio"
        ),
        "tokens_per_epoch": {"ours_encoding": ours_tokens, "trainer_encoding": trainer_tokens},
        "timed": {
            "ours": "train_steps' own clock: first training step to the end of the last "
            "epoch's validation on 32 sentences (one per epoch, included)",
            "trainer": "train_runtime from trainer.train()'s metrics (its training loop)",
        },
        "rounds": rounds,
        "ours_seconds_median": round(median("ours", "seconds"), 2),
        "trainer_seconds_median": round(median("trainer", "seconds"), 2),
        "ours_tokens_per_second": round(median("ours", "tokens_per_second")),
        "trainer_tokens_per_second": round(median("trainer", "tokens_per_second")),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_min": round(min(ratios), 3),
        "goal": "ours tokens/s >= Trainer tokens/s (ratio >= 1) on both CPU kinds "
        "(with and without AMX)",
        "notes": [
            "ours: casing word shapes as token types (token-type table widened to 6 rows), "
            "length-grouped batches (LengthGroupedSampler), dynamic padding to a multiple "
            "of 8, every sub-token labelled, fused AdamW, weight decay 0.01, 10% warm-up, "
            "gradient clipping 1.0",
            "trainer: defaults but for the arguments set here: "
            + (
                "length-grouped batches (--trainer-group-by-length)"
                if args.trainer_group_by_length
                else "random batches (not grouped by length: more padding per batch)"
            )
            + ", dynamic padding, labels on first sub-tokens only, optimizer "
            f"{rounds[0]['trainer']['optimizer'] if rounds else '?'}, no weight decay, "
            "no warm-up, gradient clipping 1.0",
            "the Trainer times its loop only; ours also includes one 32-sentence validation "
            "per epoch (see one_small_evaluation_seconds)",
        ],
    }
    path = write_result(args.name, result)
    log(f"wrote {path}")
    summary = {
        k: result[k]
        for k in (
            "tokens",
            "bf16",
            "ours_seconds_median",
            "trainer_seconds_median",
            "ours_tokens_per_second",
            "trainer_tokens_per_second",
            "ratio_median",
            "ratio_min",
        )
    }
    summary["cpu"] = start_machine["cpu"]
    summary["amx_bf16"] = flags["amx_bf16"]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
