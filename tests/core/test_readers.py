"""The three formats of CONTRACT §1 read into the same sentences, whatever the file looks like."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from shared.ner import DatasetError, read_dataset
from shared.ner.formats import detect_format
from tests.core.data import SENTENCES, conll_text, csv_text, jsonl_text, token_rows

EXPECTED = token_rows()


def rows(dataset) -> list[tuple[list[str], list[str]]]:
    return [(s.tokens, s.tags) for s in dataset.sentences]


def problems_of(excinfo: pytest.ExceptionInfo[DatasetError]) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


# ---------------------------------------------------------------- CSV and zip


def test_csv_reads_tokens_and_tags(write) -> None:
    ds = read_dataset(write("data.csv", csv_text()))
    assert ds.format == "csv"
    assert rows(ds) == EXPECTED
    assert ds.sentences[0].text == "Angela Merkel visited Paris yesterday ."
    assert ds.sentences[0].line == 2 and ds.sentences[-1].line == 21
    assert ds.warnings == [] and ds.skipped == []
    assert ds.stats()["labels"] == {"LOC": 14, "ORG": 11, "PER": 16}


def test_csv_quoted_fields_with_commas_and_quotes(write) -> None:
    text = (
        "text,labels\n"
        '"Acme , Inc. said "" hi "" to Angela","B-ORG O O O O O O O B-PER"\n'
        '"Paris","B-LOC"\n'
    )
    ds = read_dataset(write("quoted.csv", text))
    assert rows(ds) == [
        (
            ["Acme", ",", "Inc.", "said", '"', "hi", '"', "to", "Angela"],
            ["B-ORG", "O", "O", "O", "O", "O", "O", "O", "B-PER"],
        ),
        (["Paris"], ["B-LOC"]),
    ]


def test_csv_columns_in_any_order_with_extra_columns(write) -> None:
    text = "id,labels,text\n1,B-PER O,Angela sings\n"
    assert rows(read_dataset(write("order.csv", text))) == [(["Angela", "sings"], ["B-PER", "O"])]


def test_csv_with_bom_and_crlf(write) -> None:
    text = "\ufefftext,labels\r\nAngela sings,B-PER O\r\nOslo,B-LOC\r\n"
    ds = read_dataset(write("bom.csv", text))
    assert rows(ds) == [(["Angela", "sings"], ["B-PER", "O"]), (["Oslo"], ["B-LOC"])]


def zip_bytes(members: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_zip_holding_one_csv(write) -> None:
    path = write("archive.zip", zip_bytes({"ner.csv": csv_text(), "README": "not data"}))
    ds = read_dataset(path)
    assert ds.format == "csv"
    assert rows(ds) == EXPECTED


def test_zip_ignores_macos_resource_forks(write) -> None:
    path = write("archive.zip", zip_bytes({"ner.csv": csv_text(), "__MACOSX/._ner.csv": "junk"}))
    assert len(read_dataset(path)) == 20


@pytest.mark.parametrize(
    ("members", "found"),
    [
        ({"README.txt": "hello"}, "none"),
        ({"a.csv": csv_text(), "b.csv": csv_text()}, "a.csv, b.csv"),
    ],
)
def test_zip_without_exactly_one_csv_is_a_problem(write, members, found) -> None:
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("archive.zip", zip_bytes(members)))
    assert problems_of(excinfo) == [
        f"line 1: a .zip must hold exactly one .csv file (found: {found})"
    ]


def test_broken_zip_is_a_problem_not_a_crash(write) -> None:
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("archive.zip", b"PK\x03\x04 this is not really a zip"))
    assert problems_of(excinfo)[0].startswith("line 1: not a readable zip archive")


# ---------------------------------------------------------------- CoNLL


def test_conll_space_separated(write) -> None:
    ds = read_dataset(write("data.conll", conll_text()))
    assert ds.format == "conll"
    assert rows(ds) == EXPECTED
    assert ds.sentences[1].line == 8  # 6 token lines + 1 blank line before it


def test_conll_tab_separated_tag_in_last_column_docstart_skipped(write) -> None:
    text = (
        "-DOCSTART-\tO\n"
        "\n"
        "Angela\tNNP\tB-PER\n"
        "sings\tVBZ\tO\n"
        "\n"
        "\n"
        "-DOCSTART- -X- -X- O\n"
        "Oslo\tNNP\tB-LOC\n"
    )
    ds = read_dataset(write("data.iob", text))
    assert rows(ds) == [(["Angela", "sings"], ["B-PER", "O"]), (["Oslo"], ["B-LOC"])]
    assert [s.line for s in ds.sentences] == [3, 8]


def test_conll_2003_four_columns(write) -> None:
    text = (
        "-DOCSTART- -X- -X- O\n"
        "\n"
        "EU NNP B-NP B-ORG\n"
        "rejects VBZ B-VP O\n"
        "German JJ B-NP B-MISC\n"
        "call NN I-NP O\n"
        ". . O O\n"
        "\n"
        "Peter NNP B-NP B-PER\n"
        "Blackburn NNP I-NP I-PER\n"
    )
    ds = read_dataset(write("train.txt", text))
    assert ds.format == "conll"
    assert rows(ds) == [
        (["EU", "rejects", "German", "call", "."], ["B-ORG", "O", "B-MISC", "O", "O"]),
        (["Peter", "Blackburn"], ["B-PER", "I-PER"]),
    ]
    assert ds.entity_types == ["MISC", "ORG", "PER"]


def test_conll_without_trailing_newline_and_with_crlf(write) -> None:
    ds = read_dataset(write("data.bio", "Angela B-PER\r\nsings O\r\n\r\nOslo B-LOC"))
    assert rows(ds) == [(["Angela", "sings"], ["B-PER", "O"]), (["Oslo"], ["B-LOC"])]


# ---------------------------------------------------------------- JSONL and JSON


def test_jsonl_dict_entities(write) -> None:
    ds = read_dataset(write("data.jsonl", jsonl_text()))
    assert ds.format == "jsonl"
    assert rows(ds) == EXPECTED
    assert [s.line for s in ds.sentences] == list(range(1, 21))


def test_jsonl_triples_and_blank_lines(write) -> None:
    lines = [
        json.dumps(
            {"text": "Angela Merkel visited Paris.", "entities": [[0, 13, "PER"], [22, 27, "LOC"]]}
        ),
        "",
        json.dumps({"text": "nothing here", "entities": []}),
        json.dumps({"text": "Oslo"}),  # no entities key: no entities
    ]
    ds = read_dataset(write("data.jsonl", "\n".join(lines) + "\n"))
    first = ds.sentences[0]
    assert first.tokens == ["Angela", "Merkel", "visited", "Paris", "."]
    assert first.tags == ["B-PER", "I-PER", "O", "B-LOC", "O"]
    assert [s.line for s in ds.sentences] == [1, 3, 4]
    assert ds.sentences[2].tags == ["O"]


def test_json_array(write) -> None:
    items = [
        {"text": "Angela sings", "entities": [{"start": 0, "end": 6, "label": "PER"}]},
        {"text": "Oslo", "entities": [[0, 4, "LOC"]]},
    ]
    ds = read_dataset(write("data.json", json.dumps(items, indent=2)))
    assert ds.format == "jsonl"
    assert rows(ds) == [(["Angela", "sings"], ["B-PER", "O"]), (["Oslo"], ["B-LOC"])]


def test_jsonl_entity_boundary_inside_punctuation_run_splits_the_word(write) -> None:
    # "U.S." is one word for the splitter; an entity on "U.S" cuts it.
    text = json.dumps({"text": "in the U.S. today", "entities": [[7, 11, "LOC"]]})
    ds = read_dataset(write("d.jsonl", text))
    assert ds.sentences[0].entities() == [{"start": 7, "end": 11, "label": "LOC", "text": "U.S."}]


# ---------------------------------------------------------------- detection and --format


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("A.CSV", "csv"),
        ("a.zip", "csv"),
        ("a.txt", "conll"),
        ("a.conll", "conll"),
        ("a.iob", "conll"),
        ("a.bio", "conll"),
        ("a.jsonl", "jsonl"),
        ("a.json", "jsonl"),
    ],
)
def test_detect_format_by_extension(name: str, fmt: str) -> None:
    # The extension wins over the content.
    assert detect_format(name, "whatever content here") == fmt


@pytest.mark.parametrize(
    ("content", "fmt"),
    [
        (csv_text(), "csv"),
        (conll_text(), "conll"),
        (jsonl_text(), "jsonl"),
        ("\n\n" + jsonl_text(), "jsonl"),
        ('[{"text": "a"}]', "jsonl"),
        ("Text , Labels\na,O\n", "csv"),
    ],
)
def test_detect_format_by_content(content: str, fmt: str) -> None:
    assert detect_format("upload", content) == fmt


@pytest.mark.parametrize("content", [csv_text(), conll_text(), jsonl_text()])
def test_read_without_extension_detects_by_content(write, content: str) -> None:
    assert rows(read_dataset(write("data", content))) == EXPECTED


def test_zip_without_extension_is_still_read(write) -> None:
    assert rows(read_dataset(write("upload", zip_bytes({"ner.csv": csv_text()})))) == EXPECTED


def test_filename_argument_names_the_format_of_a_temporary_file(write) -> None:
    path = write("tmp123", conll_text())
    assert read_dataset(path, filename="mine.conll").format == "conll"


def test_format_override_beats_the_extension(write) -> None:
    # A CoNLL file saved as .csv: auto detection reads it as CSV and fails; --format conll reads it.
    path = write("mislabelled.csv", conll_text())
    with pytest.raises(DatasetError):
        read_dataset(path)
    ds = read_dataset(path, format="conll")
    assert ds.format == "conll" and rows(ds) == EXPECTED


def test_every_format_gives_the_same_sentences(write) -> None:
    datasets = [
        read_dataset(write("d.csv", csv_text())),
        read_dataset(write("d.txt", conll_text())),
        read_dataset(write("d.jsonl", jsonl_text())),
    ]
    texts = [[s.text for s in ds.sentences] for ds in datasets]
    assert texts[0] == texts[1] == texts[2] == [t for t, _ in SENTENCES]
    assert rows(datasets[0]) == rows(datasets[1]) == rows(datasets[2])


def test_missing_file_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        read_dataset(tmp_path / "nope.csv")
