"""A tiny random BERT with a tokenizer built from the test's own words.

Hidden size 32, 2 layers, 4 heads (as transformers' own BERT tests), so training
on a handful of sentences takes seconds on a CPU. The tokenizer is a real
fast WordPiece tokenizer whose vocabulary is exactly the given words (lower-cased
or not), plus single characters so that unseen words still tokenize.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_tiny_bert(
    directory: Path, words: Iterable[str], *, lowercase: bool = False, seed: int = 0
) -> Path:
    """Write a tiny random BERT + tokenizer into `directory` and return it."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for token in SPECIAL:
        vocab[token] = len(vocab)
    chars = set(string.ascii_letters + string.digits + string.punctuation)
    word_list = sorted({w.lower() if lowercase else w for w in words})
    for w in word_list:
        chars.update(w)
    for ch in sorted(chars):
        for piece in (ch, "##" + ch):
            vocab.setdefault(piece, len(vocab))
    for w in word_list:
        vocab.setdefault(w, len(vocab))

    tokenizer = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(
        lowercase=lowercase, strip_accents=lowercase, clean_text=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )
    fast.save_pretrained(directory)

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(directory)
    return directory
