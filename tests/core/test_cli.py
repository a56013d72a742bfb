"""The `ner` command line: exit 2 with `line N:` lists on bad input, JSON on stdout otherwise."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from tests.core.conftest import Trained, assert_int8_exports, make_dataset
from tests.core.data import SENTENCES, conll_text, csv_text

CONTRACT_KEYS = {
    "precision",
    "recall",
    "f1",
    "f1_strict",
    "token_accuracy",
    "per_type",
    "sentences",
    "seconds",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- bad input: exit 2


def test_malformed_file_exits_2_with_the_problem_list(capsys, write, trained: Trained) -> None:
    bad = write("bad.csv", "text,labels\nAngela sings,B-PER\nParis,X-LOC\nfine,O\n")
    code, out, err = run(capsys, "evaluate", "--model", str(trained.model_dir), "--data", str(bad))
    assert code == 2
    assert out == ""
    assert err.splitlines()[1:3] == [
        "line 2: 2 tokens but 1 labels",
        "line 3: token 1 'Paris': tag 'X-LOC' is not a BIO tag (expected O, B-TYPE or I-TYPE)",
    ]
    assert "Traceback" not in err


def test_train_on_a_malformed_file_exits_2_before_loading_anything(
    capsys, write, tmp_path: Path
) -> None:
    bad = write("bad.jsonl", '{"text": "Angela", "entities": [[0, 3, "PER"]]}\nnot json\n')
    code, _, err = run(
        capsys,
        "train",
        "--train",
        str(bad),
        "--out",
        str(tmp_path / "m"),
        "--base-model",
        str(tmp_path / "does-not-matter"),
    )
    assert code == 2
    assert "line 1: entity 1 [0, 3) PER 'Ang' ends inside a word" in err
    assert "line 2: invalid JSON at column 1: Expecting value" in err
    assert not (tmp_path / "m").exists()


def test_undecodable_file_exits_2(capsys, write, trained: Trained) -> None:
    bad = write("latin1.txt", b"Angela B-PER\n\ncaf\xe9 O\n")
    code, _, err = run(capsys, "evaluate", "--model", str(trained.model_dir), "--data", str(bad))
    assert code == 2
    assert "line 3: bytes that are not UTF-8 at column 4" in err
    assert "Traceback" not in err


def test_unknown_format_exits_2(capsys, write, trained: Trained) -> None:
    bad = write("notes", "hello\nworld\n")
    code, _, err = run(capsys, "evaluate", "--model", str(trained.model_dir), "--data", str(bad))
    assert code == 2
    assert "line 1: cannot tell the format from the name or the content" in err


@pytest.mark.parametrize("bad", ["0", "-1", "many", "65"])
def test_api_workers_out_of_range_exits_2(capsys, bad: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["api", "--workers", bad])
    assert exit_.value.code == 2
    assert f"--workers: expected 1 to 64 processes, not '{bad}'" in capsys.readouterr().err


def test_missing_file_exits_2(capsys, tmp_path: Path, trained: Trained) -> None:
    missing = tmp_path / "nope.csv"
    code, _, err = run(
        capsys, "evaluate", "--model", str(trained.model_dir), "--data", str(missing)
    )
    assert code == 2
    assert f"{missing}: no such file" in err
    code, _, err = run(capsys, "train", "--train", str(missing))
    assert code == 2 and "no such file" in err


def test_non_model_directory_exits_2(capsys, tmp_path: Path, write) -> None:
    data = write("d.csv", csv_text())
    for argv in (
        ["evaluate", "--model", str(tmp_path), "--data", str(data)],
        ["predict", "--model", str(tmp_path), "Angela"],
        ["predict", "--model", str(tmp_path / "absent"), "Angela"],
    ):
        code, out, err = run(capsys, *argv)
        assert code == 2, argv
        assert "not a model directory" in err and "Traceback" not in err and out == ""


@pytest.mark.parametrize("damaged", ["tokenizer.json", "config.json"])
def test_a_damaged_model_file_exits_2_naming_it(
    capsys, tmp_path: Path, trained: Trained, damaged: str
) -> None:
    model = tmp_path / "model"
    shutil.copytree(trained.model_dir, model)
    (model / damaged).write_text('{"truncated": ')
    for backend in ("auto", "torch"):
        code, out, err = run(capsys, "predict", "--model", str(model), "--backend", backend, "A")
        assert code == 2, backend
        assert "could not be loaded" in err and "Traceback" not in err and out == ""
        assert damaged in err or backend == "torch", err


def test_bad_jsonl_on_stdin_exits_2(capsys, monkeypatch, trained: Trained) -> None:
    stdin = '{"id": "a", "text": "Oslo"}\n{"id": "b", "txt": "Paris"}\n{oops\n'
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code, _out, err = run(capsys, "predict", "--model", str(trained.model_dir))
    assert code == 2
    assert 'line 2: expected an object with a "text" string' in err
    assert "line 3: invalid JSON at column 2" in err
    assert "Traceback" not in err


def test_a_real_process_exits_2_without_traceback(write, tmp_path: Path) -> None:
    """The same through the installed `ner` script, as a user runs it."""
    bad = write("bad.conll", "Angela B-PER\nMerkel E-PER\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    script = Path(sys.executable).with_name("ner")  # the installed console script
    command = [str(script)] if script.exists() else [sys.executable, "-m", "cli"]
    done = subprocess.run(
        [*command, "train", "--train", str(bad), "--out", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 2, done.stderr
    assert "line 2: token 'Merkel': tag 'E-PER' is BIOES" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


# ---------------------------------------------------------------- train, evaluate, predict


def test_train_prints_the_model_dir_and_metrics_last(
    capsys, caplog, write, tmp_path: Path, tiny_base: Path
) -> None:
    data = write("train.txt", conll_text())
    out_dir = tmp_path / "model"
    code, out, err = run(
        capsys,
        "train",
        "--train",
        str(data),
        "--validation",
        str(data),
        "--test",
        str(data),
        "--base-model",
        str(tiny_base),
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--out",
        str(out_dir),
        "--seed",
        "3",
    )
    assert code == 0, err
    last = json.loads(out.strip().splitlines()[-1])
    assert set(last) == {"model_dir", "metrics"}
    assert Path(last["model_dir"]) == out_dir and (out_dir / "model.safetensors").is_file()
    assert set(last["metrics"]) >= CONTRACT_KEYS
    assert last["metrics"]["sentences"] == 20
    info = json.loads((out_dir / "training.json").read_text())
    assert info["arguments"]["epochs"] == 2 and info["arguments"]["seed"] == 3
    # The int8 exports ran, without ONNX Runtime's advice on pre-processing image models.
    assert_int8_exports(json.loads((out_dir / "onnx" / "serving.json").read_text()))
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]


def test_train_refuses_a_non_empty_out_directory(capsys, write, tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    code, _, err = run(
        capsys, "train", "--train", str(write("d.csv", csv_text())), "--out", str(tmp_path / "busy")
    )
    assert code == 2 and "exists and is not empty" in err


def test_evaluate_prints_the_contract_json(capsys, write, trained: Trained) -> None:
    data = write(
        "eval.jsonl",
        "".join(
            json.dumps(
                {
                    "text": s.text,
                    "entities": [[e["start"], e["end"], e["label"]] for e in s.entities()],
                }
            )
            + "\n"
            for s in make_dataset().sentences
        ),
    )
    code, out, err = run(capsys, "evaluate", "--model", str(trained.model_dir), "--data", str(data))
    assert code == 0, err
    [line] = out.strip().splitlines()
    result = json.loads(line)
    assert set(result) == CONTRACT_KEYS
    assert set(result["per_type"]) == {"LOC", "ORG", "PER"}
    assert all(
        set(v) == {"precision", "recall", "f1", "support"} for v in result["per_type"].values()
    )
    assert result["f1"] == result["f1_strict"] == 1.0 and result["sentences"] == 20


def test_evaluate_with_format_override(capsys, write, trained: Trained) -> None:
    data = write("data.dat", conll_text())
    code, out, _ = run(
        capsys,
        "evaluate",
        "--model",
        str(trained.model_dir),
        "--data",
        str(data),
        "--format",
        "conll",
    )
    assert code == 0 and json.loads(out)["sentences"] == 20


def test_predict_texts_from_arguments(capsys, trained: Trained) -> None:
    code, out, err = run(
        capsys,
        "predict",
        "--model",
        str(trained.model_dir),
        "Angela Merkel visited Paris yesterday .",
        "",
        "Kyoto 😀 and  Oslo",
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["id"] for line in lines] == ["1", "2", "3"]
    assert [(e["text"], e["label"]) for e in lines[0]["entities"]] == [
        ("Angela Merkel", "PER"),
        ("Paris", "LOC"),
    ]
    assert lines[1]["entities"] == []
    assert [(e["start"], e["text"]) for e in lines[2]["entities"]] == [(0, "Kyoto"), (13, "Oslo")]


def test_predict_jsonl_from_stdin(capsys, monkeypatch, trained: Trained) -> None:
    docs = [{"id": "a", "text": SENTENCES[0][0]}, {"text": "Oslo"}, {"id": 7, "text": ""}]
    stdin = "\n".join(json.dumps(d) for d in docs[:2]) + "\n\n" + json.dumps(docs[2]) + "\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code, out, err = run(capsys, "predict", "--model", str(trained.model_dir))
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["id"] for line in lines] == ["a", "2", "7"]  # no id: its line number
    assert [e["text"] for e in lines[0]["entities"]] == ["Angela Merkel", "Paris"]
    assert [e["text"] for e in lines[1]["entities"]] == ["Oslo"]
    assert lines[2]["entities"] == []


def relabelled_jsonl() -> str:
    """The 20 training sentences, with the first sentence's entities all called MISC: the
    overfit model gets exactly those wrong (wrong type), and nothing else."""
    lines = []
    for i, s in enumerate(make_dataset().sentences):
        entities = [[e["start"], e["end"], "MISC" if i == 0 else e["label"]] for e in s.entities()]
        lines.append(json.dumps({"text": s.text, "entities": entities}) + "\n")
    return "".join(lines)


def test_evaluate_writes_the_error_report_and_json(
    capsys, write, tmp_path: Path, trained: Trained
) -> None:
    data = write("eval.jsonl", relabelled_jsonl())
    first = make_dataset().sentences[0]
    report, analysis_path = tmp_path / "report.html", tmp_path / "errors.json"
    code, out, err = run(
        capsys,
        "evaluate",
        "--model",
        str(trained.model_dir),
        "--data",
        str(data),
        "--errors",
        str(report),
        "--json",
        str(analysis_path),
    )
    assert code == 0, err
    assert set(json.loads(out)) == CONTRACT_KEYS  # stdout is unchanged by the flags
    analysis = json.loads(analysis_path.read_text())
    n_first = len(first.entities())
    assert analysis["totals"]["wrong_type"] == n_first
    assert analysis["per_type"]["MISC"]["errors"]["wrong_type"] == n_first
    assert {e["sentence"] for e in analysis["examples"]} == {0}
    assert analysis["examples"][0]["text"] == first.text
    page = report.read_text()
    assert page.startswith("<!doctype html>")
    assert "renderAnalysis(" in page and first.text in page
    assert "src=" not in page and "href=" not in page  # nothing loaded from elsewhere


def test_evaluate_refuses_a_report_in_a_missing_directory(
    capsys, write, tmp_path: Path, trained: Trained
) -> None:
    data = write("eval.jsonl", relabelled_jsonl())
    missing = tmp_path / "nowhere" / "report.html"
    code, _, err = run(
        capsys,
        "evaluate",
        "--model",
        str(trained.model_dir),
        "--data",
        str(data),
        "--errors",
        str(missing),
    )
    assert code == 2
    assert "does not exist" in err and "Traceback" not in err
