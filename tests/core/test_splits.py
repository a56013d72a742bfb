"""One split policy (shared/ner/splits.py), which `ner train` and training jobs share."""

from __future__ import annotations

from shared.ner import Dataset, Sentence, plan_splits


def _data(name: str, n: int) -> Dataset:
    sentences = []
    for i in range(n):
        word = f"w{i}"
        text = f"{word} Oslo"
        words = [(0, len(word)), (len(word) + 1, len(text))]
        sentences.append(Sentence(text, words, ["O", "B-LOC"]))
    return Dataset(sentences=sentences, format="conll", name=name)


def test_training_data_alone_is_split_80_10_10_by_seed() -> None:
    s = plan_splits(_data("t", 100), None, None, seed=1)
    assert (len(s.train), len(s.validation), len(s.test)) == (80, 10, 10)
    assert s.test_source == "split" and s.validation_carved
    again = plan_splits(_data("t", 100), None, None, seed=1)
    assert [x.text for x in again.test.sentences] == [x.text for x in s.test.sentences]


def test_validation_given_trains_on_all_and_reports_on_validation() -> None:
    train, validation = _data("t", 50), _data("v", 7)
    s = plan_splits(train, validation, None, seed=1)
    assert s.train is train and s.validation is validation and s.test is validation
    assert s.test_source == "validation" and not s.validation_carved


def test_test_given_holds_out_a_tenth_for_early_stopping() -> None:
    train, test = _data("t", 50), _data("x", 7)
    s = plan_splits(train, None, test, seed=1)
    assert (len(s.train), len(s.validation)) == (45, 5) and s.test is test
    assert s.test_source == "test" and s.validation_carved


def test_both_given_are_used_as_they_are() -> None:
    train, validation, test = _data("t", 5), _data("v", 3), _data("x", 2)
    s = plan_splits(train, validation, test, seed=1)
    assert (s.train, s.validation, s.test) == (train, validation, test)
    assert not s.validation_carved  # a validation file given is never learnt from
