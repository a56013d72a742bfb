"""The training curves a job keeps (shared/services/training.py `TrainingHistory`): loss by step,
thinned so a long run stays a few hundred points, and validation scores by epoch."""

from __future__ import annotations

import itertools

from shared.ner import Progress
from shared.services.training import MAX_LOSS_POINTS, TrainingHistory


def step(n: int, epochs: int = 4, per_epoch: int = 1000) -> Progress:
    epoch = (n - 1) // per_epoch + 1
    return Progress("training", 0.5, epoch, epochs, n, per_epoch * epochs, loss=1.0 / n)


def test_nothing_reported_is_null() -> None:
    assert TrainingHistory().as_dict() is None


def test_a_long_run_keeps_its_whole_curve_in_few_points() -> None:
    history = TrainingHistory()
    for n in range(1, 4001):
        history.add(step(n))
    loss = history.as_dict()["loss"]
    assert len(loss) <= MAX_LOSS_POINTS
    assert loss[0]["step"] <= 16 and loss[-1]["step"] >= 4000 - 16  # start to end
    steps = [p["step"] for p in loss]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert loss[-1]["epoch"] == round(loss[-1]["step"] / 1000, 3)  # fractional epochs


def test_validation_scores_by_epoch() -> None:
    history = TrainingHistory()
    for epoch, f1, p, r in ((1, 0.5, 0.6, 0.4), (2, 0.7, 0.8, 0.6)):
        metrics = {"f1": f1, "precision": p, "recall": r, "per_type": {}}
        history.add(Progress("evaluated", 0.5, epoch, 2, epoch * 10, 20, metrics=metrics))
    assert history.as_dict() == {
        "loss": [],
        "validation": [
            {"epoch": 1, "f1": 0.5, "precision": 0.6, "recall": 0.4},
            {"epoch": 2, "f1": 0.7, "precision": 0.8, "recall": 0.6},
        ],
    }


def test_a_final_fit_keeps_its_own_loss_curve() -> None:
    history = TrainingHistory()
    for n in range(1, 11):
        history.add(step(n, per_epoch=5, epochs=2))
    for n in range(1, 6):  # the final fit counts its steps from 1 again
        history.add(Progress("final fit", 0.8, 1, 1, n, 5, loss=2.0 / n))
    curves = history.as_dict()
    assert [p["step"] for p in curves["loss"]] == list(range(1, 11))
    assert curves["final_fit"] == [{"step": n, "loss": round(2.0 / n, 5)} for n in range(1, 6)]


def test_a_long_final_fit_is_thinned_on_its_own() -> None:
    history = TrainingHistory()
    for n in range(1, 11):  # a short choosing run: its curve is not thinned
        history.add(step(n, per_epoch=5, epochs=2))
    for n in range(1, 4001):
        history.add(Progress("final fit", 0.8, 1, 4, n, 4000, loss=1.0 / n))
    curves = history.as_dict()
    assert [p["step"] for p in curves["loss"]] == list(range(1, 11))
    fit = [p["step"] for p in curves["final_fit"]]
    assert len(fit) <= MAX_LOSS_POINTS and fit[0] <= 16 and fit[-1] >= 4000 - 16
    assert all(0 < b - a <= 16 for a, b in itertools.pairwise(fit))  # no hole in the curve
