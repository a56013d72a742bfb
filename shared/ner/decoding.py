"""Word labels from per-word label probabilities: argmax, or BIO-constrained Viterbi.

Argmax picks each word's label alone, so it can produce sequences no annotator
writes (`O I-PER`, `B-ORG I-LOC`); conlleval-style span decoding then turns a stray
`I-X` into an entity of its own or splits one in two. Viterbi picks the most
probable *valid* sequence under the model's own per-word probabilities — an
`I-X` only after `B-X` or `I-X`, never first — with no transition weights to learn.
With "crf" the model was trained with a CRF (`crf.py`): Viterbi adds its learnt start,
transition and end scores (`ner_crf` in config.json) to the grammar's. All three are
"decoding" options of `Predictor` (`ner_decoding` in config.json).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

DECODINGS = ("viterbi", "argmax", "crf")
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
        if len(probs) == 0:
            return []
        best = probs.argmax(-1)
        if self.method == "argmax":
            return best.tolist()
        # When the word-by-word best labels already form a valid sequence, they are also
        # the best valid sequence: without learnt scores Viterbi runs only for the (few)
        # texts where they don't.
        if self.method == "viterbi" and self.valid(best):
            return best.tolist()
        # log p differs from the logits by a constant per word: the same best path.
        return self.viterbi(np.log(np.maximum(probs, _FLOOR)))

    def valid(self, ids: np.ndarray) -> bool:
        return bool(
            self.grammar_start[ids[0]] == 0
            and (self.grammar_transition[ids[:-1], ids[1:]] == 0).all()
        )

    def viterbi(self, logp: np.ndarray) -> list[int]:
        n = len(logp)
        score = self.start + logp[0]
        back = np.zeros((n, logp.shape[1]), dtype=np.int64)
        for t in range(1, n):
            # candidates[i, j]: best path ending in i, then label j.
            candidates = score[:, None] + self.transition
            back[t] = candidates.argmax(0)
            score = candidates.max(0) + logp[t]
        score = score + self.end
        path = [int(score.argmax())]
        for t in range(n - 1, 0, -1):
            path.append(int(back[t, path[-1]]))
        return path[::-1]
