"""Document context for sentence-level data: neighbouring sentences around a target.

`/predict` and bulk jobs tag whole texts, so a word there sees its document around
it. CoNLL-style data comes as sentences, but it keeps its documents (`-DOCSTART-`)
and order, and the reader links each sentence to its neighbours (`Sentence.before`,
`Sentence.after`). Training and sentence-level evaluation can then give the encoder
the same kind of input the service gives it: the target sentence with the words of
the sentences around it, up to a window of `length` sub-tokens, nearest words first
and about half on each side (FLERT, Schweter & Akbik 2020). Only the target's words
are labelled in training (context words get -100) and only they are read back in
evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .word_tokenizer import WordTokenizer

if TYPE_CHECKING:
    from .formats import Sentence


@dataclass
class Context:
    left: list[str]  # words before the target, in text order
    right: list[str]  # words after it

    @property
    def offset(self) -> int:
        return len(self.left)


NO_CONTEXT = Context([], [])
CONTEXT_MODES = ("around", "packed")


def subtoken_counter(tokenizer: Any) -> Callable[[Sequence[Sequence[str]]], list[list[int]]]:
    """A function: word lists → number of sub-tokens of each word (0 for dropped words).
    `tokenizer`: a Hugging Face fast tokenizer or a `WordTokenizer`."""

    words_tokenizer = WordTokenizer.of(tokenizer)

    def count(word_lists: Sequence[Sequence[str]]) -> list[list[int]]:
        out = []
        for words, enc in zip(word_lists, words_tokenizer.encode(word_lists), strict=True):
            counts = [0] * len(words)
            for w in enc.word_ids:
                if w is not None:
                    counts[w] += 1
            out.append(counts)
        return out

    return count


def _side(
    start: Sentence | None,
    forward: bool,
    budget: int,
    counts: Callable[[Sentence], list[int]],
) -> tuple[list[str], int]:
    """Words nearest the target on one side, at most `budget` sub-tokens; and their cost."""
    words: list[str] = []
    used = 0
    sentence = start
    while sentence is not None and used < budget:
        tokens = sentence.tokens
        sizes = counts(sentence)
        order = range(len(tokens)) if forward else range(len(tokens) - 1, -1, -1)
        for i in order:
            if used + sizes[i] > budget:
                sentence = None
                break
            words.append(tokens[i])
            used += sizes[i]
        else:
            sentence = sentence.after if forward else sentence.before
    return (words if forward else words[::-1]), used


def document_contexts(
    sentences: Sequence[Sentence],
    count: Callable[[Sequence[Sequence[str]]], list[list[int]]],
    content: int,
) -> list[Context]:
    """The context of each sentence so that target + context fit `content` sub-tokens
    (the window less its special tokens). Sentences without neighbours, or too long
    to leave room, get none."""
    cache: dict[int, list[int]] = {}

    def counts(sentence: Sentence) -> list[int]:
        key = id(sentence)
        if key not in cache:
            cache[key] = count([sentence.tokens])[0]
        return cache[key]

    # Count every target (and so most neighbours) in one batched tokenizer call.
    for sentence, sizes in zip(sentences, count([s.tokens for s in sentences]), strict=True):
        cache[id(sentence)] = sizes
    out = []
    for sentence in sentences:
        room = content - sum(counts(sentence))
        if room <= 0 or (sentence.before is None and sentence.after is None):
            out.append(NO_CONTEXT)
            continue
        # Half each side; what one side cannot use (start or end of a document) goes to
        # the other.
        left, used_left = _side(sentence.before, False, room // 2, counts)
        right, used_right = _side(sentence.after, True, room - used_left, counts)
        if used_left + used_right < room and sentence.before is not None:
            left, _ = _side(sentence.before, False, room - used_right, counts)
        out.append(Context(left, right))
    return out


# ---------------------------------------------------------------- packed documents
#
# The cheaper way to the same end: instead of one window per sentence with its
# neighbours around it (which encodes every word once as a target and many times as
# context: ~3x the compute of bare sentences at 64 sub-tokens, ~6x at 128), cut each
# document into windows of `context_length` sub-tokens and label every word, once,
# in the window where it sits nearest the middle (`WindowEncoder`'s ownership). Words
# then have context on both sides at about 1.3x the compute. It is also exactly what
# `/predict` does with a long text.


def document_runs(sentences: Sequence[Sentence]) -> list[list[int]]:
    """Indices of `sentences` grouped into runs of consecutive sentences of one document
    (a run breaks wherever a sentence's `before` is not the one listed before it)."""
    runs: list[list[int]] = []
    for i, sentence in enumerate(sentences):
        if runs and i > 0 and sentence.before is sentences[i - 1]:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def join_run(sentences: Sequence[Sentence]) -> tuple[str, list[tuple[int, int]]]:
    """One text for a run of sentences (joined by newlines) and its words' spans in it."""
    parts: list[str] = []
    words: list[tuple[int, int]] = []
    offset = 0
    for sentence in sentences:
        words.extend((a + offset, b + offset) for a, b in sentence.words)
        parts.append(sentence.text)
        offset += len(sentence.text) + 1
    return "\n".join(parts), words
