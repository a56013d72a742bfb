"""Raw text → entities with exact character offsets.

text → words with offsets (`words.split_words`) → sub-token windows with stride
(`encoding.WindowEncoder`) → length-sorted batches under `torch.inference_mode()`
→ per-word label and probability (first sub-token of each word, read from the
window that owns it) → BIO spans (`tags.tags_to_spans`) → entities whose offsets
are the words' own, so `text[start:end] == entity["text"]` holds by construction.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, PreTrainedModel

from .config import DEFAULT_STRIDE
from .encoding import WindowEncoder
from .runtime import autocast, pick_device, use_bf16
from .tags import tags_to_spans
from .words import split_words

Entity = dict[str, Any]
Words = Sequence[tuple[int, int]]

DEFAULT_MAX_LENGTH = 512


def window_length(model: PreTrainedModel, tokenizer: Any, cap: int = DEFAULT_MAX_LENGTH) -> int:
    limits = [cap, getattr(model.config, "max_position_embeddings", cap)]
    if 0 < getattr(tokenizer, "model_max_length", 0) < 100_000:
        limits.append(tokenizer.model_max_length)
    return min(limits)


class Predictor:
    """A token-classification model ready to tag text. Safe to share between threads."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: Any,
        *,
        device: str = "auto",
        precision: str = "auto",
        max_length: int | None = None,
        stride: int = DEFAULT_STRIDE,
        owns_model: bool = False,
    ) -> None:
        self.device = pick_device(device)
        self.model: Any = model.to(self.device).eval()  # type: ignore[arg-type]
        self.tokenizer = tokenizer
        self.bf16 = use_bf16(self.device, precision)
        # A model we own (loaded for serving) is cast to bf16 once: ~15% faster than
        # autocast, which re-casts every weight on every call. A model being trained
        # (validation during `train`) keeps fp32 weights and runs under autocast.
        self._autocast = self.bf16 and not owns_model
        if self.bf16 and owns_model:
            self.model.to(torch.bfloat16)
        self.id2label = {int(k): v for k, v in (model.config.id2label or {}).items()}
        self.outside_id = next((i for i, v in self.id2label.items() if v == "O"), 0)
        self.encoder = WindowEncoder(
            tokenizer, max_length or window_length(model, tokenizer), stride
        )
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        # Fast tokenizers are not safe to call from several threads at once.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model_dir: str | Path, **kwargs: Any) -> Predictor:
        model_dir = Path(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForTokenClassification.from_pretrained(model_dir)
        return cls(model, tokenizer, owns_model=True, **kwargs)

    @property
    def labels(self) -> list[str]:
        """The entity types the model knows (PER, ORG, ...)."""
        return sorted({v[2:] for v in self.id2label.values() if v != "O"})

    # ------------------------------------------------------------ public

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[list[Entity]]:
        """Entities for each text, as CONTRACT §3."""
        words = [split_words(t) for t in texts]
        tagged = self.tag_words(texts, words, batch_size)
        return [
            self.entities(text, w, tags, probs)
            for text, w, (tags, probs) in zip(texts, words, tagged, strict=True)
        ]

    def tag_words(
        self, texts: Sequence[str], words: Sequence[Words], batch_size: int = 64
    ) -> list[tuple[list[str], list[float]]]:
        """The predicted BIO tag and its probability for every word of every text."""
        tokens = [[t[a:b] for a, b in w] for t, w in zip(texts, words, strict=True)]
        with self._lock:
            windows = self.encoder.encode(tokens)
        # A word the tokenizer drops (no sub-token) is outside any entity.
        out_ids = [[self.outside_id] * len(w) for w in words]
        out_probs = [[1.0] * len(w) for w in words]
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids), reverse=True)
        for lo in range(0, len(order), batch_size):
            batch = [windows[i] for i in order[lo : lo + batch_size]]
            probs, ids = self._forward([w.input_ids for w in batch])
            for row, window in enumerate(batch):
                if not window.owned:
                    continue
                pos = torch.tensor(window.owned)
                word_idx = [window.words[p] for p in window.owned]
                for w, label_id, p in zip(
                    word_idx, ids[row, pos].tolist(), probs[row, pos].tolist(), strict=True
                ):
                    out_ids[window.doc][w] = label_id
                    out_probs[window.doc][w] = p
        return [
            ([self.id2label[i] for i in ids_], probs_)
            for ids_, probs_ in zip(out_ids, out_probs, strict=True)
        ]

    @staticmethod
    def entities(text: str, words: Words, tags: list[str], probs: list[float]) -> list[Entity]:
        out = []
        for first, last, kind in tags_to_spans(tags):
            start, end = words[first][0], words[last - 1][1]
            score = sum(probs[first:last]) / (last - first)
            out.append(
                {
                    "start": start,
                    "end": end,
                    "label": kind,
                    "text": text[start:end],
                    "score": round(score, 4),
                }
            )
        return out

    # ------------------------------------------------------------ model

    def _forward(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded batch → (max probability, argmax label) per position, on the CPU."""
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for i, s in enumerate(sequences):
            input_ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        with torch.inference_mode(), autocast(self.device, self._autocast):
            logits = self.model(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
            ).logits
        probs = logits.float().softmax(-1).max(-1)
        return probs.values.cpu(), probs.indices.cpu()
