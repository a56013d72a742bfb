"""A saved model carries a checked ONNX export, and a CPU serves it with ONNX Runtime only
where it tags as the PyTorch model does."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from cli.main import main as ner
from shared.ner import Predictor, TrainConfig
from shared.ner import onnx_export as onnx_export_module
from shared.ner.inference import NoOnnxExport
from shared.ner.onnx_export import export_for_serving
from shared.ner.onnx_model import INT8_VARIANTS, load_onnx
from shared.ner.word_tokenizer import WordTokenizer
from tests.core.conftest import (
    SHORT,
    Trained,
    assert_int8_exports,
    make_dataset,
    train_capturing,
)
from tests.core.test_training import RELOAD_TEXTS


def spans(results: list) -> list:
    return [[(e["start"], e["end"], e["label"], e["text"]) for e in r] for r in results]


def test_a_saved_model_carries_a_checked_onnx_export(trained: Trained) -> None:
    report = json.loads((trained.model_dir / "onnx" / "serving.json").read_text())
    fp32 = report["variants"]["fp32"]
    assert fp32["passed"] and fp32["same_entities"] >= 0.995
    assert fp32["f1_gap_points"] <= 0.1
    assert report["serve"] in (*INT8_VARIANTS, "fp32")
    assert_int8_exports(report)
    # Every variant kept is one that passed; the served file is there.
    for variant in report["variants"].values():
        assert (variant["file"] is not None) == variant["passed"]
    served = report["variants"][report["serve"]]["file"]
    assert (trained.model_dir / served).is_file()
    training = json.loads((trained.model_dir / "training.json").read_text())
    assert training["serving"] == report


def test_a_cpu_serves_the_export_with_the_pytorch_models_entities(trained: Trained) -> None:
    onnx = Predictor.load(trained.model_dir, device="cpu", precision="fp32")
    torch_ = Predictor.load(trained.model_dir, backend="torch", precision="fp32")
    assert onnx.backend == "onnx-fp32" and torch_.backend == "torch-fp32"
    expected = torch_.predict(RELOAD_TEXTS)
    got = onnx.predict(RELOAD_TEXTS)
    assert spans(got) == spans(expected) and expected[0]
    assert [e["score"] for r in got for e in r] == pytest.approx(
        [e["score"] for r in expected for e in r], abs=1e-3
    )
    # The default picks the variant serving.json chose.
    report = json.loads((trained.model_dir / "onnx" / "serving.json").read_text())
    assert Predictor.load(trained.model_dir).backend == f"onnx-{report['serve']}"


def test_an_exported_model_tags_without_torch_or_transformers(trained: Trained) -> None:
    # Start-up and memory of `ner predict` and the API: with an ONNX model whose tokenizer
    # file was checked at export, neither torch nor transformers is imported.
    report = json.loads((trained.model_dir / "onnx" / "serving.json").read_text())
    assert report["word_tokenizer"] is True
    script = (
        "import sys; from shared.ner import Predictor; "
        f"p = Predictor.load({str(trained.model_dir)!r}); "
        f"print(p.predict({RELOAD_TEXTS!r})); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[-1] == "[]"
    # ... and it tags exactly as the same graph with transformers' tokenizer.
    onnx = load_onnx(trained.model_dir)
    assert onnx is not None
    with_hf = Predictor(onnx, AutoTokenizer.from_pretrained(trained.model_dir))
    assert out[-2] == str(with_hf.predict(RELOAD_TEXTS))


def test_a_tokenizer_file_that_tokenizes_differently_is_not_used_alone(
    trained: Trained, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(trained.model_dir, model_dir)
    light = WordTokenizer.load(model_dir)
    hf = AutoTokenizer.from_pretrained(model_dir)
    assert light is not None and light.matches(hf, [["Anna", "Smith", "flew", "."]])
    # A tokenizer.json whose vocabulary differs from the one transformers builds (two
    # sub-tokens swapped) gives different ids.
    raw = json.loads((model_dir / "tokenizer.json").read_text())
    vocab = raw["model"]["vocab"]
    first = light.encode([["Anna"]])[0].tokens[0]
    other = next(t for t in vocab if t != first and not t.startswith("["))
    vocab[first], vocab[other] = vocab[other], vocab[first]
    (model_dir / "tokenizer.json").write_text(json.dumps(raw))
    changed = WordTokenizer.load(model_dir)
    assert changed is not None and not changed.matches(hf, [["Anna", "Smith", "flew", "."]])
    # A report that says the file does not match: transformers' tokenizer serves.
    report_file = model_dir / "onnx" / "serving.json"
    report = json.loads(report_file.read_text())
    report["word_tokenizer"] = False
    report_file.write_text(json.dumps(report))
    assert not isinstance(Predictor.load(model_dir).tokenizer, WordTokenizer)


def test_an_export_that_tags_differently_is_not_served(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    # Export another (untrained) model's graph in place of this one's: parity must fail.
    model_dir = tmp_path / "model"
    shutil.copytree(trained.model_dir, model_dir)
    real_export = onnx_export_module._export_fp32

    def export_impostor(_: Path, dest: Path):
        import torch
        from transformers import AutoModelForTokenClassification

        impostor = tmp_path / "impostor"
        shutil.copytree(model_dir, impostor)
        model = AutoModelForTokenClassification.from_pretrained(model_dir)
        torch.manual_seed(0)
        with torch.no_grad():
            model.classifier.weight.normal_()
            model.classifier.bias.normal_()
        model.save_pretrained(impostor)
        return real_export(impostor, dest)

    monkeypatch.setattr(onnx_export_module, "_export_fp32", export_impostor)
    report = export_for_serving(model_dir, make_dataset().sentences)
    assert report["serve"] is None and not report["variants"]["fp32"]["passed"]
    assert not list((model_dir / "onnx").glob("*.onnx"))  # nothing unservable is kept
    with caplog.at_level("WARNING"):
        predictor = Predictor.load(model_dir)
    assert predictor.backend.startswith("torch")
    assert "served by PyTorch" in caplog.text
    with pytest.raises(NoOnnxExport):
        Predictor.load(model_dir, backend="onnx")


def test_where_seven_bit_weights_lose_too_much_unsigned_ones_are_checked(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Coarser 7-bit weights that moved F1 past the tolerance (a stand-in: the 7-bit graph's
    # classifier bias is set so that every word gets the first label) are not kept;
    # unsigned 8-bit weights are made and checked in their place, and serve on any CPU
    # without exact signed sums.
    model_dir = tmp_path / "model"
    shutil.copytree(trained.model_dir, model_dir)
    real_quantise = onnx_export_module._quantise

    def coarse_quantise(src: Path, dest: Path, **kwargs: bool) -> None:
        real_quantise(src, dest, **kwargs)
        if kwargs.get("reduce_range"):
            import onnx
            from onnx import numpy_helper

            graph = onnx.load(str(dest))
            (bias,) = [w for w in graph.graph.initializer if w.name.endswith("classifier.bias")]
            one_label = np.zeros(numpy_helper.to_array(bias).shape, np.float32)
            one_label[0] = 100.0  # every word gets the first label
            bias.CopyFrom(numpy_helper.from_array(one_label, bias.name))
            onnx.save(graph, str(dest))

    monkeypatch.setattr(onnx_export_module, "_quantise", coarse_quantise)
    report = export_for_serving(model_dir, make_dataset().sentences)
    assert not report["variants"]["int8-s7"]["passed"]
    assert report["variants"]["int8-s7"]["file"] is None
    assert not (model_dir / "onnx" / "model.int8-s7.onnx").exists()
    unsigned = report["variants"]["int8-u8"]
    assert unsigned["passed"] and (model_dir / unsigned["file"]).is_file()
    assert_int8_exports(report)
    assert report["serve"] == ("int8" if report["signed_int8_exact"] else "int8-u8")


def test_a_model_saved_without_export_is_served_by_pytorch(
    tiny_base: Path, tmp_path: Path, capsys
) -> None:
    config = TrainConfig(
        **{**SHORT.__dict__, "epochs": 1, "base_model": str(tiny_base), "onnx": False}
    )
    data = make_dataset()
    run = train_capturing(data, tmp_path / "model", config, validation=data, test=data)
    assert not (run.model_dir / "onnx").exists()
    assert Predictor.load(run.model_dir).backend.startswith("torch")
    # Asking the command line for ONNX is a usage error (exit 2) that says why.
    assert ner(["predict", "--model", str(run.model_dir), "--backend", "onnx", "Anna"]) == 2
    assert "has no ONNX export" in capsys.readouterr().err


def test_a_texts_entities_do_not_depend_on_what_it_is_sent_with(trained: Trained) -> None:
    # int8 quantises with a scale measured over the whole input: batched, a text's result
    # would depend on its neighbours. Every served variant must give a text alone the same
    # entities and scores as in any company.
    texts = [*RELOAD_TEXTS, *(t.upper() for t in RELOAD_TEXTS), "Anna ."]
    for precision in ("fp32", "int8"):
        predictor = Predictor.load(trained.model_dir, precision=precision)
        together = predictor.predict(texts)
        alone = [predictor.predict([t])[0] for t in texts]
        reversed_ = predictor.predict(texts[::-1])[::-1]
        assert together == alone == reversed_, precision


def test_ner_export_gives_an_older_model_its_checked_export(
    tiny_base: Path, tmp_path: Path, capsys, write
) -> None:
    config = TrainConfig(
        **{**SHORT.__dict__, "epochs": 1, "base_model": str(tiny_base), "onnx": False}
    )
    data = make_dataset()
    run = train_capturing(data, tmp_path / "model", config, validation=data, test=data)
    capsys.readouterr()
    from tests.core.data import csv_text

    labelled = write("check.csv", csv_text())
    assert ner(["export", "--model", str(run.model_dir), "--data", str(labelled)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["variants"]["fp32"]["passed"] and report["sentences"] == 20
    assert Predictor.load(run.model_dir).backend == f"onnx-{report['serve']}"
    # A missing data file is bad input (exit 2), and leaves no half-written export.
    shutil.rmtree(run.model_dir / "onnx")
    assert ner(["export", "--model", str(run.model_dir), "--data", str(tmp_path / "no.csv")]) == 2
    assert not (run.model_dir / "onnx").exists()
