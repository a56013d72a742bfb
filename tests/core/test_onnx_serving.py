"""A saved model carries a checked ONNX export, and a CPU serves it with ONNX Runtime only
where it tags as the PyTorch model does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli.main import main as ner
from shared.ner import Predictor, TrainConfig
from shared.ner import onnx_export as onnx_export_module
from shared.ner.inference import NoOnnxExport
from shared.ner.onnx_export import export_for_serving
from tests.core.conftest import SHORT, Trained, make_dataset, train_capturing
from tests.core.test_training import RELOAD_TEXTS


def spans(results: list) -> list:
    return [[(e["start"], e["end"], e["label"], e["text"]) for e in r] for r in results]


def test_a_saved_model_carries_a_checked_onnx_export(trained: Trained) -> None:
    report = json.loads((trained.model_dir / "onnx" / "serving.json").read_text())
    fp32 = report["variants"]["fp32"]
    assert fp32["passed"] and fp32["same_entities"] >= 0.995
    assert fp32["f1_gap_points"] <= 0.1
    assert report["serve"] in ("int8", "fp32")
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
