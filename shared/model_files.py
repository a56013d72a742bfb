"""Fetching a registered model's directory from the object store, verified by sha256."""

from __future__ import annotations

from pathlib import Path

from shared.storage import ObjectStore, download_dir


def fetch_model_dir(
    store: ObjectStore, cache_dir: Path, version: str, manifest_key: str, manifest_sha256: str
) -> Path:
    """A local copy of model `version`, downloaded once per machine and checked against its
    manifest (a copy that fails the check is never put in place)."""
    return download_dir(store, manifest_key, manifest_sha256, Path(cache_dir) / version)
