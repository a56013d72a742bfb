"""Quantised models give the entities checked at export on every CPU: signed int8 weights
serve only where ONNX Runtime sums their products exactly (VNNI, AMX), unsigned ones
(exact everywhere) elsewhere."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from shared.ner import int8_probe
from shared.ner.int8_probe import DEPTH, PROBE_FILE, build_probe, run_probe
from shared.ner.onnx_model import serving_variant


def test_the_shipped_probe_is_the_graph_the_code_describes() -> None:
    shipped, built = onnx.load(str(PROBE_FILE)), build_probe()
    assert [n.op_type for n in shipped.graph.node] == ["DynamicQuantizeMatMul"]
    assert shipped.graph.node == built.graph.node
    for a, b in zip(shipped.graph.initializer, built.graph.initializer, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(numpy_helper.to_array(a), numpy_helper.to_array(b))


def test_unsigned_int8_weights_are_multiplied_exactly_on_this_cpu() -> None:
    # What serving a quantised model on a CPU without VNNI relies on: the probe's inputs
    # with uint8 weights (255, zero point 0) come out exact, whatever the CPU.
    model = build_probe()
    weights = {i.name: i for i in model.graph.initializer}
    weights["B"].CopyFrom(numpy_helper.from_array(np.full((DEPTH, 64), 255, np.uint8), "B"))
    weights["B_zero_point"].CopyFrom(numpy_helper.from_array(np.array(0, np.uint8), "B_zero_point"))
    np.testing.assert_allclose(run_probe(model.SerializeToString()), 255.0 * DEPTH, rtol=1e-6)


@pytest.mark.parametrize("weight", [64, -64])
def test_seven_bit_signed_weights_are_multiplied_exactly_on_this_cpu(weight: int) -> None:
    # What the int8-s7 variant relies on: the largest 7-bit weights that quantize_dynamic
    # writes (reduce_range: -64…64) cannot saturate a 16-bit pair on any CPU.
    model = build_probe()
    weights = {i.name: i for i in model.graph.initializer}
    weights["B"].CopyFrom(numpy_helper.from_array(np.full((DEPTH, 64), weight, np.int8), "B"))
    out = run_probe(model.SerializeToString())
    np.testing.assert_allclose(out, float(weight) * DEPTH, rtol=1e-6)


def test_the_probe_tells_exact_from_saturated_sums() -> None:
    # The probe's own weights (127) are exact exactly where the probe says so.
    full = np.allclose(run_probe(build_probe().SerializeToString()), 127.0 * DEPTH, rtol=1e-5)
    assert int8_probe.signed_int8_exact() is full


def report(signed_int8_exact: bool | None = None, **variants: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"variants": {name: {"passed": ok} for name, ok in variants.items()}}
    if signed_int8_exact is not None:
        out["signed_int8_exact"] = signed_int8_exact
    return out


@pytest.mark.parametrize("exact_here", [True, False])
def test_each_cpu_serves_the_fastest_variant_whose_numbers_were_checked(
    monkeypatch: pytest.MonkeyPatch, exact_here: bool
) -> None:
    monkeypatch.setattr(int8_probe, "signed_int8_exact", lambda: exact_here)
    # Made on a CPU with exact signed sums: 8-bit signed weights and 7-bit ones.
    amx = report(**{"int8": True, "int8-s7": True, "fp32": True}, signed_int8_exact=True)
    assert serving_variant(amx) == ("int8" if exact_here else "int8-s7")
    # Made on a CPU without: 7-bit weights, or unsigned ones where 7 bits failed.
    avx2 = report(**{"int8-s7": True, "fp32": True}, signed_int8_exact=False)
    assert serving_variant(avx2) == "int8-s7"
    coarse = report(**{"int8-s7": False, "int8-u8": True, "fp32": True}, signed_int8_exact=False)
    assert serving_variant(coarse) == "int8-u8"
    # Signed weights checked on a CPU that saturated: never served as checked elsewhere.
    both = report(**{"int8": True, "int8-u8": True, "fp32": True}, signed_int8_exact=False)
    assert serving_variant(both) == "int8-u8"
    # A report from before the probe (signed int8 only, checked on a VNNI/AMX machine),
    # and one from session 20 (signed int8 and uint8, no 7-bit).
    older = report(int8=True, fp32=True)
    assert serving_variant(older) == ("int8" if exact_here else "fp32")
    assert serving_variant(older, "int8") == ("int8" if exact_here else None)
    s20 = report(**{"int8": True, "int8-u8": True, "fp32": True}, signed_int8_exact=True)
    assert serving_variant(s20) == ("int8" if exact_here else "int8-u8")
    assert serving_variant(s20, "fp32") == "fp32"
    # No int8 passed: fp32; fp32 failed: nothing (PyTorch serves).
    assert serving_variant(report(**{"int8-u8": False, "fp32": True}), "int8") is None
    assert serving_variant(report(**{"int8-s7": True, "fp32": False})) is None
