"""Export a saved model to ONNX for CPU serving, and decide whether it may serve.

Run once when a model is saved (`train`), so the export travels with the model's files
(checksummed in the store's manifest like every other file):

1. Export with PyTorch's TorchScript exporter (`dynamo=False`), the model loaded with
   eager attention. Why not the newer dynamo exporter: it takes ~7× longer here (18 s
   against 2.5 s for MiniLM), writes the weights to a second file, and its attention
   graph is one ONNX Runtime's transformer optimizer does not recognise; the TorchScript
   graph of eager attention is fused (Attention, EmbedLayerNormalization, BiasGelu).
2. Fuse with `onnxruntime.transformers.optimizer` → `onnx/model.onnx` (fp32). Every
   fusion but SkipLayerNormalization: on this ONNX Runtime (1.32) its CPU kernel is
   scalar, and on sentence-sized inputs the 12 of them took a quarter of an int8 run;
   the residual Add and ONNX's own LayerNormalization (vectorised) in its place make one
   sentence 15-35 % faster (int8, 16-48 sub-tokens; fp32 ~13 %), with the same output
   (fp32 within 4e-6). `benchmarks/onnx_ops.py` measures it again.
3. Quantise the fused graph's weights to int8 (`quantize_dynamic`, per channel). Where
   this CPU sums signed products exactly (`int8_probe.py`), signed weights →
   `onnx/model.int8.onnx` (ONNX Runtime multiplies them with AMX tiles where the CPU has
   them, else VNNI: benchmarks/cpu_paths.py). On every CPU, for those without VNNI/AMX,
   a variant whose sums are exact everywhere: signed weights in 7 bits →
   `onnx/model.int8-s7.onnx` (the fast signed kernel, coarser weights), or, where that
   one fails its check, unsigned weights → `onnx/model.int8-u8.onnx` (full 8 bits,
   about 25 % slower without VNNI).
4. Check that `tokenizer.json` alone tokenizes the validation sentences as transformers
   does (`word_tokenizer.py`; `word_tokenizer` in the report): then serving needs neither
   transformers nor torch. Tag the model's own validation sentences with PyTorch (fp32,
   the reference) and with each ONNX variant (with the tokenizer that will serve it).
   fp32 passes when it gives the same entities for ≥ 99.5 % of the sentences and an F1
   within 0.1 point of the reference; an int8 variant passes when its F1 is within 0.3
   point. `onnx/serving.json` records every figure, whether this CPU's signed int8 was
   exact, and which variant serves here (`onnx_model.serving_variant`, which each
   serving CPU applies again): int8 where it passed, else fp32, else none (PyTorch
   serves, with a warning).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from .int8_probe import signed_int8_exact
from .onnx_model import (
    INPUT_NAMES,
    ONNX_DIR,
    SERVING_FILE,
    VARIANT_FILES,
    OnnxModel,
    serving_variant,
)
from .runtime import MODEL_ERRORS
from .word_tokenizer import WordTokenizer

if TYPE_CHECKING:
    from .formats import Sentence

log = logging.getLogger(__name__)

MIN_AGREEMENT = 0.995  # share of sentences with exactly the reference's entities (fp32)
FP32_F1_TOLERANCE = 0.001  # F1 as a fraction: 0.1 point
INT8_F1_TOLERANCE = 0.003  # 0.3 point
# Parity is measured on at most this many validation sentences (CoNLL's 3,250 all fit).
MAX_PARITY_SENTENCES = 5000
OPSET = 17


def _export_errors() -> tuple[type[BaseException], ...]:
    """What a failed export or a graph ONNX Runtime refuses raises (its errors are not
    RuntimeErrors), so a model that cannot be exported is served by PyTorch instead."""
    import onnx.checker
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    return (
        *MODEL_ERRORS,
        OSError,
        onnx.checker.ValidationError,
        ort_state.Fail,
        ort_state.InvalidGraph,
        ort_state.InvalidArgument,
        ort_state.NotImplemented,
        ort_state.RuntimeException,
    )


class _Logits(torch.nn.Module):
    """The model with positional inputs and the logits as its only output."""

    def __init__(self, model: torch.nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.model = model
        self.names = list(names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs, strict=True))).logits


def _export_fp32(model_dir: Path, dest: Path) -> Any:
    """The fused fp32 graph at `dest`; returns the model's config."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForTokenClassification.from_pretrained(
        model_dir, attn_implementation="eager"
    ).eval()
    accepted = inspect.signature(model.forward).parameters
    names = [n for n in INPUT_NAMES if n in accepted]
    # Two texts of different lengths: the graph is traced with padding and a real mask.
    sample = tokenizer(
        ["Anna Smith flew to Paris .", "EU rejects German call to boycott British lamb ."],
        padding=True,
        return_tensors="pt",
    )
    inputs = tuple(
        sample[n] if n in sample else torch.zeros_like(sample["input_ids"]) for n in names
    )
    raw = dest.with_name("raw.onnx")
    with torch.inference_mode(), warnings.catch_warnings():
        # The TorchScript exporter warns that it is legacy (chosen on purpose, see above),
        # and the tracer that Python-side shape checks become constants (they are, for
        # these models: the graph is checked against PyTorch on real data below).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        # Negative indices would be mis-exported; the parity check below would catch it.
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        torch.onnx.export(
            _Logits(model, names),
            inputs,
            str(raw),
            input_names=names,
            output_names=["logits"],
            dynamic_axes={n: {0: "batch", 1: "length"} for n in [*names, "logits"]},
            opset_version=OPSET,
            dynamo=False,
        )
    config = model.config
    fusions = FusionOptions("bert")
    # Not SkipLayerNormalization (nor its bias variant): slower than Add + LayerNormalization
    # on the CPU (the module's docstring); `OnnxModel` stops ONNX Runtime fusing it at load.
    fusions.enable_skip_layer_norm = False
    fusions.enable_bias_skip_layer_norm = False
    fused = optimize_model(
        str(raw),
        model_type="bert",  # BERT-family fusions; a graph they do not match stays as it is
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        optimization_options=fusions,
        opt_level=1,
    )
    fused.save_model_to_file(str(dest))
    raw.unlink()
    log.info("onnx fusions: %s", fused.get_fused_operator_statistics())
    return config


# The `_quantise` options of each int8 variant (`onnx_model.VARIANT_FILES`).
QUANTISATION = {
    "int8": {},
    "int8-s7": {"reduce_range": True},
    "int8-u8": {"signed": False},
}


def _quantise(src: Path, dest: Path, *, signed: bool = True, reduce_range: bool = False) -> None:
    """Dynamic int8 weights, per channel: `signed` int8 or uint8; `reduce_range`: signed
    weights in 7 bits (-64…64), whose pairs of products fit 16 bits on every CPU
    (`int8_probe.py`). benchmarks/int8_formats.py compares the three."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _without_preprocessing_hint():
        quantize_dynamic(
            str(src),
            str(dest),
            weight_type=QuantType.QInt8 if signed else QuantType.QUInt8,
            per_channel=True,
            reduce_range=reduce_range,
            # The fused operators have no type for shape inference to report: they are fp32.
            extra_options={"DefaultTensorType": 1},
        )


class _PreprocessingHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextlib.contextmanager
def _without_preprocessing_hint() -> Iterator[None]:
    """`quantize_dynamic` advises, through the root logger, a pre-processing step meant for
    static quantisation of image models, on every `ner train`'s stderr. It is dropped here;
    and since `logging.warning` gives a root logger with no handler one of its own for the
    rest of the process, a placeholder stands in for the call."""
    root = logging.getLogger()
    placeholder = logging.NullHandler() if not root.handlers else None
    hint = _PreprocessingHint()
    root.addFilter(hint)
    if placeholder:
        root.addHandler(placeholder)
    try:
        yield
    finally:
        root.removeFilter(hint)
        if placeholder:
            root.removeHandler(placeholder)


def _tag(predictor: Any, sentences: Sequence[Sentence]) -> tuple[list[list[str]], float]:
    from .evaluation import predict_tags

    start = time.perf_counter()
    tags = predict_tags(predictor, sentences)
    return tags, time.perf_counter() - start


def export_for_serving(
    model_dir: str | Path, sentences: Sequence[Sentence], *, quantise: bool = True
) -> dict[str, Any]:
    """Export `model_dir` to `model_dir/onnx/`, check each variant on `sentences` (the
    model's validation data) and write `onnx/serving.json`; returns that report.

    A model that cannot be exported, or whose export fails the checks, keeps a report
    saying why, and is served by PyTorch."""
    from .evaluation import score
    from .inference import Predictor

    model_dir = Path(model_dir)
    target = model_dir / ONNX_DIR
    partial = model_dir / (ONNX_DIR + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    began = time.perf_counter()
    sentences = list(sentences)[:MAX_PARITY_SENTENCES]
    report: dict[str, Any] = {"serve": None, "sentences": len(sentences), "variants": {}}
    try:
        import onnxruntime

        report["onnxruntime"] = onnxruntime.__version__
        if not sentences:
            raise ValueError("no validation sentences to check the export on")
        config = _export_fp32(model_dir, partial / VARIANT_FILES["fp32"])

        def quantise_to(variant: str) -> None:
            _quantise(
                partial / VARIANT_FILES["fp32"],
                partial / VARIANT_FILES[variant],
                **QUANTISATION[variant],
            )

        if quantise:
            # Signed 8-bit weights only where their products are summed exactly: checked
            # elsewhere, the figures would hold for this CPU's saturated sums alone.
            report["signed_int8_exact"] = signed_int8_exact()
            if report["signed_int8_exact"]:
                quantise_to("int8")
            # And one exact on every CPU, for CPUs without VNNI/AMX (this one, or those
            # that serve a model made here): 7-bit signed weights, the fast signed kernel;
            # unsigned 8-bit weights below where they lose too much.
            quantise_to("int8-s7")
        report["export_seconds"] = round(time.perf_counter() - began, 1)

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        torch_model = AutoModelForTokenClassification.from_pretrained(model_dir)
        reference = Predictor(torch_model, tokenizer, device="cpu", precision="fp32")
        gold = [s.tags for s in sentences]
        ref_tags, ref_seconds = _tag(reference, sentences)
        ref_f1 = score(gold, ref_tags)["f1"]
        report["reference"] = {
            "backend": "torch-fp32",
            "f1": ref_f1,
            "seconds": round(ref_seconds, 2),
        }
        del reference, torch_model

        # Served without transformers where the tokenizer file alone gives the same
        # sub-tokens (word_tokenizer.py); the variants are checked with what will serve.
        light = WordTokenizer.load(model_dir)
        word_lists = [[s.text[a:b] for a, b in s.words] for s in sentences]
        if light is not None and not light.matches(tokenizer, word_lists):
            light = None
        report["word_tokenizer"] = light is not None
        serving_tokenizer = light or tokenizer

        def check(variant: str) -> bool:
            path = partial / VARIANT_FILES[variant]
            predictor = Predictor(OnnxModel(path, config, variant), serving_tokenizer)
            tags, seconds = _tag(predictor, sentences)
            agreement = sum(a == b for a, b in zip(tags, ref_tags, strict=True)) / len(tags)
            f1 = score(gold, tags)["f1"]
            gap = abs(f1 - ref_f1)
            passed = (
                agreement >= MIN_AGREEMENT and gap <= FP32_F1_TOLERANCE
                if variant == "fp32"
                else gap <= INT8_F1_TOLERANCE
            )
            report["variants"][variant] = {
                "file": f"{ONNX_DIR}/{VARIANT_FILES[variant]}",
                "same_entities": round(agreement, 4),
                "f1": f1,
                "f1_gap_points": round(gap * 100, 2),
                "passed": passed,
                "seconds": round(seconds, 2),
                "speedup_vs_torch_fp32": round(ref_seconds / seconds, 2) if seconds else None,
            }
            return passed

        if quantise:
            if report["signed_int8_exact"]:
                check("int8")
            if not check("int8-s7"):
                quantise_to("int8-u8")
                check("int8-u8")
        check("fp32")
        # What this CPU serves; each serving CPU chooses again from the same figures.
        report["serve"] = serving_variant(report)
        if report["serve"] is None:
            report["reason"] = "the fp32 export does not give the PyTorch model's entities"
        for variant, checked in report["variants"].items():
            if not checked["passed"] or report["serve"] is None:
                # Never served: not kept, not uploaded with the model.
                (partial / VARIANT_FILES[variant]).unlink()
                checked["file"] = None
    except _export_errors() as exc:
        report["serve"] = None
        report["reason"] = f"export failed: {type(exc).__name__}: {exc}"[:500]
        for name in VARIANT_FILES.values():
            (partial / name).unlink(missing_ok=True)
    report["seconds"] = round(time.perf_counter() - began, 1)
    if report["serve"] is None:
        log.warning("%s will be served by PyTorch: %s", model_dir, report["reason"])
    (partial / SERVING_FILE).write_text(json.dumps(report, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return report
