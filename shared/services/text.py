"""Which caller text the service can process and store: one rule, used by the API's schemas
and by the service layer for what arrives in files (a bulk JSONL upload)."""

from __future__ import annotations


def text_problem(value: str, *, stored: bool) -> str | None:
    """Why `value` cannot be processed (or, with `stored`, kept in a database column), or
    None. JSON can carry a lone surrogate ("\\ud800"): Python holds it, but no tokenizer,
    encoder or database can; PostgreSQL refuses a NUL in any text."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"holds a lone surrogate (U+{ord(value[exc.start]):04X}) at character "
            f"{exc.start}; send valid Unicode text"
        )
    if stored and "\x00" in value:
        return f"holds a NUL character at character {value.index(chr(0))}"
    return None
