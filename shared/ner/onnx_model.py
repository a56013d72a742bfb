"""A model's ONNX export served by ONNX Runtime: what `Predictor` needs of a model.

On a CPU a 22 M-parameter encoder on one sentence is a few million multiply-adds; the
time goes to framework overhead, which ONNX Runtime cuts (one fused graph, no autograd
or dispatcher): one sentence tags in about a third of PyTorch's time. The export and the
checks that decide whether a model may be served this way are `onnx_export.py`; which
file serves is recorded in `onnx/serving.json` beside the model.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ONNX_DIR = "onnx"
SERVING_FILE = "serving.json"
# The files of each ONNX variant inside `onnx/`, in order of preference where several
# passed: int8 with signed weights (fastest with VNNI/AMX, exact only there); signed
# weights in 7 bits (exact on every CPU, and as fast as 8 bits: ONNX Runtime's signed
# kernel); unsigned weights (exact on every CPU, full 8 bits, but widened to 16 bits
# before multiplying: a window took 5.6 ms against 4.5 on an AVX2 CPU); fp32.
# `int8_probe.py` says why and where.
VARIANT_FILES = {
    "int8": "model.int8.onnx",
    "int8-s7": "model.int8-s7.onnx",
    "int8-u8": "model.int8-u8.onnx",
    "fp32": "model.onnx",
}
INT8_VARIANTS = ("int8", "int8-s7", "int8-u8")
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
# ONNX Runtime graph rewrites left out when a session loads. SkipLayerNormalization's CPU
# kernel is scalar (1.32): on a sentence it costs more than the residual Add and the
# vectorised LayerNormalization it replaces (`onnx_export.py`; benchmarks/onnx_ops.py).
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def available_cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def serving_report(model_dir: str | Path) -> dict[str, Any] | None:
    """What the export decided for this model (`onnx/serving.json`), or None when it has none."""
    path = Path(model_dir) / ONNX_DIR / SERVING_FILE
    if not path.is_file():
        return None
    report: dict[str, Any] = read_json(path)
    return report


class OnnxModel:
    """An ONNX Runtime session over one exported variant, with the model's HF config.

    Called with numpy inputs (names as `INPUT_NAMES`), returns the logits as float32.
    ONNX Runtime sessions are safe to run from several threads."""

    def __init__(self, path: str | Path, config: Any, variant: str, threads: int = 0) -> None:
        import onnxruntime as ort

        # Dynamic int8 quantises each MatMul's input with one scale for the whole tensor,
        # measured at run time: in a batch, a text's numbers would depend on the texts
        # (and padding) beside it, and so, now and then, its entities. An int8 model is
        # therefore run one window at a time (no padding, nobody else's scale): a text
        # gets the same entities whatever it is sent with. Its windows run side by side,
        # one per core, each on one thread: a window of a sentence is too small to share
        # between cores (two threads per run cost 60% more CPU for 20% less latency), and
        # the int8 kernels are as efficient on one window as on 64 (docs/benchmarks.md).
        self.batchable = variant not in INT8_VARIANTS
        self.parallel = 1 if self.batchable else available_cores()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # 0: one thread per physical core (ONNX Runtime's default), for batched fp32.
        options.intra_op_num_threads = threads or (0 if self.batchable else 1)
        options.inter_op_num_threads = 1
        # No arena: a long document's activations (hundreds of MB) go back to malloc, and
        # from there to the system (`release_free_memory`), instead of staying reserved by
        # the session for ever; a short text's few MB cost nothing to allocate.
        options.enable_cpu_mem_arena = False
        self.session = ort.InferenceSession(
            str(path),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(DISABLED_OPTIMIZERS),
        )
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.config = config
        self.variant = variant
        # Whether the export found that `tokenizer.json` alone tokenizes as transformers
        # does (serving.json's `word_tokenizer`); set by `load_onnx`.
        self.tokenizer_checked = False

    @property
    def backend(self) -> str:
        return f"onnx-{self.variant}"

    def __call__(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        outputs = self.session.run(["logits"], {k: v for k, v in feeds.items() if k in self.inputs})
        return np.asarray(outputs[0], dtype=np.float32)


def serving_variant(report: dict[str, Any], precision: str | None = None) -> str | None:
    """The variant this CPU serves, of those that passed their checks: None where the fp32
    export did not (PyTorch serves). `precision` "fp32" or "int8" narrows the choice.

    Signed int8 weights serve only where both the CPU that checked them and this one sum
    their products exactly (`int8_probe.py`): elsewhere the numbers would not be the ones
    checked. A report from before the probe (no `signed_int8_exact`) was written on a CPU
    with VNNI or AMX, the only kind the project ran on then."""
    variants = report.get("variants", {})

    def passed(name: str) -> bool:
        return bool(variants.get(name, {}).get("passed"))

    if not passed("fp32"):
        return None
    wanted = INT8_VARIANTS if precision == "int8" else ("fp32",) if precision else VARIANT_FILES
    for name in wanted:
        if not passed(name):
            continue
        if name == "int8":
            from .int8_probe import signed_int8_exact

            if not (report.get("signed_int8_exact", True) and signed_int8_exact()):
                continue
        return name
    return None


def load_onnx(model_dir: str | Path, precision: str | None = None) -> OnnxModel | None:
    """The variant this CPU serves (`serving_variant`; `precision` "fp32" or "int8" asks
    for one), or None: no export, or none that passed (the model is then served by
    PyTorch)."""
    model_dir = Path(model_dir)
    report = serving_report(model_dir)
    if report is None:
        return None
    chosen = serving_variant(report, precision)
    if chosen is None:
        if report.get("serve") is None:
            log.warning(
                "%s: served by PyTorch: its ONNX export did not pass the parity check (%s)",
                model_dir,
                report.get("reason", "see onnx/serving.json"),
            )
        else:
            log.warning(
                "%s: no ONNX %s variant that this CPU runs as checked passed its checks",
                model_dir,
                precision,
            )
        return None
    model = OnnxModel(model_dir / ONNX_DIR / VARIANT_FILES[chosen], read_config(model_dir), chosen)
    model.tokenizer_checked = bool(report.get("word_tokenizer"))
    return model


def read_config(model_dir: str | Path) -> SimpleNamespace:
    """The fields of the model's `config.json` as attributes (`id2label`, `ner_casing`...),
    read without transformers, whose `AutoConfig` imports torch: all that tagging with
    the exported graph needs of the model's configuration."""
    return SimpleNamespace(**read_json(Path(model_dir) / "config.json"))


def read_json(path: Path) -> Any:
    """A model's JSON file; ValueError naming it when it is damaged."""
    try:
        return json.loads(path.read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
