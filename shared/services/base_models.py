"""Which base encoders a training submitted through the API may start from.

The API runs trainings on the operator's machines, so `base_model` is not free text: a
Hugging Face name would be fetched from the network, and a path could point anywhere on
the worker's disk. Accepted: the packaged default (None or "default"), an encoder packaged
on the index (all-mpnet-base-v2, the `accurate` preset's: no network either, and the job
fails saying what to install where the worker lacks its packages), a name on the
`allowed_base_models` list, or a directory under `models_dir` (after resolving symlinks
and `..`, it must still be inside). Checked at submission, so a bad value is a 422 at
once, not a failed job later. The CLI does not come here: on the user's own machine any
name or directory is theirs to use.
"""

from __future__ import annotations

from shared.errors import InvalidInput
from shared.ner.basemodel import PACKAGED
from shared.settings import Settings

DEFAULT_NAMES = (None, "default")


def resolve_base_model(name: str | None, settings: Settings) -> str | None:
    """The value to store in the job (None: the deployment's default; a directory as its
    resolved absolute path), or InvalidInput saying what is accepted."""
    if name in DEFAULT_NAMES:
        return None
    assert name is not None
    if name in PACKAGED or name in settings.allowed_base_model_list:
        return name
    if settings.models_dir is not None and "\x00" not in name:
        root = settings.models_dir.resolve()
        candidate = (root / name).resolve()
        if candidate != root and candidate.is_relative_to(root) and candidate.is_dir():
            return str(candidate)
    raise InvalidInput(
        [
            {
                "loc": ["body", "base_model"],
                "msg": f"base model {name!r} is not allowed here; {_accepted(settings)}",
                "type": "value_error",
            }
        ]
    )


def _accepted(settings: Settings) -> str:
    parts = [
        'leave it out (or send "default") for the packaged model',
        "one of the packaged encoders: " + ", ".join(sorted(PACKAGED)),
    ]
    if settings.allowed_base_model_list:
        parts.append("one of " + ", ".join(settings.allowed_base_model_list))
    if settings.models_dir is not None:
        parts.append(f"a directory under the models folder ({settings.models_dir.name}/)")
    return ", or ".join(parts)
