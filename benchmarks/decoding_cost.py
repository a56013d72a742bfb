"""What the CRF's decoding costs at inference: one model, its learnt scores on and off.

A model trained with `decoding="crf"` (the default) runs Viterbi over its learnt scores
for every text; without them (`viterbi`) Viterbi runs only for texts whose best labels
break the IOB2 grammar. Same served model (the ONNX export `Predictor.load` picks), same
process, same sentences (the first N of CoNLL-2003 validation as raw text), the two
decoders taking turns each round. Reports bulk words/second of each, the seconds spent
inside the decoder, one-sentence latency p50/p99 of each, and the F1 of each.

    python benchmarks/decoding_cost.py --model runs/bench-conll-crf
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import entities_to_tags, machine, percentile, tagging_arguments, write_result
from shared.ner import Predictor, read_dataset, score
from shared.ner.decoding import Decoder


class TimedDecoder:
    """A decoder that adds up the seconds spent in it."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder, self.method, self.seconds = decoder, decoder.method, 0.0

    def many(self, matrices: list[np.ndarray]) -> list[list[int]]:
        t0 = time.perf_counter()
        out = self.decoder.many(matrices)
        self.seconds += time.perf_counter() - t0
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    tagging_arguments(parser, sentences=3250, name="decoding-cost")  # --model: a CRF model
    args = parser.parse_args()

    sentences = read_dataset(args.data).sentences[: args.sentences]
    texts = [s.text for s in sentences]
    words = sum(len(s.words) for s in sentences)
    predictor = Predictor.load(args.model)
    crf_scores = getattr(predictor.model.config, "ner_crf", None)
    if predictor.decoder.method != "crf" or crf_scores is None:
        raise SystemExit(f"{args.model} was not trained with decoding=crf")
    decoders = {
        "crf": TimedDecoder(Decoder(predictor.id2label, "crf", crf_scores)),
        "viterbi": TimedDecoder(Decoder(predictor.id2label, "viterbi")),
    }

    def run(name: str, batch: list[str]) -> list[Any]:
        predictor.decoder = decoders[name]  # type: ignore[assignment]  # same interface
        return predictor.predict(batch)

    f1 = {}
    for name in decoders:  # warm-up, and the F1 of each
        out = run(name, texts)
        tags = [entities_to_tags(s, e) for s, e in zip(sentences, out, strict=True)]
        f1[name] = score([s.tags for s in sentences], tags)["f1"]

    rounds: list[dict[str, float]] = []
    for r in range(args.rounds):
        row: dict[str, float] = {}
        for name, decoder in decoders.items():
            decoder.seconds = 0.0
            t0 = time.perf_counter()
            run(name, texts)
            row[f"{name}_wps"] = words / (time.perf_counter() - t0)
            row[f"{name}_decoder_s"] = decoder.seconds
        rounds.append(row)
        print(
            f"round {r + 1}: crf {row['crf_wps']:,.0f} w/s ({row['crf_decoder_s']:.3f} s "
            f"decoding), viterbi {row['viterbi_wps']:,.0f} w/s "
            f"({row['viterbi_decoder_s']:.3f} s decoding)",
            file=sys.stderr,
        )

    latency: dict[str, list[float]] = {name: [] for name in decoders}
    for text in texts[: args.latency_samples]:
        for name in decoders:
            t0 = time.perf_counter()
            run(name, [text])
            latency[name].append((time.perf_counter() - t0) * 1000)

    def pct(values: list[float], p: float) -> float:
        return round(percentile(values, p), 3)

    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in rounds), 3)

    result = {
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "model": args.model,
        "backend": predictor.backend,
        "sentences": len(texts),
        "words": words,
        "rounds": rounds,
        "words_per_second": {name: median(f"{name}_wps") for name in decoders},
        "decoder_seconds": {name: median(f"{name}_decoder_s") for name in decoders},
        "bulk_ratio_crf_to_viterbi": round(median("crf_wps") / median("viterbi_wps"), 3),
        "latency_ms_one_sentence": {
            name: {"p50": pct(v, 50), "p99": pct(v, 99), "samples": len(v)}
            for name, v in latency.items()
        },
        "f1": f1,
    }
    path = write_result(args.name, result)
    print(f"wrote {path}", file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
