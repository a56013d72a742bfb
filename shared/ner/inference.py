"""Raw text → entities with exact character offsets.

text → words with offsets (`words.split_words`) → sub-token windows with stride
(`encoding.WindowEncoder`), with word shapes as token types when the model was
trained with them (`casing.py`) → length-sorted batches under
`torch.inference_mode()` → per-word label probabilities (first sub-token of each
word, read from the window that owns it) → one label per word (BIO-constrained
Viterbi or argmax, `decoding.py`) → BIO spans (`tags.tags_to_spans`) → entities
whose offsets are the words' own, so `text[start:end] == entity["text"]` holds by
construction.

What a model needs at inference is read from its config.json: `ner_casing`,
`ner_decoding`, `ner_context_length` (written by training).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .casing import token_type_ids, uses_casing
from .config import DEFAULT_STRIDE
from .context import NO_CONTEXT, Context, document_contexts, subtoken_counter
from .decoding import Decoder
from .encoding import WindowEncoder
from .onnx_model import OnnxModel, load_onnx, serving_report
from .runtime import autocast, device_name, pick_device, use_bf16
from .tags import tags_to_spans
from .word_tokenizer import WordTokenizer
from .words import split_words

if TYPE_CHECKING:
    # Typing only: torch and transformers' modelling code cost ~1.4 s of start-up and the
    # API ~120 MB, which a model served by ONNX Runtime never uses. The PyTorch paths
    # import torch where they run.
    import torch
    from transformers import PreTrainedModel

    from .formats import Sentence

Entity = dict[str, Any]
Words = Sequence[tuple[int, int]]
T = TypeVar("T")

DEFAULT_MAX_LENGTH = 512
# Padded sub-tokens in one forward pass. Attention memory grows with length squared: 64
# windows of 512 would need about 800 MB for one layer's attention scores, so long texts go
# through in smaller batches (no slower: the work per token is the same), and short ones
# still in batches of `batch_size`.
MAX_BATCH_TOKENS = 8192
# Viterbi needs no training, so it applies to models saved before `ner_decoding` existed.
DEFAULT_DECODING = "viterbi"
# Which runtime tags: ONNX Runtime where the model has a checked export (CPU), else PyTorch.
BACKENDS = ("auto", "onnx", "torch")


def window_length(model: Any, tokenizer: Any, cap: int = DEFAULT_MAX_LENGTH) -> int:
    limits = [cap, getattr(model.config, "max_position_embeddings", cap)]
    if limit := WordTokenizer.of(tokenizer).model_max_length:
        limits.append(limit)
    return min(limits)


class NoOnnxExport(ValueError):
    """`backend="onnx"` asked of a model with no checked export for that run."""


class Predictor:
    """A token-classification model ready to tag text. Safe to share between threads."""

    def __init__(
        self,
        model: PreTrainedModel | OnnxModel,
        tokenizer: Any,
        *,
        device: str = "auto",
        precision: str = "auto",
        max_length: int | None = None,
        stride: int = DEFAULT_STRIDE,
        decoding: str | None = None,
        owns_model: bool = False,
    ) -> None:
        self.tokenizer = tokenizer
        self.onnx = isinstance(model, OnnxModel)
        # How windows are run: in padded batches each using every core, or (an int8 graph,
        # `OnnxModel.batchable`) one window per run, `parallel` runs side by side.
        self._batchable, self._parallel = True, 1
        self.device: torch.device | str
        if isinstance(model, OnnxModel):
            self.device = "cpu"  # ONNX Runtime's CPU provider; no torch device involved
            self.model: Any = model
            self.bf16 = self._autocast = False
            self.backend = model.backend
            self._batchable, self._parallel = model.batchable, model.parallel
        else:
            self.device = pick_device(device)
            self.model = model.to(self.device).eval()  # type: ignore[arg-type]
            self.bf16 = use_bf16(self.device, precision)
            # A model we own (loaded for serving) is cast to bf16 once: ~15% faster than
            # autocast, which re-casts every weight on every call. A model being trained
            # (validation during `train`) keeps fp32 weights and runs under autocast.
            self._autocast = self.bf16 and not owns_model
            if self.bf16 and owns_model:
                import torch

                self.model.to(torch.bfloat16)
            self.backend = f"torch-{'bf16' if self.bf16 else 'fp32'}"
        self.id2label = {int(k): v for k, v in (model.config.id2label or {}).items()}
        self.outside_id = next((i for i, v in self.id2label.items() if v == "O"), 0)
        # Sentence-level evaluation gives each sentence this many sub-tokens of document
        # context, as in training (0: none); a text given to `predict` is its own context.
        self.context_length = int(getattr(model.config, "ner_context_length", 0) or 0)
        self.context_mode = getattr(model.config, "ner_context_mode", None) or "around"
        if max_length is None and self.context_length and self.context_mode == "packed":
            # Trained on documents cut into windows of this length: predict in the same.
            max_length = self.context_length
        words_tokenizer = WordTokenizer.of(tokenizer)  # what the encoder and counter call
        self.encoder = WindowEncoder(
            words_tokenizer, max_length or window_length(model, words_tokenizer), stride
        )
        pad_id = self.encoder.tokenizer.pad_token_id
        self.pad_id = pad_id if pad_id is not None else 0
        self.casing = uses_casing(model)
        self.decoder = Decoder(
            self.id2label,
            decoding or getattr(model.config, "ner_decoding", None) or DEFAULT_DECODING,
            getattr(model.config, "ner_crf", None),
        )
        self._count = subtoken_counter(words_tokenizer)
        # Fast tokenizers are not safe to call from several threads at once.
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        backend: str = "auto",
        device: str = "auto",
        precision: str = "auto",
        **kwargs: Any,
    ) -> Predictor:
        """A saved model ready to tag. On a CPU, `auto` serves the ONNX export the model
        was saved with where it passed its parity checks (`onnx_export.py`: int8 where
        that kept F1, else fp32; `precision` "fp32" or "int8" asks for one), else
        PyTorch; `bf16` and GPUs are PyTorch's. `backend` "torch" or "onnx" insists."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        model_dir = Path(model_dir)
        onnx_possible = device_name(device) == "cpu" and precision != "bf16"
        if backend != "torch" and onnx_possible:
            onnx = load_onnx(model_dir, precision if precision in ("fp32", "int8") else None)
            if onnx is not None:
                # Without transformers (and so torch) where the export checked that the
                # tokenizer file alone tokenizes as transformers does.
                light = WordTokenizer.load(model_dir) if onnx.tokenizer_checked else None
                return cls(onnx, light or _hf_tokenizer(model_dir), **kwargs)
        if backend == "onnx" or precision == "int8":
            if not onnx_possible:
                why = "ONNX serving is for the CPU in fp32 or int8"
            elif serving_report(model_dir) is None:
                why = "it has no ONNX export (saved before exports, or with --onnx false)"
            else:
                why = (
                    "no ONNX variant for this precision that this CPU runs as checked passed "
                    "its checks (onnx/serving.json)"
                )
            raise NoOnnxExport(f"{model_dir}: {why}")
        from transformers import AutoModelForTokenClassification

        model = AutoModelForTokenClassification.from_pretrained(model_dir)
        return cls(
            model,
            _hf_tokenizer(model_dir),
            device=device,
            precision=precision,
            owns_model=True,
            **kwargs,
        )

    @property
    def labels(self) -> list[str]:
        """The entity types the model knows (PER, ORG, ...)."""
        return sorted({v[2:] for v in self.id2label.values() if v != "O"})

    # ------------------------------------------------------------ public

    def predict(self, texts: Sequence[str], batch_size: int = 64) -> list[list[Entity]]:
        """Entities for each text, as CONTRACT §3."""

        def run(indices: list[int], pool: ThreadPoolExecutor | None) -> list[list[Entity]]:
            part = [texts[i] for i in indices]
            words = [split_words(t) for t in part]
            tagged = self._tag(part, words, batch_size, [NO_CONTEXT] * len(part), pool)
            return [
                self.entities(text, w, tags, probs)
                for text, w, (tags, probs) in zip(part, words, tagged, strict=True)
            ]

        return self._in_shares([len(t) for t in texts], run)

    def tag_words(
        self,
        texts: Sequence[str],
        words: Sequence[Words],
        batch_size: int = 64,
        contexts: Sequence[Context] | None = None,
    ) -> list[tuple[list[str], list[float]]]:
        """The predicted BIO tag and its probability for every word of every text.

        `contexts` (one per text) adds words around a text that the encoder sees but
        that get no tag (sentence-level evaluation with document context)."""
        ctx = list(contexts) if contexts is not None else [NO_CONTEXT] * len(texts)

        def run(
            indices: list[int], pool: ThreadPoolExecutor | None
        ) -> list[tuple[list[str], list[float]]]:
            return self._tag(
                [texts[i] for i in indices],
                [words[i] for i in indices],
                batch_size,
                [ctx[i] for i in indices],
                pool,
            )

        return self._in_shares([len(t) for t in texts], run)

    def _in_shares(
        self,
        lengths: Sequence[int],
        run: Callable[[list[int], ThreadPoolExecutor | None], list[T]],
    ) -> list[T]:
        """`run(indices, pool)` over every text (`lengths`: their lengths), results in order.

        Many texts, a model run one window at a time: each thread takes a share of the
        texts through the whole way (splitting, encoding, its windows, decoding, entities),
        so the cores stay busy with the model while the other thread does its Python work
        (windows handed out one by one, or words split before and entities built after
        in the caller's thread, leave both idle meanwhile). Every `parallel`-th text by
        length, so the shares take the same time. Otherwise `run` gets every text and the
        pool, if any, to run its windows side by side."""
        everything = list(range(len(lengths)))
        pool = self._pool()
        if pool is None or len(lengths) < 2 * self._parallel:
            return run(everything, pool)
        order = sorted(everything, key=lambda i: lengths[i])
        shares = [order[k :: self._parallel] for k in range(self._parallel)]
        out: list[T | None] = [None] * len(lengths)
        # pool=None: each thread runs its share's windows itself.
        for share, results in zip(shares, pool.map(lambda s: run(s, None), shares), strict=True):
            for i, result in zip(share, results, strict=True):
                out[i] = result
        return out  # type: ignore[return-value]  # every index is in one share

    def _tag(
        self,
        texts: Sequence[str],
        words: Sequence[Words],
        batch_size: int,
        ctx: Sequence[Context],
        pool: ThreadPoolExecutor | None,
    ) -> list[tuple[list[str], list[float]]]:
        """`tag_words` in this thread; `pool` runs the windows side by side, if given."""
        tokens = [[t[a:b] for a, b in w] for t, w in zip(texts, words, strict=True)]
        inputs = [c.left + own + c.right for own, c in zip(tokens, ctx, strict=True)]
        with self._lock:
            windows = self.encoder.encode(inputs)
        # A word the tokenizer drops (no sub-token) is outside any entity.
        n_labels = len(self.id2label)
        out = [np.zeros((len(w), n_labels), dtype=np.float32) for w in words]
        for matrix in out:
            matrix[:, self.outside_id] = 1.0
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].input_ids), reverse=True)
        if not self._batchable:
            batch_size = 1

        def run(batch: list[Any]) -> tuple[list[Any], np.ndarray]:
            types = [token_type_ids(inputs[w.doc], w.words) for w in batch] if self.casing else None
            return batch, self._forward([w.input_ids for w in batch], types)

        batches = list(_token_bounded_batches([windows[i] for i in order], batch_size))
        # One batch (a quick /predict) runs in this thread: no hand-off to the pool.
        if len(batches) < 2:
            pool = None
        for batch, probs in pool.map(run, batches) if pool else map(run, batches):
            for row, window in enumerate(batch):
                offset, n = ctx[window.doc].offset, len(words[window.doc])
                keep = [
                    (p, window.words[p] - offset)
                    for p in window.owned
                    if 0 <= window.words[p] - offset < n
                ]
                if keep:
                    positions, targets = zip(*keep, strict=True)
                    out[window.doc][list(targets)] = probs[row, list(positions)]
        tagged = []
        for matrix, ids in zip(out, self.decoder.many(out), strict=True):
            tagged.append(
                (
                    [self.id2label[i] for i in ids],
                    matrix[np.arange(len(ids)), ids].tolist() if ids else [],
                )
            )
        return tagged

    def sentence_contexts(self, sentences: Sequence[Sentence]) -> list[Context] | None:
        """Document context for sentences read from a file, as the model was trained with
        (None when it was trained on sentences alone)."""
        if not self.context_length or self.context_mode != "around":
            return None
        content = min(self.context_length, self.encoder.content + self.encoder.n_special)
        with self._lock:
            return document_contexts(sentences, self._count, content - self.encoder.n_special)

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

    def _pool(self) -> ThreadPoolExecutor | None:
        """Threads that run windows side by side, for a model run one window at a time
        on one core each (an int8 graph); None: batches run in turn, each using every core."""
        if self._parallel <= 1:
            return None
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._parallel, thread_name_prefix="ner-onnx")
            return self._executor

    def _forward(
        self, sequences: list[list[int]], types: list[list[int]] | None = None
    ) -> np.ndarray:
        """Padded batch → label probabilities per position (batch × length × labels)."""
        width = max(len(s) for s in sequences)
        input_ids = np.full((len(sequences), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(sequences), width), dtype=np.int64)
        type_ids = np.zeros((len(sequences), width), dtype=np.int64)
        for i, s in enumerate(sequences):
            input_ids[i, : len(s)] = s
            mask[i, : len(s)] = 1
            if types is not None:
                type_ids[i, : len(s)] = types[i]
        inputs = {"input_ids": input_ids, "attention_mask": mask}
        if types is not None or self.onnx:
            # An ONNX graph takes the inputs it was exported with (token types included).
            inputs["token_type_ids"] = type_ids
        if self.onnx:
            logits = self.model(inputs)
            exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
            return exp / exp.sum(axis=-1, keepdims=True)
        import torch

        assert not isinstance(self.device, str)  # a PyTorch model has its torch device
        with torch.inference_mode(), autocast(self.device, self._autocast):
            out = self.model(
                **{k: torch.from_numpy(v).to(self.device) for k, v in inputs.items()}
            ).logits
        return out.float().softmax(-1).cpu().numpy()


def _hf_tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def _token_bounded_batches(windows: Sequence[Any], batch_size: int) -> Iterator[list[Any]]:
    """Windows (longest first) in batches of at most `batch_size` windows and at most
    MAX_BATCH_TOKENS padded sub-tokens (at least one window each)."""
    batch: list[Any] = []
    for window in windows:
        longest = len(batch[0].input_ids) if batch else len(window.input_ids)
        if batch and (len(batch) >= batch_size or (len(batch) + 1) * longest > MAX_BATCH_TOKENS):
            yield batch
            batch = []
        batch.append(window)
    if batch:
        yield batch
