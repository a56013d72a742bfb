"""Helpers the benchmark scripts share: machine description, result files, span → tag scoring."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from benchmarks.http_common import machine as http_machine
from shared.ner.formats import Sentence
from shared.ner.runtime import cpu_has_amx

RESULTS = Path(__file__).parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def machine() -> dict[str, Any]:
    """`http_common.machine()` and what torch sees: threads, AMX usable, CUDA."""
    return {
        **http_machine(),
        "torch_threads": torch.get_num_threads(),
        "amx": cpu_has_amx(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
    }


def tagging_arguments(parser: argparse.ArgumentParser, *, sentences: int, name: str) -> None:
    """The options of the scripts that time tagging a model on CoNLL-2003 validation text:
    which model and data, how many sentences and rounds, latency samples, result name."""
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", default=str(SHARED_DATA / "conll2003" / "valid.txt"))
    parser.add_argument("--sentences", type=int, default=sentences)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--name", default=name)


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile of `values` by rank (the value at index p% of the sorted list)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def entities_to_tags(sentence: Sentence, entities: list[dict[str, Any]]) -> list[str]:
    """Word tags from character-span entities: a word belongs to the entity it overlaps.

    Used to score tools (the stock pipeline) whose spans need not fall on our words.
    """
    tags = ["O"] * len(sentence.words)
    for ent in sorted(entities, key=lambda e: e["start"]):
        label = ent.get("entity_group") or ent.get("label")
        inside = [
            i for i, (a, b) in enumerate(sentence.words) if a < ent["end"] and b > ent["start"]
        ]
        if not inside or any(tags[i] != "O" for i in inside):
            continue
        tags[inside[0]] = f"B-{label}"
        for i in inside[1:]:
            tags[i] = f"I-{label}"
    return tags
