"""Raw text → words with exact character offsets.

Every format and every prediction goes through this one splitter, so offsets
always index the text as the user sent it (the subword tokenizer may lower-case,
strip accents or normalise Unicode; we never use its offsets for the answer).

A word is a run of letters, digits, combining marks and underscores, optionally
joined by inner `.`, `-`, `&`, `'` or `’` (``1996-08-22``, ``AT&T``, ``O'Neil``; a possessive
``'s`` stays apart, as in CoNLL-style data), or
an abbreviation with dots (``U.S.``); any other non-space character (punctuation,
emoji, symbols) is a word of its own.
"""

from __future__ import annotations

import regex

_WORD = r"[\p{L}\p{N}\p{M}_]"
WORD_RE = regex.compile(
    rf"(?:\p{{L}}\p{{M}}*\.){{2,}}"  # U.S. / e.g.
    rf"|{_WORD}+(?:[.\-&]{_WORD}+|['’](?![sS]\b){_WORD}+)*"
    r"|['’][sS]\b"  # possessive 's
    # Any other visible character is a word of its own. Invisible format characters
    # (\p{Cf}: zero-width space and joiner, BOM, bidi marks) are no word at all: the
    # tokenizer drops them, and a word without sub-tokens would break an entity in two.
    r"|[^\s\p{Cf}]\p{M}*",
)
WORD_CHAR_RE = regex.compile(_WORD)


def split_words(text: str) -> list[tuple[int, int]]:
    """Character spans `(start, end)` of the words of `text`, in order."""
    return [m.span() for m in WORD_RE.finditer(text)]


def is_word_char(ch: str) -> bool:
    return bool(WORD_CHAR_RE.match(ch))


def split_at(words: list[tuple[int, int]], cuts: set[int]) -> list[tuple[int, int]]:
    """Split words at the character positions in `cuts` (entity boundaries inside a word)."""
    out: list[tuple[int, int]] = []
    for start, end in words:
        inner = sorted(c for c in cuts if start < c < end)
        for cut in inner:
            out.append((start, cut))
            start = cut
        out.append((start, end))
    return out
