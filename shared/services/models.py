"""Fetching and loading a registered model, written once: the API's serving model, the
worker's bulk runs and promotion-time evaluation all come through `ModelCache`.

A model is fetched from the object store into a per-machine cache directory, every file
checked against the sha256 manifest (a copy that fails the check is never put in place),
then loaded as the core's `Predictor`. Loaded predictors are kept in a small LRU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.ner.runtime import release_free_memory
from shared.storage import ObjectStore, download_dir

if TYPE_CHECKING:
    from shared.db import Model
    from shared.ner import Predictor


@dataclass(frozen=True)
class ModelRef:
    """What identifies a registered model's files: its version and its manifest."""

    version: str
    manifest_key: str
    manifest_sha256: str

    @classmethod
    def of(cls, row: Model) -> ModelRef:
        return cls(row.version, row.manifest_key, row.manifest_sha256)


class ModelCache:
    def __init__(self, store: ObjectStore, cache_dir: Path, keep: int = 2) -> None:
        self.store = store
        self.cache_dir = Path(cache_dir)
        self.keep = max(1, keep)
        self._loaded: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def fetch_dir(self, ref: ModelRef) -> Path:
        """A verified local copy of the model's directory, downloaded once per machine."""
        return download_dir(
            self.store, ref.manifest_key, ref.manifest_sha256, self.cache_dir / ref.version
        )

    def predictor(self, ref: ModelRef) -> Predictor:
        """The model loaded for tagging, once per process; the `keep` most recent stay."""
        # torch loads here, with the first model, not when the service starts.
        from shared.ner import Predictor

        with self._lock:
            if ref.version in self._loaded:
                self._loaded.move_to_end(ref.version)
                return self._loaded[ref.version]
        # Loading takes seconds: done outside the lock, so a second caller of another
        # version is not held up (two callers of one version may both load it once).
        predictor = Predictor.load(self.fetch_dir(ref))
        # A download (boto3's buffers, the checksums) and a load leave tens of MB freed
        # but kept by malloc: 243 → 188 MB for the quick model fetched from S3, so an API
        # started right after a registration held 640 MB in two processes, not 540.
        release_free_memory()
        with self._lock:
            self._loaded[ref.version] = predictor
            self._loaded.move_to_end(ref.version)
            while len(self._loaded) > self.keep:
                self._loaded.popitem(last=False)
        return predictor

    def retain(self, versions: set[str]) -> None:
        """Drop every loaded model not in `versions` (those that may still be served)."""
        with self._lock:
            for version in [v for v in self._loaded if v not in versions]:
                del self._loaded[version]

    @property
    def loaded_versions(self) -> list[str]:
        with self._lock:
            return list(self._loaded)
