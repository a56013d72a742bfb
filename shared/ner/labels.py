"""The label map a model is trained with: O, then B-/I- for each entity type."""

from __future__ import annotations


def label_list(types: list[str]) -> list[str]:
    return ["O"] + [f"{p}-{t}" for t in sorted(types) for p in ("B", "I")]


def continuation_ids(labels: list[str]) -> list[int]:
    """For each label id, the id a word's later sub-tokens get: B-X → I-X, others unchanged.

    Every sub-token is labelled (not only the first), so the saved model also gives
    sensible spans through `transformers.pipeline(..., aggregation_strategy="simple")`,
    which looks at every sub-token; our own decoding reads the first one.
    """
    index = {label: i for i, label in enumerate(labels)}
    return [index["I-" + lab[2:]] if lab.startswith("B-") else i for i, lab in enumerate(labels)]
