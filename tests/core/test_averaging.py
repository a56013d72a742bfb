"""The weights a training keeps are the moving average of its steps (shared/ner/averaging.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from shared.ner import TrainConfig, train
from shared.ner.averaging import WeightAverage
from tests.core.conftest import SHORT, make_dataset


def _linear(weight: float) -> torch.nn.Linear:
    layer = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(weight)
    return layer


def test_the_average_follows_the_steps_with_a_warm_up_decay() -> None:
    model = _linear(0.0)
    average = WeightAverage(model, decay=0.9)
    for weight in (0.0, 10.0, 20.0):
        with torch.no_grad():
            model.weight.fill_(weight)
        average.update(model)
    # First update: a copy (0). Then decay min(0.9, 2/11), then min(0.9, 3/12):
    expected = 0.0 + (1 - 2 / 11) * (10.0 - 0.0)
    expected += (1 - 3 / 12) * (20.0 - expected)
    with average.applied(model):
        assert model.weight.item() == pytest.approx(expected)
    assert model.weight.item() == 20.0  # the model's own weights again after the block


def test_a_decay_outside_its_range_is_refused() -> None:
    with pytest.raises(ValueError, match="ema_decay"):
        WeightAverage(_linear(0.0), decay=1.0)


def test_the_average_is_what_a_training_keeps_and_records(tiny_base: Path, tmp_path: Path) -> None:
    data = make_dataset()
    weights = {}
    for decay in (0.0, 0.5):
        config = TrainConfig(
            **{**SHORT.__dict__, "epochs": 2, "base_model": str(tiny_base), "ema_decay": decay}
        )
        result = train(data, tmp_path / str(decay), config, validation=data, device="cpu")
        recorded = json.loads((result.model_dir / "training.json").read_text())
        assert recorded["arguments"]["ema_decay"] == decay
        weights[decay] = load_file(result.model_dir / "model.safetensors")
    # Same seed, same steps (the average does not steer the training): what is kept differs.
    differ = [k for k in weights[0.0] if not torch.equal(weights[0.0][k], weights[0.5][k])]
    assert differ
