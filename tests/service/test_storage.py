"""The object store interface on the real S3 server and on a local directory."""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.services.models import ModelCache, ModelRef
from shared.settings import Settings
from shared.storage import (
    ChecksumMismatch,
    LocalStore,
    ObjectNotFound,
    ObjectStore,
    S3Store,
    download_dir,
    make_store,
    upload_dir,
)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.services)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return make_store(str(tmp_path / "objects"))
    settings: Settings = request.getfixturevalue("service_settings")
    made = make_store(settings.storage_url, settings.s3_endpoint_url)
    assert isinstance(made, S3Store)
    return made


def test_make_store_picks_by_url(tmp_path: Path) -> None:
    assert isinstance(make_store(str(tmp_path)), LocalStore)
    assert isinstance(make_store(f"file://{tmp_path}"), LocalStore)
    s3 = make_store("s3://bucket/some/prefix", "http://127.0.0.1:1")
    assert isinstance(s3, S3Store) and s3.bucket == "bucket" and s3.prefix == "some/prefix"


def test_bytes_files_list_delete(store: ObjectStore, tmp_path: Path) -> None:
    store.ping()
    store.put_bytes("a/one.txt", b"1")
    src = tmp_path / "two.bin"
    src.write_bytes(b"\x00\x01" * 1000)
    store.put_file("a/b/two.bin", src)
    store.put_bytes("c/three.txt", b"3")
    assert store.get_bytes("a/one.txt") == b"1"
    store.get_file("a/b/two.bin", tmp_path / "copy" / "two.bin")
    assert (tmp_path / "copy" / "two.bin").read_bytes() == src.read_bytes()
    assert store.list("a/") == ["a/b/two.bin", "a/one.txt"]
    assert store.exists("c/three.txt")
    store.delete("c/three.txt")
    assert not store.exists("c/three.txt")
    with pytest.raises(ObjectNotFound):
        store.get_bytes("c/three.txt")
    with pytest.raises(ObjectNotFound):
        store.get_file("nope", tmp_path / "nope")


def test_local_store_refuses_keys_outside_its_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "root")
    with pytest.raises(ValueError, match="outside"):
        store.put_bytes("../escape", b"x")


def _model_dir(path: Path) -> Path:
    (path / "sub").mkdir(parents=True)
    (path / "config.json").write_text('{"id2label": {"0": "O"}}')
    (path / "model.safetensors").write_bytes(b"weights" * 100)
    (path / "sub" / "tokenizer.json").write_text("{}")
    return path


def test_directory_round_trip_with_manifest(store: ObjectStore, tmp_path: Path) -> None:
    src = _model_dir(tmp_path / "model")
    key, sha = upload_dir(store, "models/v1", src)
    assert key == "models/v1/manifest.json"
    assert hashlib.sha256(store.get_bytes(key)).hexdigest() == sha
    dest = ModelCache(store, tmp_path / "cache").fetch_dir(ModelRef("v1", key, sha))
    for rel in ("config.json", "model.safetensors", "sub/tokenizer.json"):
        assert (dest / rel).read_bytes() == (src / rel).read_bytes()


def test_tampered_file_or_manifest_is_refused(store: ObjectStore, tmp_path: Path) -> None:
    src = _model_dir(tmp_path / "model")
    key, sha = upload_dir(store, "models/v2", src)
    with pytest.raises(ChecksumMismatch, match="manifest"):
        download_dir(store, key, "0" * 64, tmp_path / "bad-manifest")
    store.put_bytes("models/v2/model.safetensors", b"evil")
    with pytest.raises(ChecksumMismatch, match=r"model\.safetensors"):
        download_dir(store, key, sha, tmp_path / "tampered")
    # Nothing half-downloaded is left where a loader would find it.
    assert not (tmp_path / "tampered").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tampered")] == []


class _CountingStore(LocalStore):
    """The real local store, counting the files fetched (slowly, so that callers overlap)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.fetched: list[str] = []

    def get_file(self, key: str, path: Path) -> None:
        time.sleep(0.05)
        self.fetched.append(key)
        super().get_file(key, path)


def test_one_download_for_callers_at_once(tmp_path: Path) -> None:
    # An API's processes (and a worker beside them) share the model cache: the first
    # caller downloads, the others wait for its copy instead of fetching their own.
    store = _CountingStore(tmp_path / "objects")
    key, sha = upload_dir(store, "models/v3", _model_dir(tmp_path / "model"))
    dest = tmp_path / "cache" / "v3"
    start = threading.Barrier(4)

    def fetch() -> Path:
        start.wait()
        return download_dir(store, key, sha, dest)

    with ThreadPoolExecutor(4) as pool:
        copies = list(pool.map(lambda _: fetch(), range(4)))
    assert copies == [dest] * 4
    files = ["config.json", "model.safetensors", "sub/tokenizer.json"]
    assert sorted(store.fetched) == [f"models/v3/{rel}" for rel in files]  # each once
