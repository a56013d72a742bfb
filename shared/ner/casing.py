"""Word shape as token-type ids: casing given back to an uncased encoder.

The packaged MiniLM lower-cases its input, so "Bush" and "bush", "US" and "us"
look the same to it, though capitals are the strongest clue to a name in English
news. Each word gets one of `N_SHAPES` shape classes, and every sub-token of the
word carries it as its `token_type_id`. BERT-style encoders already add a learned
token-type embedding to every input; training widens that table from its usual 2
rows to `N_SHAPES` (new rows start as a copy of row 0, so the untrained model is
the base model) and the encoder learns what each shape means.

The saved model stays a plain Hugging Face directory: `config.json` records
`type_vocab_size` and `ner_casing`, `AutoModelForTokenClassification` loads it, and
`transformers.pipeline` runs it, but the pipeline sends type 0 ("no shape") for
every token, so it sees no casing and scores lower: our `Predictor`, which reads
`ner_casing`, is needed for full accuracy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# The scheme's name, stored in config.json as `ner_casing`; a later scheme gets a new name.
SCHEME = "shape6"

NONE, LOWER, TITLE, UPPER, MIXED, NUMBER = range(6)
N_SHAPES = 6
# 0 is what an encoder sees without our Predictor (pipeline, special tokens, padding):
# "no shape known". Words without letters or digits (punctuation) get it too.


def word_shape(word: str) -> int:
    """The shape class of one word: lower, Title, UPPER, mIxed, number, or none."""
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return NUMBER if any(c.isdigit() for c in word) else NONE
    upper = [c.isupper() for c in letters]
    if not any(upper):
        return LOWER
    if all(upper):
        # A single capital ("I", "A") says no more than a capitalised word.
        return UPPER if len(letters) > 1 else TITLE
    if upper[0] and not any(upper[1:]):
        return TITLE
    return MIXED


def token_type_ids(words: Sequence[str], word_of: Sequence[int]) -> list[int]:
    """The shape of each position's word (`word_of`: word index per position, -1 special)."""
    shapes = [word_shape(w) for w in words]
    return [shapes[w] if w >= 0 else NONE for w in word_of]


def _token_type_embeddings(model: Any) -> torch.nn.Embedding | None:
    # Imported here: tagging with an ONNX model (word_shape, token_type_ids) needs no torch.
    import torch

    embeddings = getattr(model.base_model, "embeddings", None)
    table = getattr(embeddings, "token_type_embeddings", None)
    return table if isinstance(table, torch.nn.Embedding) else None


def supports_casing(model: Any) -> bool:
    """True for encoders with a token-type embedding table (BERT, MiniLM, RoBERTa...)."""
    return _token_type_embeddings(model) is not None


def enable_casing(model: Any) -> bool:
    """Widen the token-type table to N_SHAPES rows and mark the config; False when the
    encoder has no such table (DistilBERT, MPNet), which then trains without casing."""
    table = _token_type_embeddings(model)
    if table is None:
        log.warning(
            "%s has no token-type embeddings: training without the casing feature",
            type(model).__name__,
        )
        return False
    if table.num_embeddings < N_SHAPES:
        import torch

        wider = torch.nn.Embedding(
            N_SHAPES, table.embedding_dim, device=table.weight.device, dtype=table.weight.dtype
        )
        with torch.no_grad():
            # Every shape starts as "type 0", the row the base model was trained with, so
            # fine-tuning begins from the unchanged encoder and learns the differences.
            wider.weight.copy_(table.weight[0].expand(N_SHAPES, -1))
        model.base_model.embeddings.token_type_embeddings = wider
        # BERT registers a zero `token_type_ids` buffer used when none is passed; it stays.
    model.config.type_vocab_size = max(N_SHAPES, table.num_embeddings)
    model.config.ner_casing = SCHEME
    return True


def uses_casing(model: Any) -> bool:
    """Whether a (loaded) model was trained with word shapes as token types."""
    scheme = getattr(model.config, "ner_casing", None)
    if scheme in (None, False, ""):
        return False
    if scheme != SCHEME:
        raise ValueError(f"unknown casing scheme {scheme!r} in config.json (expected {SCHEME})")
    return True
