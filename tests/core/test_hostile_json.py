"""JSON that is valid syntax but that the parser still refuses (nesting deeper than its
recursion allows, an integer of thousands of digits) is a problem on its line, not a crash:
in a JSONL dataset, a JSON-array dataset and a bulk prediction file."""

from __future__ import annotations

import pytest

from shared.ner import DatasetError, parse_documents, read_dataset

DEEP = "[" * 100_000 + "]" * 100_000
LONG_INT = '{"text": "a", "entities": [[' + "1" * 5000 + ', 2, "PER"]]}'


@pytest.mark.parametrize(
    ("line", "why"), [(DEEP, "nested too deep"), (LONG_INT, "integer string conversion")]
)
def test_jsonl_dataset(write, line: str, why: str) -> None:
    good = '{"text": "Angela sings", "entities": [[0, 6, "PER"]]}'
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("d.jsonl", f"{good}\n{line}\n"))
    assert [p.line for p in excinfo.value.problems] == [2]
    assert why in excinfo.value.problems[0].message


def test_json_array_dataset(write) -> None:
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("d.json", DEEP))
    assert "nested too deep" in str(excinfo.value)


def test_bulk_documents() -> None:
    with pytest.raises(DatasetError) as excinfo:
        parse_documents(['{"id": "a", "text": "fine"}', DEEP])
    assert excinfo.value.problems[0].line == 2
