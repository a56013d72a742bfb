"""Validation problems: every one carries the line of the input it is about."""

from __future__ import annotations

from dataclasses import dataclass

MAX_LISTED = 50


@dataclass(frozen=True, order=True)
class Problem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"

    def as_dict(self) -> dict[str, int | str]:
        return {"line": self.line, "message": self.message}


def format_problems(problems: list[Problem], limit: int = MAX_LISTED) -> str:
    """The first `limit` problems as `line N: message` lines, then a count of the rest."""
    lines = [str(p) for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"... and {len(problems) - limit} more problems")
    return "\n".join(lines)


def unreadable_json(err: Exception) -> str:
    """Valid JSON syntax that the parser still refuses: nesting deeper than its recursion
    allows, or an integer longer than Python converts (4300 digits)."""
    if isinstance(err, RecursionError):
        return "unreadable JSON: nested too deep"
    return f"unreadable JSON: {err}"


class DatasetError(ValueError):
    """A file that cannot be used as it is. `problems` lists every fault found, by line."""

    def __init__(self, problems: list[Problem], hint: str | None = None) -> None:
        self.problems = sorted(problems)
        self.hint = hint
        text = format_problems(self.problems)
        if hint:
            text += "\n" + hint
        super().__init__(text)


class DatasetTooLarge(DatasetError):
    """A file over a size bound (an archive that expands past the limit, too many members):
    a caller's mistake of size, which the API answers 413 rather than 422."""
