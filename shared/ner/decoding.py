"""Word labels from per-word label probabilities: argmax, or BIO-constrained Viterbi.

Argmax picks each word's label alone, so it can produce sequences no annotator
writes (`O I-PER`, `B-ORG I-LOC`); conlleval-style span decoding then turns a stray
`I-X` into an entity of its own or splits one in two. Viterbi picks the most
probable *valid* sequence under the model's own per-word probabilities — an
`I-X` only after `B-X` or `I-X`, never first — with no transition weights to learn
(no CRF training). Both are "decoding" options of `Predictor` (`ner_decoding` in
config.json).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

DECODINGS = ("viterbi", "argmax")
_FLOOR = 1e-12  # log of a zero probability, kept finite so every row has a best path


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

    def __init__(self, labels: Mapping[int, str], method: str = "viterbi") -> None:
        if method not in DECODINGS:
            raise ValueError(f"decoding must be one of {', '.join(DECODINGS)}, not {method!r}")
        self.method = method
        start, transition = allowed_transitions(labels)
        # Additive log-space penalties: 0 where allowed, -inf where the grammar forbids.
        self.start = np.where(start, 0.0, -np.inf)
        self.transition = np.where(transition, 0.0, -np.inf)

    def __call__(self, probs: np.ndarray) -> list[int]:
        if len(probs) == 0:
            return []
        best = probs.argmax(-1)
        # When the word-by-word best labels already form a valid sequence, they are also
        # the best valid sequence: Viterbi runs only for the (few) texts where they don't.
        if self.method == "argmax" or self.valid(best):
            return best.tolist()
        return self.viterbi(np.log(np.maximum(probs, _FLOOR)))

    def valid(self, ids: np.ndarray) -> bool:
        return bool(self.start[ids[0]] == 0 and (self.transition[ids[:-1], ids[1:]] == 0).all())

    def viterbi(self, logp: np.ndarray) -> list[int]:
        n = len(logp)
        score = self.start + logp[0]
        back = np.zeros((n, logp.shape[1]), dtype=np.int64)
        for t in range(1, n):
            # candidates[i, j]: best path ending in i, then label j.
            candidates = score[:, None] + self.transition
            back[t] = candidates.argmax(0)
            score = candidates.max(0) + logp[t]
        path = [int(score.argmax())]
        for t in range(n - 1, 0, -1):
            path.append(int(back[t, path[-1]]))
        return path[::-1]
