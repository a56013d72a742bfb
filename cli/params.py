"""Command-line flags derived from a pydantic model: `ner train`'s options are the fields of
the core's `TrainConfig` (its one declaration of training parameters), with their help text
and defaults, so the CLI and the API (`POST /jobs/train`) always offer the same options."""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError


class BadParameters(ValueError):
    """The flags broke a field's bounds: the message names each flag and what is wrong."""


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def _argument(annotation: Any) -> dict[str, Any]:
    """argparse's converter (and choices) for a field: int for `int | None`, a choice for a
    Literal, true/false for a bool."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0]
    if typing.get_origin(annotation) is typing.Literal:
        return {"type": str, "choices": list(typing.get_args(annotation))}
    if annotation is bool:
        return {"type": _bool, "metavar": "{true,false}"}
    if annotation in (int, float, str):
        return {"type": annotation}
    raise TypeError(f"no command-line type for {annotation!r}")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_model_options(
    parser: argparse.ArgumentParser, model: type[BaseModel], title: str = "options"
) -> None:
    """One `--flag` per field. The default is left to the model (None here), so a flag that
    is not given keeps the model's own default."""
    group = parser.add_argument_group(title)
    for name, field in model.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "" if default is None else f" (default: {default})"
        group.add_argument(
            flag(name),
            dest=name,
            default=None,
            **_argument(field.annotation),
            help=f"{field.description or name}{shown}",
        )


def model_from_args(model: type[BaseModel], args: argparse.Namespace) -> Any:
    given = {
        name: getattr(args, name)
        for name in model.model_fields
        if getattr(args, name, None) is not None
    }
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ", ".join(flag(str(loc)) for loc in error["loc"]) or "options"
            problems.append(f"{where}: {error['msg']}")
        raise BadParameters("; ".join(problems)) from None
