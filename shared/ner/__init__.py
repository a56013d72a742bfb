"""The NER core: data formats, training, evaluation and inference.

Imports nothing from the service layers (`api/`, `worker/`), so the `ner`
command line and the tests use it alone. Names are loaded on first use, so that
reading and validating data (`read_dataset`, the API's uploads) does not import
torch and transformers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .analysis import Analysis, analyse_tags
    from .config import TrainConfig
    from .documents import Document, parse_documents
    from .evaluation import analyse, evaluate, score
    from .formats import (
        Dataset,
        Sentence,
        detect_format,
        parse_dataset,
        read_dataset,
        split_dataset,
    )
    from .inference import Predictor
    from .problems import DatasetError, DatasetTooLarge, Problem, format_problems
    from .splits import Splits, plan_splits
    from .training import Progress, TrainingCancelled, TrainResult, train

_WHERE = {
    "Document": "documents",
    "parse_documents": "documents",
    "Analysis": "analysis",
    "analyse_tags": "analysis",
    "analyse": "evaluation",
    "evaluate": "evaluation",
    "score": "evaluation",
    "Dataset": "formats",
    "Sentence": "formats",
    "detect_format": "formats",
    "parse_dataset": "formats",
    "read_dataset": "formats",
    "split_dataset": "formats",
    "Predictor": "inference",
    "DatasetError": "problems",
    "DatasetTooLarge": "problems",
    "Problem": "problems",
    "format_problems": "problems",
    "Progress": "training",
    "TrainConfig": "config",
    "Splits": "splits",
    "plan_splits": "splits",
    "TrainingCancelled": "training",
    "TrainResult": "training",
    "train": "training",
}

__all__ = [
    "Analysis",
    "Dataset",
    "DatasetError",
    "DatasetTooLarge",
    "Document",
    "Predictor",
    "Problem",
    "Progress",
    "Sentence",
    "Splits",
    "TrainConfig",
    "TrainResult",
    "TrainingCancelled",
    "analyse",
    "analyse_tags",
    "detect_format",
    "evaluate",
    "format_problems",
    "parse_dataset",
    "parse_documents",
    "plan_splits",
    "read_dataset",
    "score",
    "split_dataset",
    "train",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value
