"""The domain's error vocabulary: what went wrong, in words the service layer can say without
knowing about HTTP. `api.errors` maps each class to one status code; the worker and the CLI
read them too. Raise these from the service layer; routes hold no try/except of their own."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base class: `detail` is what the caller is told (a string or a list of problems)."""

    def __init__(self, detail: Any) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    """The thing named does not exist."""


class Conflict(DomainError):
    """The request is valid but the thing is not in a state that allows it."""


class InvalidInput(DomainError):
    """The caller sent something malformed; `detail` says what and, for files, on which line."""


class TooLarge(DomainError):
    """The caller sent more than a limit allows."""


class Unauthorized(DomainError):
    """No credentials, or credentials that are not valid."""


class Forbidden(DomainError):
    """Valid credentials without the right to do this."""


class Unavailable(DomainError):
    """Something the request needs is not there right now (a server down, no model yet):
    trying again later can succeed. `retry_after` is a hint in seconds."""

    def __init__(self, detail: Any, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


NO_MODEL_DETAIL = (
    "no model is in production yet: train a model first: POST /datasets with a labelled "
    'file, then POST /jobs/train {"dataset_id": ...}; the first finished training is '
    "promoted automatically (or POST /models/{version}/promote)"
)
