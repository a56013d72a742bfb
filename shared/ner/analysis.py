"""Error analysis: where a model goes wrong, from gold and predicted spans per sentence.

Pure Python (no torch): it works on IOB2 tags and the sentences' word offsets, so the CLI,
the training run and the tests share it. Spans come from `tags.tags_to_spans`, the
conlleval decoding that seqeval's default mode and `/predict` use, so the per-type scores
here are exactly the ones `evaluate` reports.

How an entity is counted (spans are word ranges, end exclusive; "overlap" means at least
one word in common):

1. **correct**: a predicted span with the same boundaries and the same type as a gold span.
2. The remaining gold and predicted spans of a sentence are paired one to one, greedily:
   the pair sharing the most words first; on a tie, the pair with the same type, then the
   earlier gold span. A pair is
   - **wrong_type**: same boundaries, other type;
   - **wrong_boundary**: same type, other boundaries (overlapping);
   - **wrong_type_and_boundary**: other type and other boundaries (overlapping).
3. A gold span left unpaired is **missed**; a predicted span left unpaired is **spurious**.
   So a prediction that covers two gold entities pairs with one of them; the other gold
   entity is missed.

Every error is filed under one entity type: the gold span's type for missed and the three
paired kinds (the type the user wanted), the predicted type for spurious.

The confusion matrix counts entities, not tokens: rows are gold types plus a last row
"spurious" (no gold entity), columns are predicted types plus a last column "missed" (no
predicted entity). Each correct or paired span adds 1 at (gold type, predicted type), so the
diagonal holds correct and wrong_boundary spans, off the diagonal the type confusions.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any, Final, Literal, TypedDict

from .tags import tags_to_spans

KINDS = ("wrong_type", "wrong_boundary", "wrong_type_and_boundary", "missed", "spurious")
MISSED: Final = "missed"
SPURIOUS: Final = "spurious"
MAX_EXAMPLES = 50  # example sentences kept per (kind, type)
FORMAT_VERSION = 1

Kind = Literal["wrong_type", "wrong_boundary", "wrong_type_and_boundary", "missed", "spurious"]
WordSpan = tuple[int, int, str]


class Span(TypedDict):
    """An entity as character offsets into the sentence's text (end exclusive)."""

    start: int
    end: int
    label: str
    text: str


class TypeScores(TypedDict):
    """Entity-level scores of one type, and how its gold entities went."""

    precision: float
    recall: float
    f1: float
    support: int  # gold entities of this type
    predicted: int  # predicted entities of this type
    correct: int
    errors: dict[str, int]  # kind -> count, errors filed under this type


class Confusion(TypedDict):
    rows: list[str]  # gold types, then "spurious"
    columns: list[str]  # predicted types, then "missed"
    matrix: list[list[int]]  # matrix[row][column]


class Example(TypedDict):
    """One error in its sentence."""

    kind: Kind
    type: str
    sentence: int  # index of the sentence in the evaluated data
    line: int  # line of the sentence in the file it came from (0: unknown)
    text: str
    gold: list[Span]  # every gold entity of the sentence
    predicted: list[Span]  # every predicted entity of the sentence
    gold_span: Span | None  # the gold entity this error is about (None: spurious)
    predicted_span: Span | None  # the predicted entity (None: missed)


class Analysis(TypedDict):
    """The JSON of `evaluation.json`, `ner evaluate --json` and GET /models/{v}/evaluation."""

    version: int  # format version of this document
    sentences: int
    types: list[str]  # every entity type seen in gold or predictions, sorted
    totals: dict[str, int]  # gold, predicted, correct, and one count per kind
    per_type: dict[str, TypeScores]
    confusion: Confusion
    examples: list[Example]  # at most MAX_EXAMPLES per (kind, type), in sentence order
    examples_per_kind_and_type: int  # the cap used


def _pair(gold: list[WordSpan], predicted: list[WordSpan]) -> list[tuple[WordSpan, WordSpan]]:
    """One-to-one pairs of overlapping spans, most shared words first (see the module doc)."""
    candidates = []
    for gi, (ga, gb, gt) in enumerate(gold):
        for pi, (pa, pb, pt) in enumerate(predicted):
            shared = min(gb, pb) - max(ga, pa)
            if shared > 0:
                candidates.append((-shared, gt != pt, ga, pa, gi, pi))
    candidates.sort()
    used_gold: set[int] = set()
    used_pred: set[int] = set()
    pairs = []
    for *_, gi, pi in candidates:
        if gi in used_gold or pi in used_pred:
            continue
        used_gold.add(gi)
        used_pred.add(pi)
        pairs.append((gold[gi], predicted[pi]))
    return pairs


def _kind(gold: WordSpan, predicted: WordSpan) -> Kind:
    same_bounds = gold[:2] == predicted[:2]
    same_type = gold[2] == predicted[2]
    if same_bounds:
        return "wrong_type"  # (same bounds and type is "correct", handled before)
    return "wrong_boundary" if same_type else "wrong_type_and_boundary"


def classify(
    gold: Sequence[WordSpan], predicted: Sequence[WordSpan]
) -> tuple[list[WordSpan], list[tuple[Kind, WordSpan | None, WordSpan | None]]]:
    """The correct spans of one sentence, and its errors as (kind, gold span, predicted span)."""
    exact = set(gold) & set(predicted)
    correct = [s for s in gold if s in exact]
    rest_gold = [s for s in gold if s not in exact]
    rest_pred = [s for s in predicted if s not in exact]
    errors: list[tuple[Kind, WordSpan | None, WordSpan | None]] = []
    pairs = _pair(rest_gold, rest_pred)
    paired_gold = {g for g, _ in pairs}
    paired_pred = {p for _, p in pairs}
    errors.extend((_kind(g, p), g, p) for g, p in pairs)
    errors.extend((MISSED, g, None) for g in rest_gold if g not in paired_gold)
    errors.extend((SPURIOUS, None, p) for p in rest_pred if p not in paired_pred)
    errors.sort(key=lambda e: (e[1] or e[2])[0])  # type: ignore[index]
    return correct, errors


def _ratio(a: int, b: int) -> float:
    return round(a / b, 4) if b else 0.0


def analyse_tags(
    texts: Sequence[str],
    words: Sequence[Sequence[tuple[int, int]]],
    gold_tags: Sequence[Sequence[str]],
    predicted_tags: Sequence[Sequence[str]],
    *,
    lines: Sequence[int] | None = None,
    max_examples: int = MAX_EXAMPLES,
) -> Analysis:
    """The analysis of predicted against gold IOB2 tags, one list per sentence.

    `words` are each sentence's word offsets into its text, used to give every span of
    the examples in characters (`text[start:end]`)."""
    if not len(texts) == len(words) == len(gold_tags) == len(predicted_tags):
        raise ValueError("texts, words, gold and predicted tags differ in length")
    gold_n: Counter[str] = Counter()
    pred_n: Counter[str] = Counter()
    correct_n: Counter[str] = Counter()
    errors_n: dict[str, Counter[str]] = defaultdict(Counter)
    confusion: dict[tuple[str, str], int] = Counter()
    examples: list[Example] = []
    kept: Counter[tuple[str, str]] = Counter()

    for index, (text, offsets, gtags, ptags) in enumerate(
        zip(texts, words, gold_tags, predicted_tags, strict=True)
    ):

        def span(s: WordSpan, text: str = text, offsets: Sequence = offsets) -> Span:
            start, end = offsets[s[0]][0], offsets[s[1] - 1][1]
            return {"start": start, "end": end, "label": s[2], "text": text[start:end]}

        gold = tags_to_spans(gtags)
        predicted = tags_to_spans(ptags)
        gold_n.update(s[2] for s in gold)
        pred_n.update(s[2] for s in predicted)
        correct, errors = classify(gold, predicted)
        for s in correct:
            correct_n[s[2]] += 1
            confusion[s[2], s[2]] += 1
        gold_spans: list[Span] | None = None
        pred_spans: list[Span] | None = None
        for kind, g, p in errors:
            kind_type = g[2] if g is not None else p[2]  # type: ignore[index]
            errors_n[kind_type][kind] += 1
            confusion[g[2] if g else SPURIOUS, p[2] if p else MISSED] += 1
            if kept[kind, kind_type] >= max_examples:
                continue
            kept[kind, kind_type] += 1
            if gold_spans is None or pred_spans is None:
                gold_spans = [span(s) for s in gold]
                pred_spans = [span(s) for s in predicted]
            examples.append(
                {
                    "kind": kind,
                    "type": kind_type,
                    "sentence": index,
                    "line": lines[index] if lines is not None else 0,
                    "text": text,
                    "gold": gold_spans,
                    "predicted": pred_spans,
                    "gold_span": span(g) if g is not None else None,
                    "predicted_span": span(p) if p is not None else None,
                }
            )

    types = sorted(set(gold_n) | set(pred_n))
    per_type: dict[str, TypeScores] = {}
    for t in types:
        precision = _ratio(correct_n[t], pred_n[t])
        recall = _ratio(correct_n[t], gold_n[t])
        f1 = _ratio(2 * correct_n[t], pred_n[t] + gold_n[t])
        per_type[t] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": gold_n[t],
            "predicted": pred_n[t],
            "correct": correct_n[t],
            "errors": {k: errors_n[t][k] for k in KINDS},
        }
    rows, columns = [*types, SPURIOUS], [*types, MISSED]
    totals = {
        "gold": sum(gold_n.values()),
        "predicted": sum(pred_n.values()),
        "correct": sum(correct_n.values()),
        **{k: sum(c[k] for c in errors_n.values()) for k in KINDS},
    }
    return {
        "version": FORMAT_VERSION,
        "sentences": len(texts),
        "types": types,
        "totals": totals,
        "per_type": per_type,
        "confusion": {
            "rows": rows,
            "columns": columns,
            "matrix": [[confusion[r, c] for c in columns] for r in rows],
        },
        "examples": examples,
        "examples_per_kind_and_type": max_examples,
    }


def analyse_sentences(
    sentences: Sequence[Any], predicted_tags: Sequence[Sequence[str]], **kwargs: Any
) -> Analysis:
    """`analyse_tags` for the core's `Sentence`s (text, words, gold tags, line)."""
    return analyse_tags(
        [s.text for s in sentences],
        [s.words for s in sentences],
        [s.tags for s in sentences],
        predicted_tags,
        lines=[s.line for s in sentences],
        **kwargs,
    )
