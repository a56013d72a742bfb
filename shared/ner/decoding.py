"""Word labels from per-word label probabilities: argmax, or BIO-constrained Viterbi
with or without a CRF's learnt scores.

Argmax picks each word's label alone, so it can produce sequences no annotator
writes (`O I-PER`, `B-ORG I-LOC`); conlleval-style span decoding then turns a stray
`I-X` into an entity of its own or splits one in two. Viterbi picks the most
probable *valid* sequence under the model's own per-word probabilities — an
`I-X` only after `B-X` or `I-X`, never first — with no transition weights to learn.
With "crf" (the training default) the model was trained with a CRF (`crf.py`): Viterbi
adds its learnt start, transition and end scores (`ner_crf` in config.json) to the
grammar's, and so runs for every text; many texts are decoded together, a numpy step per
word position for a whole batch. All three are "decoding" options of `Predictor`
(`ner_decoding` in config.json).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

DECODINGS = ("viterbi", "argmax", "crf")
_FLOOR = 1e-12  # log of a zero probability, kept finite so every row has a best path
# Word positions (texts × the longest's words) that `Decoder.many` decodes together.
_BATCH_WORDS = 4096


def allowed_transitions(labels: Mapping[int, str]) -> tuple[np.ndarray, np.ndarray]:
    """(start[L], transition[L, L]) masks of the IOB2 grammar over label ids 0..L-1."""
    n = len(labels)
    names = [labels[i] for i in range(n)]
    start = np.array([not name.startswith("I-") for name in names])
    transition = np.ones((n, n), dtype=bool)
    for j, name in enumerate(names):
        if name.startswith("I-"):
            kind = name[2:]
            transition[:, j] = [prev in (f"B-{kind}", f"I-{kind}") for prev in names]
    return start, transition


class Decoder:
    """Turns a (words × labels) probability matrix into one label id per word."""

    def __init__(
        self,
        labels: Mapping[int, str],
        method: str = "viterbi",
        crf: Mapping[str, Any] | None = None,
    ) -> None:
        """`crf`: the learnt scores (`ner_crf` of config.json), used with method "crf"."""
        if method not in DECODINGS:
            raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}, not {method!r}")
        self.method = method
        start, transition = allowed_transitions(labels)
        # Additive log-space penalties: 0 where allowed, -inf where the grammar forbids.
        self.grammar_start = np.where(start, 0.0, -np.inf)
        self.grammar_transition = np.where(transition, 0.0, -np.inf)
        self.start, self.transition = self.grammar_start, self.grammar_transition
        self.end = np.zeros(len(labels))
        if method == "crf" and crf is not None:
            n = len(labels)
            learnt = {
                k: np.asarray(crf[k], dtype=np.float64) for k in ("start", "end", "transitions")
            }
            if learnt["start"].shape != (n,) or learnt["transitions"].shape != (n, n):
                raise ValueError(f"ner_crf scores do not fit the model's {n} labels")
            self.start = self.grammar_start + learnt["start"]
            self.transition = self.grammar_transition + learnt["transitions"]
            self.end = learnt["end"]

    def __call__(self, probs: np.ndarray) -> list[int]:
        return self.many([probs])[0]

    def many(self, matrices: Sequence[np.ndarray]) -> list[list[int]]:
        """One label id per word of every (words × labels) matrix, as `__call__` gives."""
        best = [m.argmax(-1) for m in matrices]
        out: list[list[int]] = [ids.tolist() for ids in best]
        if self.method == "argmax":
            return out
        # When the word-by-word best labels already form a valid sequence, they are also
        # the best valid sequence: without learnt scores Viterbi runs only for the (few)
        # texts where they don't; with a CRF's scores, for every text.
        todo = [
            i
            for i, ids in enumerate(best)
            if len(ids) and (self.method == "crf" or not self.valid(ids))
        ]
        for batch in _batches(sorted(todo, key=lambda i: len(matrices[i])), matrices):
            # log p differs from the logits by a constant per word: the same best path.
            logps = [np.log(np.maximum(matrices[i], _FLOOR)) for i in batch]
            for i, path in zip(batch, self.viterbi(logps), strict=True):
                out[i] = path
        return out

    def valid(self, ids: np.ndarray) -> bool:
        return bool(
            self.grammar_start[ids[0]] == 0
            and (self.grammar_transition[ids[:-1], ids[1:]] == 0).all()
        )

    def viterbi(self, logps: Sequence[np.ndarray]) -> list[list[int]]:
        """The best valid path of each (words × labels) log-probability matrix (none
        empty), several texts at once: one numpy step per word position for the whole
        batch, which costs about what one text's step costs. The texts are aligned at
        their ends, so every path is traced back from the same last position; a text
        that starts later begins its scores at its first word."""
        lengths = np.array([len(x) for x in logps])
        n, steps, n_labels = len(logps), int(lengths.max()), logps[0].shape[1]
        first = steps - lengths  # the position of each text's first word
        emissions = np.zeros((n, steps, n_labels))
        for b, logp in enumerate(logps):
            emissions[b, first[b] :] = logp
        score = self.start + emissions[:, 0]
        back = np.zeros((n, steps, n_labels), dtype=np.int64)
        last_first = int(first.max())
        for t in range(1, steps):
            # candidates[b, i, j]: text b's best path ending in i, then label j.
            candidates = score[:, :, None] + self.transition
            back[:, t] = candidates.argmax(1)
            score = candidates.max(1) + emissions[:, t]
            if t <= last_first:  # texts starting here begin afresh
                starting = np.equal(first, t)[:, None]
                score = np.where(starting, self.start + emissions[:, t], score)
        rows = np.arange(n)
        paths = np.zeros((n, steps), dtype=np.int64)
        label = paths[:, -1] = (score + self.end).argmax(1)
        for t in range(steps - 1, 0, -1):
            label = paths[:, t - 1] = back[rows, t, label]
        return [paths[b, first[b] :].tolist() for b in range(n)]


def _batches(order: list[int], matrices: Sequence[np.ndarray]) -> list[list[int]]:
    """`order` (indices by rising length) cut into batches of texts of similar length, each
    holding at most `_BATCH_WORDS` padded word positions (a long text goes alone): little
    padding, and memory bounded whatever the number and length of the texts."""
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * len(matrices[i]) <= _BATCH_WORDS:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches
