"""Entity-level scores with seqeval, on whole sentences, from the spans prediction returns.

The predicted tags are rebuilt from the entities `Predictor` decodes (the same
function `/predict` uses), so a score here is a score of what users get.
`f1` is seqeval's default (conlleval-compatible) mode, comparable with published
CoNLL results; `f1_strict` is the strict IOB2 mode.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from seqeval.metrics import (
    accuracy_score,
    classification_report,
    f1_score,
    precision_score,
    recall_score,
)
from seqeval.scheme import IOB2

from .analysis import Analysis, analyse_sentences
from .context import document_runs, join_run
from .formats import Dataset, Sentence
from .inference import Predictor
from .tags import spans_to_tags, tags_to_spans


def score(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Scores of predicted against gold IOB2 tag sequences (CONTRACT §2 `ner evaluate`)."""
    y_true, y_pred = [list(s) for s in gold], [list(s) for s in predicted]
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    per_type = {
        kind: {
            "precision": round(float(v["precision"]), 4),
            "recall": round(float(v["recall"]), 4),
            "f1": round(float(v["f1-score"]), 4),
            "support": int(v["support"]),
        }
        for kind, v in sorted(report.items())
        if not kind.endswith(" avg")
    }
    return {
        "precision": round(float(precision_score(y_true, y_pred, zero_division=0)), 4),
        "recall": round(float(recall_score(y_true, y_pred, zero_division=0)), 4),
        "f1": round(float(f1_score(y_true, y_pred, zero_division=0)), 4),
        "f1_strict": round(
            float(f1_score(y_true, y_pred, mode="strict", scheme=IOB2, zero_division=0)), 4
        ),
        "token_accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "per_type": per_type,
        "sentences": len(y_true),
    }


def predict_tags(
    predictor: Predictor, sentences: Sequence[Sentence], batch_size: int = 64
) -> list[list[str]]:
    """Word tags rebuilt from the decoded entities of each sentence (with document context
    when the model was trained with it and the data keeps its documents)."""
    if predictor.context_length and predictor.context_mode == "packed":
        return _predict_packed(predictor, sentences, batch_size)
    tagged = predictor.tag_words(
        [s.text for s in sentences],
        [s.words for s in sentences],
        batch_size,
        predictor.sentence_contexts(sentences),
    )
    return [spans_to_tags(len(tags), tags_to_spans(tags)) for tags, _ in tagged]


def _predict_packed(
    predictor: Predictor, sentences: Sequence[Sentence], batch_size: int
) -> list[list[str]]:
    """Tag each run of a document's sentences as one text, as `/predict` tags a document,
    then cut the tags back into sentences (an entity never spans two sentences in the
    gold data, and one that would is cut at the boundary)."""
    runs = document_runs(sentences)
    joined = [join_run([sentences[i] for i in run]) for run in runs]
    tagged = predictor.tag_words([t for t, _ in joined], [w for _, w in joined], batch_size)
    out: list[list[str]] = [[] for _ in sentences]
    for run, (tags, _) in zip(runs, tagged, strict=True):
        pos = 0
        for i in run:
            n = len(sentences[i].words)
            out[i] = spans_to_tags(n, tags_to_spans(tags[pos : pos + n]))
            pos += n
    return out


def evaluate_chunks(
    predictor: Predictor,
    dataset: Dataset,
    chunk_size: int = 256,
    batch_size: int = 64,
    *,
    analysis: bool = False,
) -> Iterator[dict[str, Any] | None]:
    """Evaluate `chunk_size` sentences at a time: yields None after each chunk (so a
    caller can report progress or stop), then the scores. With `analysis`, the scores
    carry the error analysis (`analysis.analyse_tags`) under "analysis", from the same
    predictions."""
    start = time.perf_counter()
    sentences = dataset.sentences
    predicted: list[list[str]] = []
    for lo in range(0, len(sentences), chunk_size):
        predicted.extend(predict_tags(predictor, sentences[lo : lo + chunk_size], batch_size))
        yield None
    result = score([s.tags for s in sentences], predicted)
    result["seconds"] = round(time.perf_counter() - start, 2)
    if analysis:
        result["analysis"] = analyse_sentences(sentences, predicted)
    yield result


def evaluate(
    predictor: Predictor, dataset: Dataset, batch_size: int = 64, *, analysis: bool = False
) -> dict[str, Any]:
    """Scores of `predictor` on a labelled dataset (the `ner evaluate` JSON); with
    `analysis`, the error analysis too, under "analysis"."""
    *_, result = evaluate_chunks(
        predictor, dataset, max(1, len(dataset)), batch_size, analysis=analysis
    )
    assert result is not None
    return result


def analyse(predictor: Predictor, dataset: Dataset, batch_size: int = 64) -> Analysis:
    """The error analysis of `predictor` on a labelled dataset (`analysis.Analysis`)."""
    return evaluate(predictor, dataset, batch_size, analysis=True)["analysis"]
