"""Window encoder: every word owned once, windows within the encoder, labels where they belong."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from shared.ner.encoding import IGNORE, WindowEncoder
from shared.ner.labels import continuation_ids, label_list

MAX_LENGTH = 64
LABELS = label_list(["LOC", "PER"])  # O B-LOC I-LOC B-PER I-PER
CONTINUATION = continuation_ids(LABELS)


@pytest.fixture(scope="module")
def tokenizer(tiny_base: Path):
    return AutoTokenizer.from_pretrained(tiny_base)


def make_words(n: int) -> list[str]:
    """Known words (one sub-token) mixed with unknown ones (several sub-tokens each)."""
    pool = ["Angela", "visited", "Paris", "zqxj", "Berlinerstrasse", ".", "AT&T", "été", "42"]
    return [pool[i % len(pool)] for i in range(n)]


def first_subtokens(window) -> list[int]:
    return [
        p for p, w in enumerate(window.words) if w >= 0 and (p == 0 or window.words[p - 1] != w)
    ]


def check_windows(encoder: WindowEncoder, docs: list[list[str]], windows) -> None:
    """The invariants every encoding must satisfy."""
    backend = encoder.tokenizer.backend  # the Rust tokenizer the encoder calls
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    owners: Counter[tuple[int, int]] = Counter()
    for window in windows:
        assert len(window.input_ids) <= MAX_LENGTH
        assert len(window.words) == len(window.input_ids)
        assert window.input_ids[0] == cls_id and window.input_ids[-1] == sep_id
        assert window.words[0] == -1 and window.words[-1] == -1
        assert all(w >= 0 for w in window.words[1:-1])
        # owned positions are first sub-tokens of their word, in word order
        owned_words = [window.words[p] for p in window.owned]
        assert owned_words == sorted(owned_words)
        for p in window.owned:
            assert p > 0 and window.words[p] >= 0 and window.words[p - 1] != window.words[p]
            owners[(window.doc, window.words[p])] += 1
    # every word that yields a sub-token is owned by exactly one window of its document
    expected = Counter()
    for doc, words in enumerate(docs):
        ids = backend.encode(words, is_pretokenized=True, add_special_tokens=False)
        for w in {w for w in ids.word_ids if w is not None}:
            expected[(doc, w)] = 1
    assert owners == expected


@pytest.mark.parametrize("stride", [0, 8, 16, 128])
def test_long_input_every_word_owned_exactly_once(tokenizer, stride: int) -> None:
    encoder = WindowEncoder(tokenizer, MAX_LENGTH, stride)
    docs = [make_words(200), make_words(3), make_words(61)]
    windows = encoder.encode(docs)
    check_windows(encoder, docs, windows)
    first = [w for w in windows if w.doc == 0]
    assert len(first) >= 5
    assert [w.doc for w in windows] == sorted(w.doc for w in windows)


def test_consecutive_windows_overlap_by_about_the_stride(tokenizer) -> None:
    encoder = WindowEncoder(tokenizer, MAX_LENGTH, 16)
    windows = encoder.encode([make_words(200)])
    for a, b in itertools.pairwise(windows):
        shared = set(a.words[1:-1]) & set(b.words[1:-1])
        assert shared, "no overlap between consecutive windows"
        assert max(a.words[1:-1]) >= min(b.words[1:-1])
        # b starts at a word start inside a: its first word is whole in b
        assert b.words[1] not in {w for w in a.words[1:-1] if w > b.words[1]}


def test_short_input_is_one_window_with_all_words_owned(tokenizer) -> None:
    encoder = WindowEncoder(tokenizer, MAX_LENGTH, 16)
    [window] = encoder.encode([["Angela", "visited", "zqxj", "."]])
    pieces = tokenizer.convert_ids_to_tokens(window.input_ids)
    assert pieces == ["[CLS]", "Angela", "visited", "z", "##q", "##x", "##j", ".", "[SEP]"]
    assert window.words == [-1, 0, 1, 2, 2, 2, 2, 3, -1]
    assert window.owned == [1, 2, 3, 7]
    assert window.labels is None


def test_labels_first_subtoken_continuation_and_ignore(tokenizer) -> None:
    encoder = WindowEncoder(tokenizer, MAX_LENGTH, 16)
    b_per, i_per = LABELS.index("B-PER"), LABELS.index("I-PER")
    b_loc = LABELS.index("B-LOC")
    [window] = encoder.encode(
        [["zqxj", "Angela", "in", "Berlinerstrasse"]],
        [[b_per, LABELS.index("I-PER"), 0, b_loc]],
        CONTINUATION,
    )
    # [CLS] z ##q ##x ##j Angela in B ##e ... [SEP]
    assert window.labels is not None
    assert window.labels[0] == IGNORE and window.labels[-1] == IGNORE
    assert window.labels[1:5] == [b_per, i_per, i_per, i_per]  # B- on the first, I- after
    assert window.labels[5] == i_per
    assert window.labels[6] == 0
    loc_positions = [p for p, w in enumerate(window.words) if w == 3]
    assert window.labels[loc_positions[0]] == b_loc
    assert {window.labels[p] for p in loc_positions[1:]} == {LABELS.index("I-LOC")}


def test_labels_without_continuation_repeat_the_tag(tokenizer) -> None:
    encoder = WindowEncoder(tokenizer, MAX_LENGTH, 16)
    [window] = encoder.encode([["zqxj"]], [[LABELS.index("B-PER")]])
    assert window.labels == [IGNORE] + [LABELS.index("B-PER")] * 4 + [IGNORE]


def test_context_only_positions_are_ignored_in_training(tokenizer) -> None:
    encoder = WindowEncoder(tokenizer, MAX_LENGTH, 16)
    docs = [make_words(150)]
    tags = [[(i % 4) for i in range(150)]]
    windows = encoder.encode(docs, tags, CONTINUATION)
    assert len(windows) > 2
    labelled: Counter[int] = Counter()
    for window in windows:
        assert window.labels is not None and len(window.labels) == len(window.input_ids)
        owned_words = {window.words[p] for p in window.owned}
        for p, (w, label) in enumerate(zip(window.words, window.labels, strict=True)):
            if w < 0 or w not in owned_words:
                assert label == IGNORE, f"position {p} (word {w}) is context only"
            else:
                assert label != IGNORE
                if p in window.owned:
                    labelled[w] += 1
                    assert label == tags[0][w]
                else:
                    assert label == CONTINUATION[tags[0][w]]
    assert labelled == Counter(range(150))  # each word's tag is learned once


def test_empty_documents_produce_no_window(tokenizer) -> None:
    encoder = WindowEncoder(tokenizer, MAX_LENGTH, 16)
    assert encoder.encode([]) == []
    assert encoder.encode([[]]) == []
    windows = encoder.encode([["Angela"], [], ["\u200b"], ["Paris"]])  # \u200b: no sub-token
    assert [w.doc for w in windows] == [0, 3]


def test_max_length_too_small_is_refused(tokenizer) -> None:
    with pytest.raises(ValueError, match="leaves no room"):
        WindowEncoder(tokenizer, 8, 2)


WORD = st.one_of(
    st.sampled_from(["Angela", "Paris", ".", "AT&T", "été"]),
    st.text(alphabet="abcdefghij", min_size=1, max_size=40),  # unknown: one sub-token a letter
    st.text(min_size=1, max_size=5).filter(lambda s: not any(c.isspace() for c in s)),
)


@settings(max_examples=60, deadline=None)
@given(
    docs=st.lists(st.lists(WORD, max_size=120), min_size=1, max_size=3), stride=st.integers(0, 40)
)
def test_windows_property(tokenizer, docs: list[list[str]], stride: int) -> None:
    encoder = WindowEncoder(tokenizer, MAX_LENGTH, stride)
    check_windows(encoder, docs, encoder.encode(docs))
