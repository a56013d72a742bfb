"""BIO tags: checking, IOB1 → IOB2, and conversion between word tags and spans.

Span decoding follows conlleval (what seqeval's default mode does too): an `I-X`
that does not continue an `X` entity starts a new one. That way the spans we
return and the scores we report agree with the published CoNLL numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

TAG_RE = re.compile(r"^(?:O|[BI]-\S+)$")


def tag_error(tag: str) -> str | None:
    """Why `tag` is not a BIO tag, or None when it is one."""
    if TAG_RE.match(tag):
        return None
    if re.match(r"^[ES]-\S+$", tag):
        return f"tag {tag!r} is BIOES; only BIO tags (O, B-TYPE, I-TYPE) are read"
    return f"tag {tag!r} is not a BIO tag (expected O, B-TYPE or I-TYPE)"


def entity_type(tag: str) -> str | None:
    return None if tag == "O" else tag[2:]


def iob1_to_iob2(tags: Sequence[str]) -> tuple[list[str], int]:
    """Turn every `I-X` that starts an entity into `B-X`; return the tags and how many changed."""
    out: list[str] = []
    changed = 0
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and (prev == "O" or prev[2:] != tag[2:]):
            out.append("B-" + tag[2:])
            changed += 1
        else:
            out.append(tag)
        prev = tag
    return out, changed


def tags_to_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Word-index spans `(first, last_exclusive, type)` from BIO tags, conlleval style."""
    spans: list[tuple[int, int, str]] = []
    start = -1
    current: str | None = None
    for i, tag in enumerate(tags):
        kind = entity_type(tag)
        continues = tag.startswith("I-") and kind == current
        if current is not None and not continues:
            spans.append((start, i, current))
            current = None
        if kind is not None and not continues:
            start, current = i, kind
    if current is not None:
        spans.append((start, len(tags), current))
    return spans


def spans_to_tags(n_words: int, spans: Sequence[tuple[int, int, str]]) -> list[str]:
    """IOB2 tags for `n_words` words from non-overlapping word-index spans."""
    tags = ["O"] * n_words
    for first, last, kind in spans:
        tags[first] = "B-" + kind
        for i in range(first + 1, last):
            tags[i] = "I-" + kind
    return tags
