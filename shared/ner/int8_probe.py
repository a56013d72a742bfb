"""Whether ONNX Runtime multiplies int8 weights exactly on this CPU.

A dynamically quantised MatMul multiplies uint8 activations by int8 weights. With VNNI
(AVX-512 or AVX) or AMX, the products are summed in 32 bits: exact, the same on every
such CPU. Without them (AVX2 only, or AVX-512 without VNNI), ONNX Runtime's kernel adds
pairs of products in 16 bits with saturation (`vpmaddubsw`): 255 × 127 + 255 × 127
overflows, and the result depends on the CPU. Measured on an AMD EPYC with AVX2 only
(docs/benchmarks.md, session 20): the quick CoNLL model's int8 F1 moved 0.4 point from
fp32 there against 0.03 on the AMX machine. Two kinds of weights are exact everywhere:
signed weights in 7 bits (-64…64: 255 × 64 × 2 fits 16 bits), on the same fast kernel;
and uint8 weights, widened to 16 bits before multiplying (full 8 bits, slower).

So an export checks int8 (signed 8-bit weights) only where this probe says exact, and a
CPU serves it only where the probe says exact too (`onnx_model.serving_variant`);
elsewhere the 7-bit variant serves, or the uint8 one where 7 bits lost too much F1.
The probe is the operator the quantised graphs run, `DynamicQuantizeMatMul`, on inputs
that saturate a 16-bit pair: its answer is whatever this ONNX Runtime does on this CPU,
whatever the flags say (a hypervisor may hide some). It ships as a 17 KB file
(`int8_probe.onnx`, made by `build_probe`) so that a serving process need not import the
`onnx` package (0.8 s) to ask.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PROBE_FILE = Path(__file__).with_name("int8_probe.onnx")
ROWS, DEPTH, COLUMNS = 16, 256, 64
# Activations of 1.0 quantise to 255 (range [0, 1], zero point 0); weights of 127, scale 1.
EXPECTED = 127.0 * DEPTH


def build_probe() -> Any:
    """The probe graph (an `onnx.ModelProto`): float [ROWS, DEPTH] → [ROWS, COLUMNS]."""
    from onnx import TensorProto, helper, numpy_helper

    weights = np.full((DEPTH, COLUMNS), 127, dtype=np.int8)
    node = helper.make_node(
        "DynamicQuantizeMatMul",
        ["A", "B", "B_scale", "B_zero_point"],
        ["Y"],
        domain="com.microsoft",
    )
    graph = helper.make_graph(
        [node],
        "int8_probe",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [ROWS, DEPTH])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [ROWS, COLUMNS])],
        [
            numpy_helper.from_array(weights, "B"),
            numpy_helper.from_array(np.array(1.0, dtype=np.float32), "B_scale"),
            numpy_helper.from_array(np.array(0, dtype=np.int8), "B_zero_point"),
        ],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        producer_name="ner-service int8 probe",
    )
    model.ir_version = 8
    return model


def run_probe(model: str | bytes = str(PROBE_FILE)) -> np.ndarray:
    """A probe graph's output (the shipped file, or a variant's serialised bytes) for
    activations of 1.0, on one thread of this CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["Y"], {"A": np.ones((ROWS, DEPTH), dtype=np.float32)})[0])


@functools.cache
def signed_int8_exact() -> bool:
    """True where ONNX Runtime sums int8 × uint8 products exactly on this CPU."""
    exact = bool(np.allclose(run_probe(), EXPECTED, rtol=1e-5))
    if not exact:
        log.info(
            "this CPU multiplies int8 weights with 16-bit saturation (no VNNI/AMX): "
            "models are served with 7-bit or uint8 weights, or fp32"
        )
    return exact
