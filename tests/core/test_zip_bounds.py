"""Hostile .zip uploads: bombs, lying headers, odd names, encryption, unknown compression,
archives in archives, corruption. Each is a DatasetError naming the problem (the API
answers 422, or 413 for size), never a crash and never a member decompressed whole."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from cli.main import main
from shared.ner import DatasetError, DatasetTooLarge, read_dataset
from tests.core.data import csv_text

CD = b"PK\x01\x02"  # central directory entry
LOCAL = b"PK\x03\x04"  # local file header


def zip_of(members: dict[str, bytes | str], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def patch(data: bytes, signature: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite one field of every header with `signature` (what a forged archive does)."""
    out = bytearray(data)
    at = out.find(signature)
    while at >= 0:
        struct.pack_into(fmt, out, at + offset, value)
        at = out.find(signature, at + 4)
    return bytes(out)


def message(excinfo: pytest.ExceptionInfo[DatasetError]) -> str:
    return " ".join(p.message for p in excinfo.value.problems)


def test_a_zip_bomb_is_refused_before_it_is_decompressed(write) -> None:
    # 64 MiB of one byte compresses to about 64 KiB.
    bomb = zip_of({"data.csv": b"a" * (64 << 20)})
    assert len(bomb) < 200_000
    with pytest.raises(DatasetTooLarge) as excinfo:
        read_dataset(write("bomb.zip", bomb), max_unpacked_bytes=1 << 20)
    assert "expands to 67108864 bytes; the limit is 1048576" in message(excinfo)


def test_a_member_that_lies_about_its_size_is_caught_while_streaming(write) -> None:
    honest = zip_of({"data.csv": csv_text() * 200})
    # Headers that claim 100 bytes for a member that holds far more.
    liar = patch(patch(honest, CD, 24, "<I", 100), LOCAL, 22, "<I", 100)
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("liar.zip", liar), max_unpacked_bytes=1000)
    # zipfile stops at the declared size and the CRC no longer matches: refused either way.
    assert "zip" in message(excinfo)


def test_too_many_entries(write) -> None:
    many = zip_of({f"f{i}.txt": b"" for i in range(1001)} | {"d.csv": csv_text()})
    with pytest.raises(DatasetTooLarge) as excinfo:
        read_dataset(write("many.zip", many))
    assert "1002 entries; at most 1000" in message(excinfo)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../../etc/evil.csv", "climbs out of the archive"),
        ("/etc/evil.csv", "absolute path"),
        ("C:/evil.csv", "absolute path"),
        ("a\nb.csv", "control character"),
    ],
)
def test_odd_member_names(write, name: str, why: str) -> None:
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("odd.zip", zip_of({name: csv_text()})))
    assert why in message(excinfo)


def test_a_nul_in_a_member_name_is_not_hidden(write) -> None:
    # zipfile cuts a name at its NUL ("evil.csv\0.txt" would read as "evil.csv").
    data = zip_of({"evil.csvX.txt": csv_text()}).replace(b"evil.csvX", b"evil.csv\x00")
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("nul.zip", data))
    assert "control character" in message(excinfo)


def test_an_encrypted_member(write) -> None:
    data = patch(patch(zip_of({"d.csv": csv_text()}), CD, 8, "<H", 1), LOCAL, 6, "<H", 1)
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("secret.zip", data))
    assert "is encrypted" in message(excinfo)


def test_a_compression_method_the_reader_cannot_handle(write) -> None:
    # 9 is Deflate64, which zipfile cannot decompress.
    data = patch(patch(zip_of({"d.csv": csv_text()}), CD, 10, "<H", 9), LOCAL, 8, "<H", 9)
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("d64.zip", data))
    assert "compression method 9" in message(excinfo)


def test_archives_inside_archives(write) -> None:
    inner = zip_of({"d.csv": csv_text()})
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("outer.zip", zip_of({"inner.zip": inner, "x.csv": csv_text()})))
    assert "another archive" in message(excinfo)
    # The same, hidden behind a .csv name: caught by its content.
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("outer.zip", zip_of({"d.csv": inner})))
    assert "itself an archive" in message(excinfo)


def test_a_corrupt_member(write) -> None:
    data = bytearray(zip_of({"d.csv": csv_text() * 20}))
    start = data.find(b"d.csv") + len("d.csv")  # the compressed stream follows the name
    data[start + 10 : start + 40] = b"\xff" * 30
    with pytest.raises(DatasetError) as excinfo:
        read_dataset(write("corrupt.zip", bytes(data)))
    assert "zip" in message(excinfo)


def test_stored_bzip2_and_lzma_members_still_read(write) -> None:
    for method in (zipfile.ZIP_STORED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        assert len(read_dataset(write("ok.zip", zip_of({"d.csv": csv_text()}, method)))) == 20


def test_the_cli_exits_2_on_a_bomb(write, capsys, tmp_path) -> None:
    # Declared at 1 GiB: refused from the central directory, nothing decompressed.
    data = patch(zip_of({"d.csv": csv_text()}), CD, 24, "<I", 1 << 30)
    path = write("bomb.zip", data)
    out = tmp_path / "m"
    code = main(["train", "--train", str(path), "--out", str(out), "--base-model", "x"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "expands to 1073741824 bytes" in err and "Traceback" not in err
    assert not out.exists()
