"""Checkpoints (shared/ner/checkpoint.py): a training interrupted after an epoch, or in the
middle of one, resumes from its last checkpoint and ends exactly where the uninterrupted
run ends; the files are safetensors and JSON, no pickle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from shared.ner import Predictor, TrainConfig, TrainingCancelled, train
from tests.core.conftest import SHORT, make_dataset


def _config(tiny_base: Path, decoding: str = "viterbi") -> TrainConfig:
    # With the moving average of the weights on: its state must survive the resume too.
    return TrainConfig(
        **{
            **SHORT.__dict__,
            "epochs": 4,
            "base_model": str(tiny_base),
            "ema_decay": 0.9,
            "decoding": decoding,
        }
    )


def _die_after(epoch: int, batches_done: int, saved: list[Path]):
    """on_checkpoint that records each checkpoint, then 'kills the worker' at one."""

    def on_checkpoint(folder: Path) -> None:
        saved.append(folder)
        meta = json.loads((folder / "state.json").read_text())
        if (meta["epoch"], meta["batches_done"]) == (epoch, batches_done):
            raise TrainingCancelled("the worker died here")

    return on_checkpoint


@pytest.mark.parametrize(
    ("epoch", "batches_done", "checkpoint_seconds", "decoding"),
    [
        # killed after epoch 2 (its end-of-epoch checkpoint: epoch 3, batch 0)
        (3, 0, 3600.0, "viterbi"),
        (3, 2, 0.0, "viterbi"),  # killed in the middle of epoch 3 (a checkpoint every step)
        (3, 2, 0.0, "crf"),  # the same, with the CRF's scores and their optimizer state
    ],
)
def test_an_interrupted_training_resumes_and_ends_as_the_whole_run(
    tiny_base: Path,
    tmp_path: Path,
    epoch: int,
    batches_done: int,
    checkpoint_seconds: float,
    decoding: str,
) -> None:
    data = make_dataset()
    config = _config(tiny_base, decoding)
    whole = train(data, tmp_path / "whole", config, validation=data, test=data, device="cpu")

    checkpoints = tmp_path / "checkpoint"
    saved: list[Path] = []
    with pytest.raises(TrainingCancelled):
        train(
            data,
            tmp_path / "first",
            config,
            validation=data,
            test=data,
            device="cpu",
            checkpoint_dir=checkpoints,
            checkpoint_seconds=checkpoint_seconds,
            on_checkpoint=_die_after(epoch, batches_done, saved),
        )
    assert saved and sorted(p.name for p in checkpoints.iterdir()) == [
        "state.json",
        "state.safetensors",
    ]
    resumed_progress: list = []
    resumed = train(
        data,
        tmp_path / "resumed",
        config,
        validation=data,
        test=data,
        device="cpu",
        callback=resumed_progress.append,
        checkpoint_dir=checkpoints,
        checkpoint_seconds=checkpoint_seconds,
    )
    assert resumed_progress[1].stage == "resuming"
    first_step = next(p.step for p in resumed_progress if p.stage == "training")
    assert first_step > 1  # it did not start from zero
    assert resumed.metrics["f1"] == whole.metrics["f1"]
    assert [h["f1"] for h in resumed.history] == [h["f1"] for h in whole.history]
    texts = [s.text for s in data.sentences]
    a = Predictor.load(whole.model_dir, precision="fp32").predict(texts)
    b = Predictor.load(resumed.model_dir, precision="fp32").predict(texts)
    assert [[(e["start"], e["end"], e["label"]) for e in x] for x in a] == [
        [(e["start"], e["end"], e["label"]) for e in x] for x in b
    ]
    # The kept weights themselves, the moving average of the steps included, are the same.
    whole_weights = load_file(whole.model_dir / "model.safetensors")
    resumed_weights = load_file(resumed.model_dir / "model.safetensors")
    assert whole_weights.keys() == resumed_weights.keys()
    assert all(torch.equal(whole_weights[k], resumed_weights[k]) for k in whole_weights)
    whole_config = json.loads((whole.model_dir / "config.json").read_text())
    resumed_config = json.loads((resumed.model_dir / "config.json").read_text())
    assert whole_config.get("ner_crf") == resumed_config.get("ner_crf")
    assert ("ner_crf" in whole_config) == (decoding == "crf")


def test_a_training_interrupted_in_its_final_fit_resumes_there(
    tiny_base: Path, tmp_path: Path
) -> None:
    """No validation data given: the final fit (training again on training + validation)
    is interrupted mid-way; the resumed run does not choose again, and ends as the whole."""
    data = make_dataset()
    config = _config(tiny_base)
    whole = train(data, tmp_path / "whole", config, test=data, device="cpu")
    final_epochs = json.loads((whole.model_dir / "training.json").read_text())["final_fit"][
        "epochs"
    ]

    def die_in_the_final_fit(folder: Path) -> None:
        meta = json.loads((folder / "state.json").read_text())
        if meta.get("final_fit_epochs") and meta["step"] == 3:
            raise TrainingCancelled("the worker died here")

    checkpoints = tmp_path / "checkpoint"
    with pytest.raises(TrainingCancelled):
        train(
            data,
            tmp_path / "first",
            config,
            test=data,
            device="cpu",
            checkpoint_dir=checkpoints,
            checkpoint_seconds=0.0,
            on_checkpoint=die_in_the_final_fit,
        )
    progress: list = []
    resumed = train(
        data,
        tmp_path / "resumed",
        config,
        test=data,
        device="cpu",
        callback=progress.append,
        checkpoint_dir=checkpoints,
        checkpoint_seconds=0.0,
    )
    assert not [p for p in progress if p.stage == "evaluated"]  # epochs not chosen again
    # The choosing run's validation scores, from the checkpoint.
    assert [h["f1"] for h in resumed.history] == [h["f1"] for h in whole.history]
    info = json.loads((resumed.model_dir / "training.json").read_text())
    assert info["final_fit"]["epochs"] == final_epochs
    assert resumed.metrics["f1"] == whole.metrics["f1"]
    whole_weights = load_file(whole.model_dir / "model.safetensors")
    resumed_weights = load_file(resumed.model_dir / "model.safetensors")
    assert all(torch.equal(whole_weights[k], resumed_weights[k]) for k in whole_weights)
