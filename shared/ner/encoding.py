"""Words → sub-token windows, for training and inference alike.

A sentence or document is tokenized once (the Rust tokenizer on pre-split words,
`word_tokenizer.py`),
then cut into windows that fit the encoder, overlapping by `stride` sub-tokens.
Each word is *owned* by exactly one window — the one where its first sub-token
sits nearest the middle — so training labels it once and inference reads its
prediction from the window with the most context on both sides. Nothing is
truncated: a text of any length becomes as many windows as it needs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .word_tokenizer import WordTokenizer

IGNORE = -100  # the label index torch's cross-entropy skips


@dataclass
class Window:
    doc: int  # which input this window belongs to
    input_ids: list[int]
    words: list[int]  # word index per position (-1: special token)
    owned: list[int]  # positions of owned first sub-tokens, in word order
    labels: list[int] | None = None


class WindowEncoder:
    def __init__(self, tokenizer: Any, max_length: int, stride: int) -> None:
        """`tokenizer`: a Hugging Face fast tokenizer or a `WordTokenizer`."""
        self.tokenizer = WordTokenizer.of(tokenizer)
        # The special tokens the tokenizer wraps a sequence in ([CLS] … [SEP], <s> … </s>):
        # read off one probe word, since v5's generic tokenizers have no
        # build_inputs_with_special_tokens.
        bare = self.tokenizer.encode([["a"]], add_special_tokens=False)[0].ids
        full = self.tokenizer.encode([["a"]], add_special_tokens=True)[0].ids
        self.prefix = next(i for i in range(len(full)) if full[i : i + len(bare)] == bare)
        self.head_ids = full[: self.prefix]
        self.tail_ids = full[self.prefix + len(bare) :]
        self.n_special = len(self.head_ids) + len(self.tail_ids)
        self.content = max_length - self.n_special
        if self.content < 8:
            raise ValueError(f"max_length {max_length} leaves no room for text")
        self.stride = max(0, min(stride, self.content // 2))

    def _spans(self, starts: list[bool], n: int) -> list[tuple[int, int]]:
        """Window bounds over n sub-tokens, cut where a word starts when possible."""
        if n <= self.content:
            return [(0, n)]
        spans = []
        s = 0
        while True:
            e = min(s + self.content, n)
            if e < n:
                cut = e
                while cut > s + self.stride + 1 and not starts[cut]:
                    cut -= 1
                e = cut if starts[cut] else e
            spans.append((s, e))
            if e >= n:
                return spans
            nxt = max(e - self.stride, s + 1)
            while nxt < e and not starts[nxt]:
                nxt += 1
            s = nxt if nxt < e else e

    def encode(
        self,
        words: Sequence[Sequence[str]],
        tags: Sequence[Sequence[int]] | None = None,
        continuation: Sequence[int] | None = None,
    ) -> list[Window]:
        """Windows for each word list. With `tags` (label ids per word), windows carry labels:
        the first sub-token of an owned word gets its tag, later sub-tokens get
        `continuation[tag]` (B-X → I-X), context-only positions get IGNORE, and so do the
        words whose tag is IGNORE (document context around a target sentence)."""
        if not words:
            return []
        encodings = self.tokenizer.encode(words)
        windows: list[Window] = []
        for doc, enc in enumerate(encodings):
            ids: list[int] = enc.ids
            wids: list[int | None] = enc.word_ids
            n = len(ids)
            if n == 0:  # no words, or only words the tokenizer drops (zero-width marks)
                continue
            starts = [i == 0 or wids[i] != wids[i - 1] for i in range(n)] + [True]
            spans = self._spans(starts, n)
            # Ownership boundaries: the middle of each overlap, moved to a word start.
            cuts = [0]
            for (_, e0), (s1, _) in itertools.pairwise(spans):
                mid = (s1 + e0) // 2
                while mid < e0 and not starts[mid]:
                    mid += 1
                cuts.append(mid)
            cuts.append(n)
            for k, (s, e) in enumerate(spans):
                own_lo, own_hi = cuts[k], cuts[k + 1]
                body = ids[s:e]
                full = self.head_ids + body + self.tail_ids
                word_of = [-1] * len(full)
                owned: list[int] = []
                labels = [IGNORE] * len(full) if tags is not None else None
                for j in range(s, e):
                    pos = j - s + self.prefix
                    w = wids[j]
                    assert w is not None
                    word_of[pos] = w
                    if not own_lo <= j < own_hi:
                        continue
                    if starts[j]:
                        owned.append(pos)
                    if labels is not None and tags is not None:
                        tag = tags[doc][w]
                        # IGNORE marks a context word (a neighbouring sentence): seen, not learnt.
                        labels[pos] = (
                            tag
                            if starts[j] or continuation is None or tag == IGNORE
                            else continuation[tag]
                        )
                windows.append(Window(doc, full, word_of, owned, labels))
        return windows
