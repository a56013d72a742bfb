"""Sub-tokens of words already split, from the model's Rust tokenizer (`tokenizers`).

Windows (`encoding.py`) and context lengths (`context.py`) need one thing of a tokenizer:
the sub-token ids of pre-split words, with the word each belongs to. A Hugging Face fast
tokenizer answers that by calling its Rust tokenizer's `encode_batch(...,
is_pretokenized=True)` with truncation and padding off; `WordTokenizer` makes that same
call itself. Training wraps the Hugging Face tokenizer it already has (`of`); serving an
ONNX model loads the Rust tokenizer straight from `tokenizer.json` (`load`): importing
transformers' tokenizers imports torch as well, 2 s of start-up and ~100 MB that ONNX
serving has no other use for. Whether the file alone tokenizes as transformers does is
checked when the model is exported (`matches`), on its validation sentences, and recorded
in `onnx/serving.json`; a model where it does not is served with transformers' tokenizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import Encoding, Tokenizer

from .onnx_model import read_json

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"


class WordTokenizer:
    """A Rust tokenizer called on word lists, with the two settings windows need
    (`model_max_length` 0: the tokenizer sets no limit)."""

    def __init__(
        self, backend: Tokenizer, *, pad_token_id: int | None, model_max_length: int | None
    ) -> None:
        self.backend = backend
        self.pad_token_id = pad_token_id
        # Tokenizers with no limit report a huge number (transformers) or none at all.
        limit = model_max_length or 0
        self.model_max_length = limit if 0 < limit < 100_000 else 0

    @classmethod
    def of(cls, tokenizer: Any) -> WordTokenizer:
        """A `WordTokenizer` as given, or one over a Hugging Face fast tokenizer's backend."""
        if isinstance(tokenizer, WordTokenizer):
            return tokenizer
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError(
                "the tokenizer must be a fast (Rust) tokenizer: word alignment needs it"
            )
        return cls(
            tokenizer.backend_tokenizer,
            pad_token_id=tokenizer.pad_token_id,
            model_max_length=getattr(tokenizer, "model_max_length", None),
        )

    @classmethod
    def load(cls, model_dir: str | Path) -> WordTokenizer | None:
        """The tokenizer saved with a model, without transformers; None if it has no
        `tokenizer.json`."""
        model_dir = Path(model_dir)
        path, config_file = model_dir / TOKENIZER_FILE, model_dir / TOKENIZER_CONFIG
        if not path.is_file():
            return None
        read_json(path)  # a damaged file is named, not only in the Rust parser's words
        backend = Tokenizer.from_file(str(path))
        config = read_json(config_file) if config_file.is_file() else {}
        pad = config.get("pad_token")
        if isinstance(pad, dict):  # an AddedToken written out in full
            pad = pad.get("content")
        max_length = config.get("model_max_length")
        return cls(
            backend,
            pad_token_id=backend.token_to_id(pad) if isinstance(pad, str) else None,
            model_max_length=int(max_length) if isinstance(max_length, int | float) else None,
        )

    def encode(
        self, word_lists: Sequence[Sequence[str]], *, add_special_tokens: bool = False
    ) -> list[Encoding]:
        """One `Encoding` (`.ids`, `.word_ids`) per word list, nothing truncated or padded."""
        if not word_lists:
            return []
        # A Hugging Face tokenizer sets these on its backend for every call; a call of ours
        # on a shared backend must not inherit what its last call left.
        if self.backend.truncation is not None:
            self.backend.no_truncation()
        if self.backend.padding is not None:
            self.backend.no_padding()
        return self.backend.encode_batch(
            [list(w) for w in word_lists],
            is_pretokenized=True,
            add_special_tokens=add_special_tokens,
        )

    def matches(self, reference: Any, word_lists: Sequence[Sequence[str]]) -> bool:
        """True when this tokenizer gives `reference` (a Hugging Face tokenizer) the same
        sub-tokens, words and special tokens for every word list, and the same settings."""
        theirs = WordTokenizer.of(reference)
        if (self.pad_token_id, self.model_max_length) != (
            theirs.pad_token_id,
            theirs.model_max_length,
        ):
            return False
        lists = [list(w) for w in word_lists if w] or [["a"]]
        for special in (False, True):
            hf = reference(lists, is_split_into_words=True, add_special_tokens=special)
            mine = self.encode(lists, add_special_tokens=special)
            for i, enc in enumerate(mine):
                if enc.ids != hf["input_ids"][i] or enc.word_ids != hf.word_ids(i):
                    return False
        return True
