"""Which int8 weight format keeps a model's entities and is fastest on this CPU.

Quantises MODEL's fp32 export (`onnx/model.onnx`) three ways — signed weights (int8:
what a CPU with VNNI or AMX serves; without them ONNX Runtime sums these with 16-bit
saturation: `shared/ner/int8_probe.py`), signed 7-bit weights (int8-s7, `reduce_range`:
cannot saturate, coarser; what a CPU without VNNI serves where it passes its check) and
unsigned weights (int8-u8: exact everywhere, slower; served where 7 bits fail) — then,
in turns for `--rounds` rounds, tags DATA with each as `Predictor` serves it, and reports
F1, the share of sentences with fp32's entities, seconds, and ONNX Runtime's time per
operator type for one window of `--length` sub-tokens on one thread.

    python benchmarks/int8_formats.py --model runs/quick-conll

Writes benchmarks/results/<--name>.json with the CPU, its flags and the probe's answer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import AutoTokenizer

from benchmarks.common import SHARED_DATA, machine, write_result
from benchmarks.onnx_ops import op_profile
from shared.ner.evaluation import predict_tags, score
from shared.ner.formats import read_dataset
from shared.ner.inference import Predictor
from shared.ner.onnx_export import QUANTISATION, _quantise
from shared.ner.onnx_model import ONNX_DIR, VARIANT_FILES, OnnxModel, read_config
from shared.ner.word_tokenizer import WordTokenizer

# name in the results → the export's options for that variant; fp32 is the export itself.
FORMATS = {
    "signed": QUANTISATION["int8"],
    "signed-7bit": QUANTISATION["int8-s7"],
    "unsigned": QUANTISATION["int8-u8"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a saved model with an ONNX export")
    parser.add_argument("--data", default=str(SHARED_DATA / "conll2003" / "valid.txt"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--length", type=int, default=24, help="sub-tokens of the profiled window")
    parser.add_argument("--name", default="int8-formats")
    args = parser.parse_args()
    model_dir = Path(args.model)
    sentences = read_dataset(args.data).sentences
    gold = [s.tags for s in sentences]
    config = read_config(model_dir)
    tokenizer = WordTokenizer.load(model_dir) or AutoTokenizer.from_pretrained(model_dir)
    fp32 = model_dir / ONNX_DIR / VARIANT_FILES["fp32"]

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        files = {"fp32": fp32}
        for name, options in FORMATS.items():
            files[name] = tmp / f"{name}.onnx"
            _quantise(fp32, files[name], **options)
        tags: dict[str, list[list[str]]] = {}
        seconds: dict[str, list[float]] = {name: [] for name in files}
        for turn in range(args.rounds):
            for name, path in files.items():
                kind = "fp32" if name == "fp32" else "int8"
                predictor = Predictor(OnnxModel(path, config, kind), tokenizer)
                began = time.perf_counter()
                tags[name] = predict_tags(predictor, sentences)
                seconds[name].append(round(time.perf_counter() - began, 2))
                print(f"round {turn + 1} {name}: {seconds[name][-1]} s", flush=True)
        profiles = {
            name: op_profile(path, True, args.length, 200, tmp) for name, path in files.items()
        }

    reference = tags["fp32"]
    reference_f1 = score(gold, reference)["f1"]
    formats = {}
    for name in files:
        f1 = score(gold, tags[name])["f1"]
        same = sum(a == b for a, b in zip(tags[name], reference, strict=True)) / len(reference)
        formats[name] = {
            "f1": round(f1 * 100, 2),
            "f1_minus_fp32_points": round((f1 - reference_f1) * 100, 2),
            "same_entities_as_fp32": round(same, 4),
            "seconds": seconds[name],
            "one_window_us_by_op": profiles[name],
            "one_window_ms": round(sum(profiles[name].values()) / 1000, 2),
        }
        print(name, {k: v for k, v in formats[name].items() if k != "one_window_us_by_op"})
    path = write_result(
        args.name,
        {
            "command": "python " + " ".join(sys.argv),
            "machine": machine(),
            "model": str(model_dir),
            "data": {"file": args.data, "sentences": len(sentences)},
            "window_sub_tokens": args.length,
            "formats": formats,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
