"""File helpers of the NER core that the layers above use too (the object store's
manifests, shared/storage.py), so they are written once, here, at the bottom."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

# The folder, inside a cache, of the lock files that let one process fill an entry while
# the others wait for it (the model cache: shared/storage.py; packaged encoders: basemodel.py).
LOCKS = ".locks"


def sha256_file(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks (model weights are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """An exclusive flock on `lock_path`, between processes and threads alike (each call
    opens the file anew). Where flock does not exist, no lock: callers still write to a
    temporary place and rename, so the worst case is work done twice."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
