"""The NER core: data formats, training, evaluation and inference.

Imports nothing from the service layers (`api/`, `worker/`), so the `ner`
command line and the tests use it alone.
"""

from .documents import Document, parse_documents
from .evaluation import evaluate, score
from .formats import Dataset, Sentence, detect_format, parse_dataset, read_dataset, split_dataset
from .inference import Predictor
from .problems import DatasetError, Problem, format_problems
from .training import Progress, TrainConfig, TrainingCancelled, TrainResult, train

__all__ = [
    "Dataset",
    "DatasetError",
    "Document",
    "Predictor",
    "Problem",
    "Progress",
    "Sentence",
    "TrainConfig",
    "TrainResult",
    "TrainingCancelled",
    "detect_format",
    "evaluate",
    "format_problems",
    "parse_dataset",
    "parse_documents",
    "read_dataset",
    "score",
    "split_dataset",
    "train",
]
