"""Object store: S3 (boto3; any endpoint, e.g. MinIO or moto) or a local directory.

Both implement `ObjectStore`; keys are '/'-separated paths such as
`datasets/<id>/train.csv` or `models/<version>/config.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from shared.ner.files import LOCKS, exclusive, sha256_file

MANIFEST_NAME = "manifest.json"


class ObjectNotFound(KeyError):
    """No object under the key."""


class ObjectStore(Protocol):
    def put_file(self, key: str, path: Path) -> None: ...
    def get_file(self, key: str, path: Path) -> None: ...
    def put_bytes(self, key: str, data: bytes) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def list(self, prefix: str) -> list[str]: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def ping(self) -> None: ...


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"key outside the store: {key!r}")
        return path

    def put_file(self, key: str, path: Path) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Copy then rename: a reader never sees half an object.
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)

    def get_file(self, key: str, path: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise ObjectNotFound(key)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, path)

    def put_bytes(self, key: str, data: bytes) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, dest)

    def get_bytes(self, key: str) -> bytes:
        src = self._path(key)
        if not src.is_file():
            raise ObjectNotFound(key)
        return src.read_bytes()

    def list(self, prefix: str) -> list[str]:
        base = self.root
        if not base.exists():
            return []
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise OSError(f"object directory not writable: {self.root}")


# Downloads in one thread. boto3's default (10 threads, ranged parts) left each API
# process ~25 MB heavier after fetching a model, even after malloc_trim: memory spread
# over the threads' malloc arenas (measured: 196 against 170 MB for the quick model, the
# same as loading it from the cache). A model is fetched once per machine and version.
_ONE_THREAD = TransferConfig(use_threads=False)


class S3Store:
    def __init__(self, bucket: str, prefix: str = "", client: Any = None, **client_kw: Any):
        if client is None:
            client = boto3.client("s3", **client_kw)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _is_missing(self, exc: Exception) -> bool:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return code in ("404", "NoSuchKey", "NotFound")

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def get_file(self, key: str, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, self._key(key), str(path), Config=_ONE_THREAD)
        except ClientError as exc:
            if self._is_missing(exc):
                raise ObjectNotFound(key) from exc
            raise

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get_bytes(self, key: str) -> bytes:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if self._is_missing(exc):
                raise ObjectNotFound(key) from exc
            raise
        return obj["Body"].read()

    def list(self, prefix: str) -> list[str]:
        strip = len(self._key(""))
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            keys.extend(obj["Key"][strip:] for obj in page.get("Contents", []))
        return sorted(keys)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if self._is_missing(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def ping(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def ensure_bucket(self) -> None:
        """Create the bucket when missing (local S3 servers, tests)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)


def make_store(storage_url: str, s3_endpoint_url: str | None = None) -> ObjectStore:
    """`s3://bucket/prefix` gives an S3Store; anything else is a local directory."""
    parsed = urlparse(storage_url)
    if parsed.scheme == "s3":
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5)
        return S3Store(
            parsed.netloc, parsed.path, endpoint_url=s3_endpoint_url or None, config=config
        )
    if parsed.scheme == "file":
        return LocalStore(Path(parsed.path))
    return LocalStore(Path(storage_url))


# -- directories with a sha256 manifest ------------------------------------------------------


class ChecksumMismatch(ValueError):
    """A downloaded object does not match its manifest."""


def upload_dir(store: ObjectStore, prefix: str, directory: Path) -> tuple[str, str]:
    """Upload every file under `directory` to `prefix/`, then a manifest of their sha256.

    The manifest goes last, so its presence means the upload is complete. Returns the
    manifest's key and its own sha256.
    """
    directory = Path(directory)
    files: dict[str, str] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        rel = path.relative_to(directory).as_posix()
        files[rel] = sha256_file(path)
        store.put_file(f"{prefix}/{rel}", path)
    manifest = json.dumps({"files": files}, indent=2, sort_keys=True).encode()
    key = f"{prefix}/{MANIFEST_NAME}"
    store.put_bytes(key, manifest)
    return key, hashlib.sha256(manifest).hexdigest()


def download_dir(store: ObjectStore, manifest_key: str, manifest_sha256: str, dest: Path) -> Path:
    """Download the files a manifest lists into `dest`, checking every sha256.

    Files land in a temporary sibling directory renamed into place at the end, so `dest`
    either holds a complete, verified copy or does not exist.
    """
    dest = Path(dest)
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    # One download per machine: the processes that share a cache (an API's processes, a
    # worker beside them) wait for the first one's copy instead of each fetching it.
    with exclusive(dest.parent / LOCKS / f"{dest.name}.lock"):
        if dest.is_dir():
            return dest
        return _download(store, manifest_key, manifest_sha256, dest)


def _download(store: ObjectStore, manifest_key: str, manifest_sha256: str, dest: Path) -> Path:
    raw = store.get_bytes(manifest_key)
    if hashlib.sha256(raw).hexdigest() != manifest_sha256:
        raise ChecksumMismatch(f"manifest {manifest_key} does not match its recorded sha256")
    files: dict[str, str] = json.loads(raw)["files"]
    prefix = manifest_key.rsplit("/", 1)[0]
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        for rel, expected in files.items():
            target = (tmp / rel).resolve()
            if not target.is_relative_to(tmp.resolve()):
                raise ChecksumMismatch(f"manifest entry outside the model directory: {rel}")
            store.get_file(f"{prefix}/{rel}", target)
            if sha256_file(target) != expected:
                raise ChecksumMismatch(f"{prefix}/{rel}: sha256 differs from the manifest")
        try:
            os.rename(tmp, dest)
        except OSError:
            # Another process finished the same download first; its copy is as good.
            if not dest.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
