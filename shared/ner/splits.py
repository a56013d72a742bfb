"""Which data a training learns from, stops early on, and reports on: one policy, used by
`ner train` and by a training job alike (through `train()`), so both give the same metrics
for the same data, options and seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .formats import Dataset, split_dataset

TestSource = Literal["test", "validation", "split"]


@dataclass(frozen=True)
class Splits:
    train: Dataset
    validation: Dataset
    test: Dataset
    # Where the reported scores come from: the given test set, the given validation set
    # (no test set given), or a seeded split of the training data.
    test_source: TestSource
    # Whether the validation set was split off the training data (no validation file given):
    # then a final fit may learn from it too, once it has chosen the epoch count.
    validation_carved: bool = False


def plan_splits(
    train: Dataset, validation: Dataset | None, test: Dataset | None, seed: int
) -> Splits:
    """- nothing but training data: a seeded 80/10/10 split (CONTRACT §2);
    - validation given: all of the training data is learnt from; scores are reported on the
      validation data (early stopping uses it too), since no held-out test set exists;
    - test given: 10% of the training data is held out for early stopping, which must never
      look at the test data;
    - both given: used as they are.
    """
    if validation is None and test is None:
        train_part, validation_part, test_part = split_dataset(train, seed)
        return Splits(train_part, validation_part, test_part, "split", validation_carved=True)
    if test is None:
        assert validation is not None
        return Splits(train, validation, validation, "validation")
    if validation is None:
        train_part, validation_part, _ = split_dataset(train, seed, (0.9, 0.1, 0.0))
        return Splits(train_part, validation_part, test, "test", validation_carved=True)
    return Splits(train, validation, test, "test")
