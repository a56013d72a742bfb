"""A linear-chain CRF over words (`decoding="crf"`): label-to-label scores learnt with the
encoder, for the decoder to use.

Training adds the CRF's negative log-likelihood of each window's gold word labels (read at
the first sub-token of every labelled word, as decoding reads them) to the usual
cross-entropy over every sub-token, which keeps each sub-token's own logits meaningful
for `transformers.pipeline`. The likelihood is pytorch-crf's (`torchcrf.CRF`): the
forward algorithm is its job, not ours. Its own decoding is not used: serving runs on
ONNX Runtime without torch, and the IOB2 grammar must hold whatever the scores say, so
`decoding.Decoder` runs a numpy Viterbi over the learnt scores plus the grammar.

The scores are saved in config.json (`ner_crf`: start, end, transitions), not among the
weights: the saved directory stays a plain token-classification model that
`AutoModelForTokenClassification` and `pipeline` load without unexpected weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchcrf import CRF
from transformers import DataCollatorForTokenClassification

from .encoding import IGNORE

ATTRIBUTE = "ner_crf"  # the module on a model in training; its scores in config.json
WORD_STARTS = "word_starts"  # batch key: 1 at the first sub-token of each labelled word
# The scores start at zero and must travel further than the encoder's weights in the same
# steps: they learn at this rate (or the model's, if higher), as BERT-CRF taggers usually do.
LEARNING_RATE = 1e-2


class WordCRF(torch.nn.Module):
    def __init__(self, n_labels: int) -> None:
        super().__init__()
        self.crf = CRF(n_labels, batch_first=True)
        for scores in self.crf.parameters():
            torch.nn.init.zeros_(scores)  # no preference before the data has spoken

    def loss(
        self, logits: torch.Tensor, labels: torch.Tensor, starts: torch.Tensor
    ) -> torch.Tensor:
        """Mean negative log-likelihood per word of the gold word labels: (batch, positions,
        labels) logits, (batch, positions) labels and 0/1 word starts."""
        mask = starts.bool() & (labels != IGNORE)
        counts = mask.sum(1)
        rows = counts > 0
        if not rows.any():
            return logits.sum() * 0.0  # nothing to score: no gradient, no NaN
        mask, counts, logits, labels = mask[rows], counts[rows], logits[rows], labels[rows]
        # Pack each row's words to the left, in order (pytorch-crf's mask must be a prefix).
        width = int(counts.max())
        order = torch.argsort((~mask).to(torch.int8), dim=1, stable=True)[:, :width]
        emissions = logits.float().gather(1, order.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
        tags = labels.gather(1, order)
        packed = torch.arange(width, device=counts.device) < counts.unsqueeze(1)
        tags = torch.where(packed, tags, torch.zeros_like(tags))
        return -self.crf(emissions, tags, packed, reduction="sum") / counts.sum()

    def scores(self) -> dict[str, Any]:
        return {
            "start": self.crf.start_transitions.detach().float().cpu().tolist(),
            "end": self.crf.end_transitions.detach().float().cpu().tolist(),
            "transitions": self.crf.transitions.detach().float().cpu().tolist(),
        }


def attach(model: Any) -> None:
    """Give a model about to be trained its CRF: a module of the model, so its scores are in
    the model's state dict (checkpoints, the kept best weights, the moving average) and in
    `named_parameters` (the optimizer)."""
    setattr(model, ATTRIBUTE, WordCRF(model.config.num_labels).to(model.device))


def record(model: Any) -> None:
    """Write the model's current CRF scores into its config (what `Predictor` decodes with)."""
    crf = getattr(model, ATTRIBUTE, None)
    if isinstance(crf, WordCRF):
        setattr(model.config, ATTRIBUTE, crf.scores())


def detach(model: Any) -> None:
    """Before saving: the scores go to config.json, the module leaves the weights."""
    if isinstance(getattr(model, ATTRIBUTE, None), WordCRF):
        record(model)
        delattr(model, ATTRIBUTE)


def word_starts(length: int, owned: Sequence[int]) -> list[int]:
    """A window's word-start mask: its owned first sub-tokens (`WordCRF.loss` leaves out
    those labelled IGNORE, the context words)."""
    starts = [0] * length
    for pos in owned:
        starts[pos] = 1
    return starts


class Collator(DataCollatorForTokenClassification):
    """transformers' token-classification collator, also padding `word_starts` (its
    tokenizer.pad knows nothing of the key)."""

    def torch_call(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if WORD_STARTS not in features[0]:
            return super().torch_call(features)
        starts = [f[WORD_STARTS] for f in features]
        # Copies: the features are the dataset's own, read again every epoch.
        batch = super().torch_call(
            [{k: v for k, v in f.items() if k != WORD_STARTS} for f in features]
        )
        width = batch["input_ids"].shape[1]
        left = self.tokenizer.padding_side == "left"
        batch[WORD_STARTS] = torch.tensor(
            [[0] * (width - len(s)) + s if left else s + [0] * (width - len(s)) for s in starts]
        )
        return batch
