"""The word splitter, entity shape, and BIO decoding (conlleval style)."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.ner import parse_dataset
from shared.ner.formats import Sentence
from shared.ner.tags import iob1_to_iob2, spans_to_tags, tag_error, tags_to_spans
from shared.ner.words import split_at, split_words


def words(text: str) -> list[str]:
    return [text[a:b] for a, b in split_words(text)]


# ---------------------------------------------------------------- word splitter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Angela Merkel's trip", ["Angela", "Merkel", "'s", "trip"]),
        ("the U.S. and e.g. AT&T", ["the", "U.S.", "and", "e.g.", "AT&T"]),
        ("on 1996-08-22, O'Neil said:", ["on", "1996-08-22", ",", "O'Neil", "said", ":"]),
        ('"hi!"', ['"', "hi", "!", '"']),
        ("Hello...world", ["Hello", ".", ".", ".", "world"]),
        ("été café", ["été", "café"]),
        ("e\u0301te\u0301", ["e\u0301te\u0301"]),  # combining accents stay in the word
        ("😀👍🏽", ["😀", "👍", "🏽"]),
        ("  \t\n  ", []),
        ("", []),
        ("أحمد في القاهرة", ["أحمد", "في", "القاهرة"]),
        ("東京に行く", ["東京に行く"]),
        ("ab.cd.", ["ab.cd", "."]),
    ],
)
def test_split_words(text: str, expected: list[str]) -> None:
    assert words(text) == expected


# Information separators: Python's str.isspace() says yes, Unicode's White_Space (and so
# the splitter) says no; they are left out of both checks below.
PY_ONLY_SPACE = "\x1c\x1d\x1e\x1f"


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_split_words_spans_are_ordered_nonempty_and_never_hold_whitespace(text: str) -> None:
    spans = split_words(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        assert not any(ch.isspace() and ch not in PY_ONLY_SPACE for ch in text[start:end])
        previous_end = end
    covered = {i for a, b in spans for i in range(a, b)}
    left_out = [ch for i, ch in enumerate(text) if i not in covered]
    # Only white space and invisible format characters (zero-width space, soft hyphen,
    # bidi marks: Unicode category Cf) are left between words.
    assert all(
        ch.isspace() or ch in PY_ONLY_SPACE or unicodedata.category(ch) == "Cf" for ch in left_out
    )


def test_split_at_cuts_words_at_entity_boundaries() -> None:
    assert split_at([(0, 4), (5, 12)], {2, 5, 8, 12}) == [(0, 2), (2, 4), (5, 8), (8, 12)]


# ---------------------------------------------------------------- JSONL round trip


def test_sentence_entities_shape() -> None:
    s = Sentence.from_tokens(
        ["Angela", "Merkel", "visited", "New", "York"], ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    )
    assert s.text == "Angela Merkel visited New York"
    assert s.entities() == [
        {"start": 0, "end": 13, "label": "PER", "text": "Angela Merkel"},
        {"start": 22, "end": 30, "label": "LOC", "text": "New York"},
    ]


SEPARATORS = st.sampled_from([" ", "  ", "\t", "\n", " , ", "-", "'", ".", "", " 😀 ", "\u00a0"])
PIECES = st.sampled_from(
    ["Angela", "Merkel", "U.S.", "été", "e\u0301", "東京", "42", "O'Neil", "AT&T", "أحمد", "x"]
)


@st.composite
def annotated(draw: st.DrawFn) -> tuple[str, list[tuple[int, int, str]]]:
    """A text built from pieces, with entities on some pieces (non-overlapping, word-aligned)."""
    n = draw(st.integers(1, 12))
    text = ""
    spans = []
    for _ in range(n):
        sep = draw(SEPARATORS) if text else ""
        piece = draw(PIECES)
        if text and sep == "" and (piece[0].isalnum() or text[-1].isalnum()):
            sep = " "  # keep pieces apart so an entity edge never falls inside a word
        text += sep
        start = len(text)
        text += piece
        if draw(st.booleans()):
            spans.append((start, len(text), draw(st.sampled_from(["PER", "LOC", "ORG"]))))
    return text, spans


@settings(max_examples=60, deadline=None)
@given(annotated())
def test_jsonl_entities_round_trip(sample: tuple[str, list[tuple[int, int, str]]]) -> None:
    text, spans = sample
    line = json.dumps({"text": text, "entities": [[s, e, label] for s, e, label in spans]})
    [sentence] = parse_dataset(line, "jsonl").sentences
    assert sentence.entities() == [
        {"start": s, "end": e, "label": label, "text": text[s:e]} for s, e, label in spans
    ]
    assert all(
        sentence.text[a:b] == tok
        for (a, b), tok in zip(sentence.words, sentence.tokens, strict=True)
    )


def test_adjacent_same_type_entities_stay_apart() -> None:
    line = json.dumps({"text": "Angela Merkel", "entities": [[0, 6, "PER"], [7, 13, "PER"]]})
    [sentence] = parse_dataset(line, "jsonl").sentences
    assert sentence.tags == ["B-PER", "B-PER"]
    assert [e["text"] for e in sentence.entities()] == ["Angela", "Merkel"]


# ---------------------------------------------------------------- BIO


@pytest.mark.parametrize(
    ("tags", "spans"),
    [
        ([], []),
        (["O", "O"], []),
        (["B-PER", "I-PER", "O", "B-LOC"], [(0, 2, "PER"), (3, 4, "LOC")]),
        (["I-PER", "I-PER", "O"], [(0, 2, "PER")]),  # I- after nothing starts one
        (["O", "I-PER", "O"], [(1, 2, "PER")]),  # I- after O starts one
        (["B-PER", "I-LOC", "I-LOC"], [(0, 1, "PER"), (1, 3, "LOC")]),  # B-X I-Y: two entities
        (["B-PER", "B-PER", "I-PER"], [(0, 1, "PER"), (1, 3, "PER")]),
        (["I-PER", "B-PER"], [(0, 1, "PER"), (1, 2, "PER")]),
        (["B-LOC", "I-LOC", "I-LOC"], [(0, 3, "LOC")]),  # runs to the end
        (["B-MISC-X", "I-MISC-X"], [(0, 2, "MISC-X")]),
    ],
)
def test_tags_to_spans_conlleval_style(tags: list[str], spans: list[tuple[int, int, str]]) -> None:
    assert tags_to_spans(tags) == spans


def test_tags_to_spans_agrees_with_seqeval_default_mode() -> None:
    from seqeval.metrics.sequence_labeling import get_entities

    for tags in (
        ["O", "I-PER", "I-LOC", "B-LOC", "I-LOC", "O", "I-ORG"],
        ["B-PER", "I-PER", "B-PER", "I-LOC", "O", "B-ORG"],
    ):
        ours = [(kind, a, b - 1) for a, b, kind in tags_to_spans(tags)]
        assert ours == get_entities(tags)


TAG_LISTS = st.lists(st.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]), max_size=30)


def is_iob2(tags: list[str]) -> bool:
    return all(
        not t.startswith("I-") or (i > 0 and tags[i - 1][2:] == t[2:]) for i, t in enumerate(tags)
    )


@settings(max_examples=50, deadline=None)
@given(TAG_LISTS)
def test_spans_to_tags_inverts_tags_to_spans(tags: list[str]) -> None:
    spans = tags_to_spans(tags)
    rebuilt = spans_to_tags(len(tags), spans)
    assert tags_to_spans(rebuilt) == spans
    assert is_iob2(rebuilt)
    if is_iob2(tags):
        assert rebuilt == tags  # valid IOB2 comes back unchanged


def test_spans_to_tags() -> None:
    assert spans_to_tags(5, [(0, 2, "PER"), (3, 5, "LOC")]) == [
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "I-LOC",
    ]
    assert spans_to_tags(2, [(0, 1, "PER"), (1, 2, "PER")]) == ["B-PER", "B-PER"]


@pytest.mark.parametrize(
    ("iob1", "iob2", "changed"),
    [
        (["I-PER", "I-PER", "O", "I-LOC"], ["B-PER", "I-PER", "O", "B-LOC"], 2),
        (["I-PER", "B-PER", "I-PER"], ["B-PER", "B-PER", "I-PER"], 1),
        (["B-PER", "I-LOC"], ["B-PER", "B-LOC"], 1),
        (["B-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"], 0),
        ([], [], 0),
    ],
)
def test_iob1_to_iob2(iob1: list[str], iob2: list[str], changed: int) -> None:
    assert iob1_to_iob2(iob1) == (iob2, changed)


@settings(max_examples=50, deadline=None)
@given(TAG_LISTS)
def test_iob1_to_iob2_keeps_the_conlleval_entities(tags: list[str]) -> None:
    converted, _ = iob1_to_iob2(tags)
    assert tags_to_spans(converted) == tags_to_spans(tags)
    assert iob1_to_iob2(converted) == (converted, 0)  # idempotent


@pytest.mark.parametrize("tag", ["O", "B-PER", "I-PER", "B-MISC", "I-geo-loc"])
def test_tag_error_accepts_bio(tag: str) -> None:
    assert tag_error(tag) is None


@pytest.mark.parametrize("tag", ["X-PER", "E-PER", "S-PER", "B-", "B_PER", "o", "BPER", "B-PER X"])
def test_tag_error_rejects_others(tag: str) -> None:
    assert tag_error(tag) is not None
