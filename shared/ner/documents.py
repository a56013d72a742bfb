"""Input for bulk prediction: JSONL lines `{"id": ..., "text": ...}`."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from .problems import DatasetError, Problem, unreadable_json


@dataclass(frozen=True)
class Document:
    id: str
    text: str


def parse_documents(lines: Iterable[str], *, first_line: int = 1) -> list[Document]:
    """Documents from JSONL lines; an object without "id" gets its line number as id."""
    documents: list[Document] = []
    problems: list[Problem] = []
    for number, line in enumerate(lines, start=first_line):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(Problem(number, f"invalid JSON at column {err.colno}: {err.msg}"))
            continue
        except (ValueError, RecursionError) as err:
            problems.append(Problem(number, unreadable_json(err)))
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            problems.append(Problem(number, 'expected an object with a "text" string'))
            continue
        doc_id = obj.get("id", number)
        if not isinstance(doc_id, str | int):
            problems.append(Problem(number, '"id" must be a string or a number'))
            continue
        documents.append(Document(str(doc_id), obj["text"]))
    if problems:
        raise DatasetError(problems)
    return documents
