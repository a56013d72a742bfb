"""Bulk tagging speed: our Predictor against the stock transformers pipeline.

Same trained model, same sentences (the first N of CoNLL-2003 validation, given
as raw text), same process, runs alternating so both see the same machine load.
Reports words/second of each and their ratio, the F1 of each on those
sentences, the F1 of our Predictor in its default (int8 ONNX, or bf16 on AMX for a model
without an ONNX export) and in fp32 (the default is used only when it
keeps F1 within 0.3), and one-sentence latency p50/p99.

    python benchmarks/speed.py --model runs/conll
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import entities_to_tags, machine, percentile, tagging_arguments, write_result
from shared.ner import Predictor, read_dataset, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    tagging_arguments(parser, sentences=1500, name="speed")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    sentences = read_dataset(args.data).sentences[: args.sentences]
    texts = [s.text for s in sentences]
    words = sum(len(s.words) for s in sentences)
    gold = [s.tags for s in sentences]

    stock = pipeline(
        "token-classification",
        model=args.model,
        aggregation_strategy="simple",
        batch_size=32,
        device=-1,
    )
    ours = Predictor.load(args.model)
    ours_fp32 = Predictor.load(args.model, precision="fp32")

    # Warm-up (first calls allocate and pick kernels) and the F1 of each.
    stock_out = stock(texts)
    ours_out = ours.predict(texts, batch_size=args.batch_size)
    fp32_out = ours_fp32.predict(texts, batch_size=args.batch_size)

    def scored(outputs: list) -> dict:
        return score(
            gold, [entities_to_tags(s, e) for s, e in zip(sentences, outputs, strict=True)]
        )

    f1 = {
        "pipeline": scored(stock_out),
        "predictor": scored(ours_out),
        "predictor_fp32": scored(fp32_out),
    }

    rounds = []
    for r in range(args.rounds):
        t0 = time.perf_counter()
        stock(texts)
        t1 = time.perf_counter()
        ours.predict(texts, batch_size=args.batch_size)
        t2 = time.perf_counter()
        rounds.append({"pipeline_wps": words / (t1 - t0), "predictor_wps": words / (t2 - t1)})
        print(
            f"round {r + 1}: pipeline {words / (t1 - t0):,.0f} w/s, "
            f"predictor {words / (t2 - t1):,.0f} w/s, ratio {(t1 - t0) / (t2 - t1):.2f}",
            file=sys.stderr,
        )

    latencies = []
    for text in texts[: args.latency_samples]:
        t0 = time.perf_counter()
        ours.predict([text])
        latencies.append((time.perf_counter() - t0) * 1000)

    def pct(p: float) -> float:
        return round(percentile(latencies, p), 2)

    ratios = [r["predictor_wps"] / r["pipeline_wps"] for r in rounds]
    result = {
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "model": args.model,
        "sentences": len(texts),
        "words": words,
        "predictor": {
            "backend": ours.backend,  # onnx-int8 / onnx-fp32 / torch-bf16 / torch-fp32
            "fp32_backend": ours_fp32.backend,
            "bf16": ours.bf16,
            "batch_size": args.batch_size,
            "threads": torch.get_num_threads(),
        },
        "rounds": rounds,
        "pipeline_words_per_second": round(statistics.median(r["pipeline_wps"] for r in rounds)),
        "predictor_words_per_second": round(statistics.median(r["predictor_wps"] for r in rounds)),
        "ratio_median": round(statistics.median(ratios), 2),
        "ratio_min": round(min(ratios), 2),
        "f1": {k: v["f1"] for k, v in f1.items()},
        "f1_gap_pipeline_vs_predictor": round(
            abs(f1["pipeline"]["f1"] - f1["predictor"]["f1"]) * 100, 2
        ),
        # The default (int8 ONNX, or bf16 on AMX without an export) against fp32.
        "f1_gap_default_vs_fp32": round(
            abs(f1["predictor"]["f1"] - f1["predictor_fp32"]["f1"]) * 100, 2
        ),
        "latency_ms_one_sentence": {"p50": pct(50), "p99": pct(99), "samples": len(latencies)},
    }
    path = write_result(args.name, result)
    print(f"wrote {path}", file=sys.stderr)
    print(json_dump(result))


def json_dump(obj: object) -> str:
    import json

    return json.dumps(obj, indent=2)


if __name__ == "__main__":
    main()
