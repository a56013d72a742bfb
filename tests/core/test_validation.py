"""Validation: every problem as `line N: message`, on the physical line a user opens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.ner import DatasetError, parse_dataset, read_dataset
from shared.ner.formats import SKIP_HINT
from shared.ner.problems import Problem, format_problems
from tests.core.test_readers import zip_bytes


def problems(text: str, fmt: str) -> list[str]:
    with pytest.raises(DatasetError) as excinfo:
        parse_dataset(text, fmt)
    return [str(p) for p in excinfo.value.problems]


def jsonl(*objects: object) -> str:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects)


# ---------------------------------------------------------------- token/tag counts


def test_csv_count_mismatch_names_the_line() -> None:
    text = "text,labels\nAngela sings,B-PER O\nOslo is cold,B-LOC O\nfine,O\n"
    assert problems(text, "csv") == ["line 3: 3 tokens but 2 labels"]


def test_csv_count_mismatch_after_a_quoted_field_spanning_lines() -> None:
    # Record 1 spans physical lines 2-4; the bad record is on line 5, not record 2's "line 3".
    text = 'text,labels\n"Angela\nMerkel\nsings","B-PER I-PER O"\nOslo is cold,B-LOC O\n'
    assert problems(text, "csv") == ["line 5: 3 tokens but 2 labels"]


def test_csv_row_with_too_few_columns() -> None:
    assert problems("text,labels\nAngela\n", "csv") == [
        "line 2: expected the columns text,labels, found 1 value(s)"
    ]


def test_csv_header_must_name_text_and_labels() -> None:
    assert problems("sentence,tags\nAngela,B-PER\n", "csv") == [
        "line 1: the CSV header must name the columns text and labels (found: sentence,tags)"
    ]


def test_the_skip_hint_follows_the_list_when_some_rows_are_good() -> None:
    with pytest.raises(DatasetError) as excinfo:
        parse_dataset("text,labels\nAngela,B-PER\nOslo is,B-LOC\n", "csv")
    assert str(excinfo.value) == "line 3: 2 tokens but 1 labels\n" + SKIP_HINT


# ---------------------------------------------------------------- malformed tags


def test_malformed_and_bioes_tags_in_csv() -> None:
    text = "text,labels\nAngela sings,X-PER O\nParis,E-LOC\nOslo,S-LOC\nok,o\n"
    assert problems(text, "csv") == [
        "line 2: token 1 'Angela': tag 'X-PER' is not a BIO tag (expected O, B-TYPE or I-TYPE)",
        "line 3: token 1 'Paris': tag 'E-LOC' is BIOES; only BIO tags (O, B-TYPE, I-TYPE) are read",
        "line 4: token 1 'Oslo': tag 'S-LOC' is BIOES; only BIO tags (O, B-TYPE, I-TYPE) are read",
        "line 5: token 1 'ok': tag 'o' is not a BIO tag (expected O, B-TYPE or I-TYPE)",
    ]


def test_malformed_tags_in_conll_name_the_token_line() -> None:
    text = "-DOCSTART- O\n\nAngela B-PER\nMerkel E-PER\n\nOslo\nis B-\n"
    assert problems(text, "conll") == [
        "line 4: token 'Merkel': tag 'E-PER' is BIOES; only BIO tags (O, B-TYPE, I-TYPE) are read",
        "line 6: expected a token and a tag separated by a space or tab, found 'Oslo'",
        "line 7: token 'is': tag 'B-' is not a BIO tag (expected O, B-TYPE or I-TYPE)",
    ]


# ---------------------------------------------------------------- JSONL spans


def test_jsonl_overlapping_spans() -> None:
    text = jsonl(
        {"text": "ok"}, {"text": "Angela Merkel", "entities": [[0, 13, "PER"], [7, 13, "PER"]]}
    )
    assert problems(text, "jsonl") == [
        "line 2: entities overlap: [0, 13) PER 'Angela Merkel' and [7, 13) PER 'Merkel'"
    ]


@pytest.mark.parametrize(
    ("span", "message"),
    [
        ([0, 7, "PER"], "entity 1 [0, 7) PER: outside the text (length 6) or empty"),
        ([-1, 3, "PER"], "entity 1 [-1, 3) PER: outside the text (length 6) or empty"),
        ([3, 3, "PER"], "entity 1 [3, 3) PER: outside the text (length 6) or empty"),
        ([0, 3, "PER"], "entity 1 [0, 3) PER 'Ang' ends inside a word"),
        ([2, 6, "PER"], "entity 1 [2, 6) PER 'gela' starts inside a word"),
        (
            [0, 6, "B-PER"],
            "entity 1: label 'B-PER' must be a bare type such as PER (no spaces, no B-/I- prefix)",
        ),
        (
            [True, 6, "PER"],
            'entity 1: expected {"start": int, "end": int, "label": str} or '
            "[start, end, label], got [True, 6, 'PER']",
        ),
    ],
)
def test_jsonl_bad_spans(span: list[object], message: str) -> None:
    assert problems(jsonl({"text": "Angela", "entities": [span]}), "jsonl") == [
        f"line 1: {message}"
    ]


def test_jsonl_span_of_only_whitespace_is_a_problem_not_a_crash() -> None:
    assert problems(jsonl({"text": "a   b", "entities": [[1, 4, "PER"]]}), "jsonl") == [
        "line 1: entity 1 [1, 4) PER: only whitespace or invisible characters"
    ]


def test_jsonl_not_json_and_missing_text() -> None:
    text = '{"text": "fine"}\n{"text": "x"\n\n{"entities": []}\n[1, 2]\n{"text": 5}\n'
    assert problems(text, "jsonl") == [
        "line 2: invalid JSON at column 13: Expecting ',' delimiter",
        'line 4: missing "text" (a string)',
        'line 5: expected a JSON object {"text": ..., "entities": [...]}',
        'line 6: missing "text" (a string)',
    ]


def test_jsonl_line_numbers_survive_unicode_line_separators_inside_strings() -> None:
    # U+2028, U+2029 and U+0085 may appear raw inside JSON strings; they do not end a line.
    text = jsonl(
        {"text": "one\u2028two\u2029three\x85four Oslo", "entities": [[19, 23, "LOC"]]},
        {"text": "Oslo", "entities": [[0, 5, "LOC"]]},
    )
    assert problems(text, "jsonl") == [
        "line 2: entity 1 [0, 5) LOC: outside the text (length 4) or empty"
    ]
    ds = parse_dataset(text.split("\n")[0], "jsonl")
    assert ds.sentences[0].entities() == [{"start": 19, "end": 23, "label": "LOC", "text": "Oslo"}]


def test_whitespace_at_a_span_edge_is_trimmed() -> None:
    ds = parse_dataset(
        jsonl({"text": "met  Angela\tMerkel \n.", "entities": [[3, 20, "PER"]]}), "jsonl"
    )
    assert ds.sentences[0].entities() == [
        {"start": 5, "end": 18, "label": "PER", "text": "Angela\tMerkel"}
    ]
    assert ds.sentences[0].tags == ["O", "B-PER", "I-PER", "O"]


# ---------------------------------------------------------------- whole-file problems


@pytest.mark.parametrize("fmt", ["csv", "conll", "jsonl"])
@pytest.mark.parametrize("content", ["", "  \n\n\t\n"])
def test_empty_file(write, fmt: str, content: str) -> None:
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(
            write(f"empty.{ {'csv': 'csv', 'conll': 'txt', 'jsonl': 'jsonl'}[fmt] }", content)
        )
    assert [str(p) for p in excinfo.value.problems] == ["line 1: the file is empty"]


def test_empty_file_without_extension_says_empty(write) -> None:
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("upload", b""))
    assert [str(p) for p in excinfo.value.problems] == ["line 1: the file is empty"]


def test_csv_header_only_has_no_sentences() -> None:
    assert problems("text,labels\n", "csv") == ["line 1: no sentences found"]


def test_undecodable_bytes_name_the_line_of_the_bad_byte(write) -> None:
    data = b"text,labels\nAngela,B-PER\ncaf\xe9 ok,O O\nfine,O\n\xff\xfe,O\n"
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("latin1.csv", data))
    assert [str(p) for p in excinfo.value.problems] == [
        "line 3: bytes that are not UTF-8 at column 4 (b'\\xe9 ok'); save the file as UTF-8",
        "line 5: bytes that are not UTF-8 at column 1 (b'\\xff\\xfe,O'); save the file as UTF-8",
    ]


def test_undecodable_bytes_inside_a_zip(write) -> None:
    path = write("a.zip", zip_bytes({"a.csv": b"text,labels\nOslo,B-LOC\n\x80,O\n"}))
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(path)
    assert [p.line for p in excinfo.value.problems] == [3]


def test_unknown_format_name() -> None:
    assert problems("a b\n", "xml") == [
        "line 1: unknown format 'xml'; use one of csv, conll, jsonl"
    ]


def test_content_with_no_recognisable_format(write) -> None:
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("notes", "hello\nworld\n"))
    [problem] = excinfo.value.problems
    assert str(problem).startswith("line 1: cannot tell the format from the name or the content")


# ---------------------------------------------------------------- many problems


def test_first_50_problems_then_a_count() -> None:
    text = "text,labels\n" + "Angela sings,O\n" * 61
    with pytest.raises(DatasetError) as excinfo:
        parse_dataset(text, "csv")
    lines = str(excinfo.value).splitlines()
    assert len(excinfo.value.problems) == 61  # all kept for the API
    assert lines[:50] == [f"line {n}: 2 tokens but 1 labels" for n in range(2, 52)]
    assert lines[50:] == ["... and 11 more problems"]


def test_format_problems_sorts_nothing_and_counts_exactly() -> None:
    ps = [Problem(n, "bad") for n in range(1, 53)]
    assert format_problems(ps).splitlines()[-1] == "... and 2 more problems"
    assert format_problems(ps[:50]).splitlines()[-1] == "line 50: bad"
    assert Problem(3, "x").as_dict() == {"line": 3, "message": "x"}


def test_problems_from_all_records_are_listed_in_line_order() -> None:
    text = "a X\n\nb O\nc\n\nd I-\n"
    assert [p.split(":")[0] for p in problems(text, "conll")] == ["line 1", "line 4", "line 6"]


# ---------------------------------------------------------------- IOB1 and skip_invalid


def test_iob1_is_converted_to_iob2_and_counted() -> None:
    text = "text,labels\nAngela Merkel met Paris Oslo,I-PER I-PER O I-LOC B-LOC\nBerlin,I-LOC\n"
    ds = parse_dataset(text, "csv")
    assert [s.tags for s in ds.sentences] == [
        ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"],
        ["B-LOC"],
    ]
    assert ds.warnings == [
        "converted 3 tag(s) from IOB1 to IOB2 (an I- tag starting an entity became B-)"
    ]


def test_iob2_data_has_no_warning() -> None:
    assert parse_dataset("text,labels\nAngela Merkel,B-PER I-PER\n", "csv").warnings == []


def test_skip_invalid_keeps_valid_rows_and_lists_the_skipped() -> None:
    text = "text,labels\nAngela sings,B-PER O\nOslo is cold,B-LOC O\nParis,X-LOC\nfine,O\n"
    ds = parse_dataset(text, "csv", skip_invalid=True)
    assert [s.tokens for s in ds.sentences] == [["Angela", "sings"], ["fine"]]
    assert [str(p) for p in ds.skipped] == [
        "line 3: 3 tokens but 2 labels",
        "line 4: token 1 'Paris': tag 'X-LOC' is not a BIO tag (expected O, B-TYPE or I-TYPE)",
    ]
    assert ds.warnings == [
        "left out 2 invalid record(s) (--skip-invalid); first: line 3: 3 tokens but 2 labels"
    ]


def test_skip_invalid_still_refuses_a_file_with_nothing_valid() -> None:
    with pytest.raises(DatasetError):
        parse_dataset("text,labels\nOslo is cold,B-LOC O\n", "csv", skip_invalid=True)


def test_skip_invalid_in_read_dataset(write) -> None:
    path = write(
        "d.jsonl",
        jsonl(
            {"text": "Oslo", "entities": [[0, 4, "LOC"]]},
            {"text": "Oslo", "entities": [[0, 2, "LOC"]]},
        ),
    )
    with pytest.raises(DatasetError):
        read_dataset(path)
    ds = read_dataset(path, skip_invalid=True)
    assert len(ds) == 1 and [p.line for p in ds.skipped] == [2]


GMB = Path(__file__).resolve().parents[3] / "shared" / "data" / "gmb" / "archive.zip"


@pytest.mark.skipif(not GMB.is_file(), reason="the original dataset is not in ../shared/data")
def test_the_original_dataset_reports_its_13_bad_rows_by_line() -> None:
    ds = read_dataset(GMB, skip_invalid=True)
    assert ds.format == "csv"
    assert len(ds.skipped) == 13
    assert [str(p) for p in ds.skipped[:3]] == [
        "line 63: 50 tokens but 54 labels",
        "line 10912: 28 tokens but 29 labels",
        "line 21090: 17 tokens but 19 labels",
    ]
    assert len(ds) == 47946
