"""Fixtures for the NER core tests: tiny random BERTs built from the test words, and one
overfit training run shared by the whole session (it is the slow part)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.ner import Dataset, Predictor, TrainConfig, TrainResult, parse_dataset, train
from shared.ner import training as training_module
from tests.core.data import VOCABULARY, csv_text
from tests.tiny_model import make_tiny_bert

# Overfitting the 20 sentences: F1 reaches 1.0 by epoch 6-12 depending on the seed. Early
# stopping ends the run `patience` epochs after the best F1 (1.0 cannot be beaten), so
# the 30 epochs are only a ceiling and the run usually takes about 10.
OVERFIT = TrainConfig(
    epochs=30, batch_size=4, learning_rate=5e-3, warmup_ratio=0.0, patience=4, seed=42
)
SHORT = TrainConfig(
    epochs=5, batch_size=4, learning_rate=1e-2, warmup_ratio=0.0, patience=100, seed=7
)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The tiny models gain nothing from threads, and on a busy 2-core machine two
    threads per process make everything slower. (Autouse here: only for tests under
    tests/core; session-scoped so that the session-scoped training runs use it too.)"""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_dataset() -> Dataset:
    """A fresh copy of the 20 sentences (readers mutate tags when converting IOB1)."""
    return parse_dataset(csv_text(), "csv", "twenty.csv")


@pytest.fixture
def dataset() -> Dataset:
    return make_dataset()


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "cased", VOCABULARY)


@pytest.fixture(scope="session")
def tiny_base_uncased(tmp_path_factory: pytest.TempPathFactory, one_torch_thread: None) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "uncased", VOCABULARY, lowercase=True)


@dataclass
class Trained:
    result: TrainResult
    model: Any  # the in-memory model train() fine-tuned (best weights loaded)
    tokenizer: Any
    progress: list[Any]

    @property
    def model_dir(self) -> Path:
        return self.result.model_dir


def train_capturing(data: Dataset, out: Path, config: TrainConfig, **kwargs: Any) -> Trained:
    """train(), keeping hold of the model and tokenizer it loaded and every Progress."""
    loaded: list[Any] = []
    real_load = training_module._load

    def spy(base: str, labels: list[str]) -> tuple[Any, Any]:
        tokenizer, model = real_load(base, labels)
        loaded.append((tokenizer, model))
        return tokenizer, model

    progress: list[Any] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training_module, "_load", spy)
        result = train(data, out, config, callback=progress.append, **kwargs)
    ((tokenizer, model),) = loaded
    return Trained(result, model, tokenizer, progress)


@pytest.fixture(scope="session")
def trained(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The tiny cased BERT overfit on the 20 sentences (validation = test = training data)."""
    data = make_dataset()
    config = TrainConfig(**{**OVERFIT.__dict__, "base_model": str(tiny_base)})
    out = tmp_path_factory.mktemp("overfit") / "model"
    return train_capturing(data, out, config, validation=data, test=data)


@pytest.fixture(scope="session")
def predictor(trained: Trained) -> Predictor:
    return Predictor.load(trained.model_dir)


@pytest.fixture(scope="session")
def uncased_runs(
    tiny_base_uncased: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[Trained]:
    """Two short runs with the same seed on the uncased tiny BERT."""
    runs = []
    for n in (1, 2):
        data = make_dataset()
        config = TrainConfig(**{**SHORT.__dict__, "base_model": str(tiny_base_uncased)})
        out = tmp_path_factory.mktemp(f"short{n}") / "model"
        runs.append(train_capturing(data, out, config, validation=data, test=data))
    return runs


@pytest.fixture(scope="session")
def uncased_predictor(uncased_runs: list[Trained]) -> Predictor:
    return Predictor.load(uncased_runs[0].model_dir)


@pytest.fixture
def write(tmp_path: Path) -> Iterator[Any]:
    """write(name, text_or_bytes) → a path under tmp_path holding it."""

    def _write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8", newline="")
        else:
            path.write_bytes(content)
        return path

    yield _write


def assert_int8_exports(report: dict[str, Any]) -> None:
    """The int8 variants an export made and checked (`onnx/serving.json`): signed 8-bit
    weights only where this CPU sums them exactly; 7-bit signed weights (exact on every
    CPU) always; unsigned ones only where the 7-bit variant failed its check."""
    variants = report["variants"]
    assert ("int8" in variants) == report["signed_int8_exact"]
    assert "int8-s7" in variants
    assert ("int8-u8" in variants) == (not variants["int8-s7"]["passed"])
