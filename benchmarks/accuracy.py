"""Accuracy and training time of the default `ner train`, run as a user runs it.

    python benchmarks/accuracy.py conll    # CoNLL-2003 train → validation F1 (+ --test FILE)
    python benchmarks/accuracy.py gmb      # the original dataset, seeded 80/10/10 split
    python benchmarks/accuracy.py gmb --name accuracy-gmb-lr2e-4 --learning-rate 2e-4
                                           # any other option goes on to `ner train`
    python benchmarks/accuracy.py gmb-split --seed 43
                                           # the same split as `gmb`, given as files: another
                                           # training seed, the same test sentences
    python benchmarks/accuracy.py gmb-refit --epochs 4
                                           # the same split, trained on its train + validation
                                           # parts (a "final fit"), scored on its test part

Each preset runs the `ner` command in a subprocess, times it, then scores the
saved model with `ner evaluate`, and writes benchmarks/results/accuracy-<preset>.json.
The CoNLL test split is not in ../shared on purpose; pass `--test PATH` where you have it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED_DATA, machine, write_result

# The `ner` installed beside this Python, so the script works without an activated venv.
_beside = Path(sys.executable).with_name("ner")
NER = str(_beside) if _beside.exists() else "ner"

GMB = SHARED_DATA / "gmb" / "archive.zip"


def split_files(folder: Path, *, refit: bool = False, seed: int = 42) -> list[str]:
    """The GMB preset's seeded 80/10/10 split as CoNLL files in `folder`, and the `ner
    train` options that use them: training data = its train part (with `refit`: train +
    validation parts). Training then sees the split of `ner train --seed 42`, whatever
    `--seed` it is given."""
    from shared.ner.formats import read_dataset, split_dataset

    train, validation, test = split_dataset(read_dataset(GMB, skip_invalid=True), seed)

    def write(name: str, sentences: list) -> str:
        path = folder / name
        with path.open("w", encoding="utf-8") as f:
            for sentence in sentences:
                pairs = zip(sentence.tokens, sentence.tags, strict=True)
                f.writelines(f"{token} {tag}\n" for token, tag in pairs)
                f.write("\n")
        return str(path)

    training = train.sentences + validation.sentences if refit else train.sentences
    return [
        "--train",
        write("train+validation.conll" if refit else "train.conll", training),
        "--validation",
        write("validation.conll", validation.sentences),
        "--test",
        write("test.conll", test.sentences),
    ]


def refit_files(folder: Path) -> list[str]:
    return split_files(folder, refit=True)


# `train`: the `ner train` data options, or a function of a scratch folder that makes them.
PRESETS: dict[str, dict[str, Any]] = {
    "conll": {
        "train": [
            "--train",
            str(SHARED_DATA / "conll2003" / "train.txt"),
            "--validation",
            str(SHARED_DATA / "conll2003" / "valid.txt"),
        ],
        "evaluate_on": str(SHARED_DATA / "conll2003" / "valid.txt"),
        "goal": "validation f1 >= 0.900 within 25 minutes on 2 cores",
    },
    "gmb": {
        # 13 rows of the original file have more tags than tokens: left out, listed.
        "train": ["--train", str(GMB), "--skip-invalid"],
        "evaluate_on": None,  # the seeded 10% test split: its scores are training's metrics
        "goal": "report test f1 on the seeded 80/10/10 split",
    },
    # The same split and data as `gmb`, given as files (`split_files`): `--seed` then
    # changes only training's own randomness (classifier initialisation, batch order,
    # dropout), not which sentences are tested: how much the test F1 moves by seed alone.
    "gmb-split": {
        "train": split_files,
        "evaluate_on": None,
        "goal": "test f1 on the seeded 80/10/10 split, the split fixed at seed 42",
    },
    # What a final fit on train + validation would give, with the epoch count the default
    # run chose on validation (pass --epochs): the seeded split written out as CoNLL files
    # (`refit_files`); its validation part, now also trained on, only fills the history.
    "gmb-refit": {
        "train": refit_files,
        "evaluate_on": None,
        "goal": "test f1 of a final fit on the split's train + validation parts",
    },
}


def run(cmd: list[str]) -> tuple[dict, float]:
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"command failed with exit {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("--out", help="model directory (default runs/bench-<preset>-<time>)")
    parser.add_argument("--test", help="a held-out labelled file to score too")
    parser.add_argument(
        "--name", help="results file name (default accuracy-<preset>; name variants apart)"
    )
    # Anything else is passed on to `ner train`, e.g. --epochs 2.
    args, extra = parser.parse_known_args()
    preset = PRESETS[args.preset]
    out = args.out or f"runs/bench-{args.preset}-{time.strftime('%Y%m%d-%H%M%S')}"
    start_machine = machine()
    with tempfile.TemporaryDirectory() as folder:
        data = preset["train"](Path(folder)) if callable(preset["train"]) else preset["train"]
        train_cmd = [NER, "train", *data, "--out", out, "--quiet", *extra]
        trained, train_seconds = run(train_cmd)
    result = {
        "preset": args.preset,
        "goal": preset["goal"],
        "train_command": " ".join(train_cmd),
        "machine": start_machine,
        "train_seconds": round(train_seconds, 1),
        "model_dir": trained["model_dir"],
        "training_metrics": trained["metrics"],
        "training": json.loads((Path(out) / "training.json").read_text()),
    }
    if preset["evaluate_on"]:
        scores, _ = run([NER, "evaluate", "--model", out, "--data", preset["evaluate_on"]])
        result["validation"] = scores
    if args.test:
        scores, _ = run([NER, "evaluate", "--model", out, "--data", args.test])
        result["test"] = scores
    path = write_result(args.name or f"accuracy-{args.preset}", result)
    summary = {k: result[k] for k in ("preset", "train_seconds")}
    summary["validation_f1"] = result.get("validation", {}).get("f1")
    if "test" in result:
        summary["test_f1"] = result["test"]["f1"]
    elif preset["evaluate_on"] is None:
        summary["test_f1"] = trained["metrics"]["f1"]  # training's own test data
    print(json.dumps(summary))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
