"""Encoders packaged on the index as a split zip (all-mpnet-base-v2), and the `accurate`
preset that trains one: joined and checked on first use, nothing half-written on failure,
a missing install named with the command that fixes it."""

from __future__ import annotations

import contextlib
import hashlib
import io
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cli.main import main
from shared.ner.basemodel import (
    MPNET,
    EncoderNotInstalled,
    SplitZipEncoder,
    assemble,
    resolve_base_model,
)
from shared.ner.config import TrainConfig
from shared.ner.files import LOCKS
from tests.core.data import csv_text

FILES = {"config.json": b'{"model_type": "bert"}', "model.safetensors": bytes(range(256)) * 400}


def split_zip(tmp_path: Path, pieces: int = 3) -> list[Path]:
    """A zip of FILES in folder `enc/` (plus a file the model does not need), cut in pieces."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in FILES.items():
            archive.writestr(f"enc/{name}", data)
        archive.writestr("enc/desktop.ini", b"[.ShellClassInfo]")
    data = buffer.getvalue()
    size = -(-len(data) // pieces)
    paths = []
    for i in range(pieces):
        path = tmp_path / f"enc.zip.{i + 1:03d}"
        path.write_bytes(data[i * size : (i + 1) * size])
        paths.append(path)
    return paths


def encoder(weights: str | None = None) -> SplitZipEncoder:
    """The zip of `split_zip` as a packaged encoder (`weights`: another expected checksum)."""
    return SplitZipEncoder(
        name="enc",
        parts=("no-such-distribution-for-ner-tests",),
        folder="enc",
        sha256={
            "model.safetensors": weights or hashlib.sha256(FILES["model.safetensors"]).hexdigest()
        },
        files=tuple(FILES),
        extra="accurate",
    )


def entries(cache: Path) -> list[str]:
    """What the cache holds besides its lock files."""
    return sorted(p.name for p in cache.iterdir() if p.name != LOCKS)


def test_the_pieces_are_joined_into_the_model_files_once(tmp_path: Path) -> None:
    pieces = split_zip(tmp_path)
    cache = tmp_path / "cache"
    folder = assemble(encoder(), cache, lambda: pieces)
    assert folder == cache / "enc"
    assert {p.name for p in folder.iterdir()} == set(FILES)  # not the desktop.ini
    for name, data in FILES.items():
        assert (folder / name).read_bytes() == data
    assert entries(cache) == ["enc"]  # the joined zip is gone

    def not_again() -> list[Path]:
        raise AssertionError("the pieces were read again")

    assert assemble(encoder(), cache, not_again) == folder


def test_a_bad_checksum_leaves_nothing_behind(tmp_path: Path) -> None:
    pieces = split_zip(tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=r"model\.safetensors does not match its checksum"):
        assemble(encoder(weights="0" * 64), cache, lambda: pieces)
    assert entries(cache) == []
    # A piece missing from the middle is no zip at all: refused, nothing left either.
    with pytest.raises(ValueError, match="its packages do not make up the model"):
        assemble(encoder(), cache, lambda: [pieces[0], pieces[2]])
    assert entries(cache) == []


def test_a_missing_install_names_the_command_that_fixes_it() -> None:
    with pytest.raises(EncoderNotInstalled, match=r"pip install 'ner-service\[accurate\]'"):
        encoder().part_files()


def test_the_preset_fills_what_is_not_given() -> None:
    accurate = TrainConfig(preset="accurate")
    assert accurate.base_model == MPNET.name
    assert accurate.learning_rate == 5e-5 and accurate.casing is False
    assert TrainConfig(preset="accurate", learning_rate=1e-4).learning_rate == 1e-4
    # Stored with a job and read back by the worker, it stays the same configuration.
    assert TrainConfig.model_validate(accurate.model_dump()) == accurate
    assert TrainConfig().base_model is None and TrainConfig().learning_rate == 1e-4


def test_resolving_a_packaged_name_uses_the_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NER_ENCODER_CACHE", str(tmp_path))
    (tmp_path / MPNET.name).mkdir()
    (tmp_path / MPNET.name / "config.json").write_text("{}")
    for name in ("all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2"):
        assert resolve_base_model(name) == str(tmp_path / MPNET.name)


def test_ner_train_with_a_preset_not_installed_exits_2(capsys, tmp_path: Path, monkeypatch) -> None:
    with contextlib.suppress(EncoderNotInstalled):
        MPNET.part_files()
        pytest.skip("the accurate preset's packages are installed here")
    monkeypatch.setenv("NER_ENCODER_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "d.csv"
    data.write_text(csv_text())
    out = tmp_path / "m"
    code = main(["train", "--train", str(data), "--preset", "accurate", "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 2
    assert "all-mpnet-base-v2 encoder is not installed" in err
    assert "pip install 'ner-service[accurate]'" in err
    assert not out.exists() and not out.with_name("m.partial").exists()


def test_callers_at_the_same_moment_join_the_pieces_once(tmp_path: Path) -> None:
    pieces = split_zip(tmp_path)
    cache = tmp_path / "cache"
    reads: list[int] = []

    def slow_pieces() -> list[Path]:
        reads.append(1)
        time.sleep(0.3)  # the others arrive while this one joins
        return pieces

    with ThreadPoolExecutor(4) as pool:
        folders = list(pool.map(lambda _: assemble(encoder(), cache, slow_pieces), range(4)))
    assert folders == [cache / "enc"] * 4
    assert len(reads) == 1
    assert entries(cache) == ["enc"]
