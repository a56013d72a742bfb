"""Overfit a tiny BERT on the 20 sentences: F1 1.0, a plain HF directory, identical reloads."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import load_file

from shared.ner import (
    Predictor,
    Progress,
    TrainConfig,
    TrainingCancelled,
    evaluate,
    parse_dataset,
    plan_splits,
    train,
)
from shared.ner.labels import label_list
from tests.core.conftest import OVERFIT, SHORT, Trained, make_dataset
from tests.core.data import SENTENCES, csv_text

TEXTS = [text for text, _ in SENTENCES]


def without_seconds(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "seconds"}


# ---------------------------------------------------------------- accuracy


def test_overfit_reaches_f1_one_on_the_training_sentences(trained: Trained) -> None:
    metrics = trained.result.metrics
    assert metrics["f1"] == 1.0
    assert metrics["f1_strict"] == 1.0
    assert metrics["precision"] == metrics["recall"] == metrics["token_accuracy"] == 1.0
    assert metrics["sentences"] == 20
    assert {k: v["support"] for k, v in metrics["per_type"].items()} == {
        "LOC": 14,
        "ORG": 11,
        "PER": 16,
    }
    assert all(v["f1"] == 1.0 for v in metrics["per_type"].values())
    assert trained.result.validation_metrics is not None
    assert trained.result.validation_metrics["f1"] == 1.0


def test_predictions_on_the_training_sentences_are_the_gold_entities(predictor: Predictor) -> None:
    gold = [s.entities() for s in make_dataset().sentences]
    predicted = predictor.predict(TEXTS)
    assert [
        [{k: e[k] for k in ("start", "end", "label", "text")} for e in p] for p in predicted
    ] == gold
    assert all(0.0 < e["score"] <= 1.0 for p in predicted for e in p)


def test_evaluate_of_the_reloaded_model_matches_training(trained: Trained, predictor) -> None:
    again = evaluate(predictor, make_dataset())
    assert without_seconds(again) == without_seconds(trained.result.metrics)


# ---------------------------------------------------------------- the saved directory


def test_saved_directory_is_a_plain_hf_model_without_pickle(trained: Trained) -> None:
    model_dir = trained.model_dir
    names = {p.name for p in model_dir.iterdir()}
    assert {
        "model.safetensors",
        "config.json",
        "metrics.json",
        "training.json",
        "tokenizer.json",
        "tokenizer_config.json",
    } <= names
    pickled = [
        p.name
        for p in model_dir.rglob("*")
        if p.suffix in {".bin", ".pkl", ".pickle", ".pt", ".pth", ".ckpt"}
    ]
    assert pickled == []
    assert not model_dir.with_name(model_dir.name + ".partial").exists()

    config = json.loads((model_dir / "config.json").read_text())
    labels = label_list(["LOC", "ORG", "PER"])
    assert config["id2label"] == {str(i): label for i, label in enumerate(labels)}
    assert config["label2id"] == {label: i for i, label in enumerate(labels)}

    assert json.loads((model_dir / "metrics.json").read_text()) == trained.result.metrics

    info = json.loads((model_dir / "training.json").read_text())
    assert info["base_model"] == str(Path(info["base_model"]))  # a resolved directory
    assert info["arguments"]["epochs"] == 30 and info["arguments"]["seed"] == 42
    assert info["labels"] == labels
    assert info["data"]["train"]["sentences"] == 20
    assert info["data"]["train"]["labels"] == {"LOC": 14, "ORG": 11, "PER": 16}
    assert info["data"]["test"]["tokens"] == sum(len(t.split()) for t in TEXTS)
    assert info["seconds"] > 0
    assert info["history"] == trained.result.history
    assert info["validation_metrics"]["f1"] == 1.0


RELOAD_TEXTS = [
    *TEXTS,
    "Angela and Omar flew to Lima with Hooli .",
    "Kyoto  \n\tBerlin!",
    "",
    " ".join(TEXTS * 3),  # windowed
]


def test_reloaded_model_predicts_identically_to_the_in_memory_one(trained: Trained) -> None:
    # In fp32 the saved weights must give exactly what the trained model gives.
    in_memory = Predictor(trained.model, trained.tokenizer, precision="fp32")
    reloaded = Predictor.load(trained.model_dir, precision="fp32")
    expected = in_memory.predict(RELOAD_TEXTS)
    assert reloaded.predict(RELOAD_TEXTS) == expected
    assert expected[0] and expected[-1]  # and it finds something


def test_reloaded_model_in_default_precision_finds_the_same_entities(
    trained: Trained, predictor: Predictor
) -> None:
    # The default may be bf16 (AMX/CUDA): same entities, scores within bf16 noise.
    in_memory = Predictor(trained.model, trained.tokenizer, precision="fp32")
    expected = in_memory.predict(RELOAD_TEXTS)
    got = predictor.predict(RELOAD_TEXTS)

    def spans(results):
        return [[(e["start"], e["end"], e["label"], e["text"]) for e in r] for r in results]

    assert spans(got) == spans(expected)
    assert [e["score"] for r in got for e in r] == pytest.approx(
        [e["score"] for r in expected for e in r], abs=0.05
    )


def stock_pipeline(model_dir: Path) -> Any:
    from transformers import pipeline

    return pipeline(
        "token-classification", model=str(model_dir), aggregation_strategy="simple", device="cpu"
    )


def test_transformers_pipeline_loads_and_runs_the_default_directory(trained: Trained) -> None:
    # The default (casing) model loads and runs in the stock pipeline; the pipeline sends
    # token type 0 for every word, so it sees no word shapes and may find fewer names
    # than our Predictor (README: use Predictor for full accuracy).
    text = "Angela Merkel visited Paris yesterday ."
    groups = stock_pipeline(trained.model_dir)(text)
    assert all(g["entity_group"] in {"LOC", "ORG", "PER"} for g in groups)
    assert all(0 <= g["start"] < g["end"] <= len(text) for g in groups)


def test_transformers_pipeline_matches_a_model_trained_without_casing(
    tiny_base: Path, tmp_path: Path
) -> None:
    data = make_dataset()
    config = TrainConfig(**{**OVERFIT.__dict__, "base_model": str(tiny_base), "casing": False})
    result = train(data, tmp_path / "model", config, validation=data, test=data)
    groups = stock_pipeline(result.model_dir)("Angela Merkel visited Paris yesterday .")
    assert [(g["entity_group"], g["word"]) for g in groups] == [
        ("PER", "Angela Merkel"),
        ("LOC", "Paris"),
    ]


# ---------------------------------------------------------------- long text


def test_a_20000_character_document_gets_entities_in_its_last_paragraph(predictor) -> None:
    filler = "nothing happened today . the weather in Berlin was cold ."
    paragraphs = []
    i = 0
    while sum(len(p) + 2 for p in paragraphs) < 20_000:
        paragraphs.append(f"{TEXTS[i % 20]}  {filler}\n{filler}")
        i += 1
    last = "Yuki Tanaka met Ingrid Berg in Kyoto ."
    document = "\n\n".join([*paragraphs, last])
    assert len(document) > 20_000
    [entities] = predictor.predict([document])
    tail = len(document) - len(last)
    found = [(e["start"] - tail, e["text"], e["label"]) for e in entities if e["start"] >= tail]
    assert found == [(0, "Yuki Tanaka", "PER"), (16, "Ingrid Berg", "PER"), (31, "Kyoto", "LOC")]
    assert all(document[e["start"] : e["end"]] == e["text"] for e in entities)
    # every paragraph's filler "Berlin" is found: nothing in the middle is lost either
    berlins = [e for e in entities if e["text"] == "Berlin"]
    assert len(berlins) >= 2 * len(paragraphs)


# ---------------------------------------------------------------- seed and progress


def test_same_seed_same_scores_and_weights(uncased_runs: list[Trained]) -> None:
    first, second = uncased_runs
    assert without_seconds(first.result.metrics) == without_seconds(second.result.metrics)
    strip = [[without_seconds(h) for h in run.result.history] for run in uncased_runs]
    assert strip[0] == strip[1]
    a = load_file(str(first.model_dir / "model.safetensors"))
    b = load_file(str(second.model_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(a[k].equal(b[k]) for k in a)


def test_progress_reaches_the_callback(trained: Trained) -> None:
    progress: list[Progress] = trained.progress
    stages = [p.stage for p in progress]
    assert stages[0] == "preparing" and stages[-1] == "done"
    assert {"training", "evaluating", "testing", "saving"} <= set(stages)
    fractions = [p.fraction for p in progress]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert all(a <= b for a, b in itertools.pairwise(fractions)), describe(progress)
    training = [p for p in progress if p.stage == "training"]
    assert training and all(p.loss is not None and p.epochs == 30 for p in training)
    # an ETA once the run is under way (training reports are throttled to one a second)
    under_way = [p for p in progress if p.stage in ("evaluating", "evaluated") and p.epoch > 1]
    assert under_way and all(p.eta_seconds is not None and p.eta_seconds >= 0 for p in under_way)
    assert progress[-1].metrics == trained.result.metrics


def describe(progress: list[Progress]) -> str:
    return "progress went backwards: " + ", ".join(
        f"{p.stage} {p.fraction:.3f}" for p in progress[-5:]
    )


def test_progress_never_goes_backwards_in_a_run_without_early_stopping(
    uncased_runs: list[Trained],
) -> None:
    progress = uncased_runs[0].progress  # 5 epochs, patience 100: every epoch runs
    assert [p.epoch for p in progress if p.stage == "evaluated"] == [1, 2, 3, 4, 5]
    fractions = [p.fraction for p in progress]
    assert all(a <= b for a, b in itertools.pairwise(fractions)), describe(progress)


# ---------------------------------------------------------------- cancellation


@pytest.mark.parametrize("stage", ["preparing", "training", "evaluating", "testing", "saving"])
def test_cancelling_from_the_callback_leaves_no_directory(
    tiny_base: Path, tmp_path: Path, stage: str
) -> None:
    seen: list[str] = []

    def callback(p: Progress) -> None:
        seen.append(p.stage)
        if p.stage == stage:
            raise TrainingCancelled()

    data = make_dataset()
    config = TrainConfig(**{**SHORT.__dict__, "epochs": 1, "base_model": str(tiny_base)})
    out = tmp_path / "model"
    with pytest.raises(TrainingCancelled):
        train(data, out, config, validation=data, test=data, callback=callback)
    assert seen[-1] == stage
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_training_refuses_a_non_empty_output_directory(tiny_base: Path, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "keep.txt").write_text("mine")
    data = make_dataset()
    config = TrainConfig(**{**SHORT.__dict__, "epochs": 1, "base_model": str(tiny_base)})
    with pytest.raises(FileExistsError):
        train(data, tmp_path / "model", config, validation=data, test=data)
    assert (tmp_path / "model" / "keep.txt").read_text() == "mine"


def test_training_data_without_entities_is_refused(tiny_base: Path, tmp_path: Path) -> None:
    data = parse_dataset(csv_text([("nothing happened today .", "O O O O")] * 3), "csv")
    with pytest.raises(ValueError, match="no entities"):
        train(
            data,
            tmp_path / "model",
            TrainConfig(base_model=str(tiny_base)),
            validation=data,
            test=data,
        )
    assert not (tmp_path / "model").exists()


def test_the_saved_directory_holds_the_error_analysis_of_the_test_data(trained: Trained) -> None:
    analysis = json.loads((trained.model_dir / "evaluation.json").read_text())
    metrics = trained.result.metrics
    assert analysis["sentences"] == metrics["sentences"] == 20
    assert analysis["totals"]["gold"] == sum(v["support"] for v in metrics["per_type"].values())
    assert analysis["totals"]["correct"] == analysis["totals"]["gold"]  # overfit: F1 1.0
    assert analysis["examples"] == []
    assert "analysis" not in metrics  # the scores stay small; the analysis has its own file
    assert all("analysis" not in (p.metrics or {}) for p in trained.progress)


# ---------------------------------------------------------------- final fit


def test_a_split_off_validation_part_is_learnt_from_in_a_final_fit(
    tiny_base: Path, tmp_path: Path
) -> None:
    """No validation data given: validation chooses the epoch count, then the model is
    trained again from the base on training + validation data for that many epochs: the
    same model as that second training run by hand (`ner train` on both parts, the epoch
    count given, the last epoch kept)."""
    data = make_dataset()
    config = TrainConfig(**{**SHORT.__dict__, "epochs": 3, "base_model": str(tiny_base)})
    progress: list[Progress] = []
    result = train(
        data, tmp_path / "model", config, test=data, device="cpu", callback=progress.append
    )
    info = json.loads((result.model_dir / "training.json").read_text())
    # The callback sees the final fit as its own stage, after the choosing run's epochs,
    # on one progress bar that never goes backwards.
    stages = [p.stage for p in progress]
    assert stages.index("final fit") > max(i for i, s in enumerate(stages) if s == "evaluated")
    fractions = [p.fraction for p in progress]
    assert all(a <= b for a, b in itertools.pairwise(fractions)), describe(progress)
    chosen = max(result.history, key=lambda h: (h["f1"], h["epoch"]))["epoch"]
    assert [h["epoch"] for h in result.history] == [1, 2, 3]  # the choosing run's epochs
    assert info["final_fit"]["epochs"] == chosen
    assert info["final_fit"]["data"]["sentences"] == 20  # 18 training + 2 validation

    splits = plan_splits(data, None, data, config.seed)
    both = splits.train.subset(splits.train.sentences + splits.validation.sentences, "")
    by_hand = train(
        both,
        tmp_path / "by-hand",
        config.model_copy(update={"epochs": chosen}),
        validation=splits.validation,
        test=data,
        device="cpu",
    )
    assert by_hand.history[-1]["f1"] == max(h["f1"] for h in by_hand.history)  # last kept
    a = load_file(str(result.model_dir / "model.safetensors"))
    b = load_file(str(by_hand.model_dir / "model.safetensors"))
    assert all(a[k].equal(b[k]) for k in a)
    assert result.metrics["f1"] == by_hand.metrics["f1"]


@pytest.mark.parametrize("given", ["validation", "final_fit false", "max_sentences"])
def test_no_final_fit_with_validation_data_given_in_a_quick_run_or_switched_off(
    tiny_base: Path, tmp_path: Path, given: str
) -> None:
    data = make_dataset()
    config = TrainConfig(
        **{**SHORT.__dict__, "epochs": 1, "base_model": str(tiny_base), "onnx": False}
    )
    if given == "validation":
        result = train(data, tmp_path / "m", config, validation=data, device="cpu")
    else:
        change = {"final_fit": False} if given == "final_fit false" else {"max_sentences": 12}
        result = train(data, tmp_path / "m", config.model_copy(update=change), device="cpu")
    info = json.loads((result.model_dir / "training.json").read_text())
    assert info["final_fit"] is None
    expected = {"validation": 20, "final_fit false": 16, "max_sentences": 12}[given]
    assert info["data"]["train"]["sentences"] == expected
