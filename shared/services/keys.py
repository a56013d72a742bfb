"""API keys: created, listed and revoked by `ner keys`, held as hashes, checked per request.

A token is `ner_` and 43 URL-safe characters from `secrets` (256 random bits). The database
keeps its SHA-256, never the token. A slow password hash (bcrypt, argon2) exists to make
guessing a *low-entropy* secret from its hash expensive; a 256-bit random token cannot be
guessed whatever the hash costs, and SHA-256 is preimage-resistant, so a leaked table
gives nobody a usable key. It is what GitHub and others do for their tokens, and it keeps
each check a microsecond, not the tens of milliseconds a slow hash would add to every
request.

A presented token is looked up by its prefix (not secret: `ner keys list` shows it), and
the hashes are compared with `hmac.compare_digest`, so how long a check takes says nothing
about how much of a hash matched. `NER_API_KEYS` keys (a quick start) are compared the
same way, every one of them, with no early exit; they hold every scope.

`KeyResolver` is the per-process check with a small TTL cache: a key revoked in the
database stops working within `api_key_cache_seconds`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from shared.db import ApiKey, session_scope, utcnow
from shared.errors import InvalidInput, NotFound, Unavailable
from shared.settings import Settings
from shared.states import ALL_SCOPES, Scope, expand_scopes

TOKEN_PREFIX = "ner_"
# `ner_` + 8 random characters: 48 bits, so two keys rarely share one (they may: the
# lookup compares every row with that prefix).
PREFIX_LENGTH = 12
TOKEN_PATTERN = re.compile(r"ner_[A-Za-z0-9_-]{43}")
NAME_MAX = 255
# last_used_at is written at most this often per key and process: a date for an operator
# deciding what to revoke, not a write on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)
# When the database does not answer, what was learnt from it this recently still counts
# (a key that worked a moment ago keeps working through a database restart); after that
# the check answers 503, never "allowed".
STALE_IF_ERROR_SECONDS = 60.0
CACHE_ENTRIES = 10_000


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def parse_scopes(scopes: Iterable[str]) -> list[Scope]:
    """Scope names as given (`predict,train`), checked, in the canonical order."""
    names = {s.strip().lower() for s in scopes if s.strip()}
    unknown = sorted(names - set(Scope.__members__))
    if unknown:
        raise InvalidInput(
            f"unknown scope(s): {', '.join(unknown)}; choose from "
            f"{', '.join(s.value for s in Scope)}"
        )
    if not names:
        raise InvalidInput(f"give at least one scope: {', '.join(s.value for s in Scope)}")
    return [s for s in Scope if s.value in names]


def create_key(session: Session, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str]:
    """A new key and its token; the token is in no row and can never be shown again."""
    name = name.strip()
    if not name or len(name) > NAME_MAX:
        raise InvalidInput(f"a key's name has 1 to {NAME_MAX} characters")
    parsed = parse_scopes(scopes)
    token = new_token()
    row = ApiKey(
        name=name,
        prefix=token[:PREFIX_LENGTH],
        hash=hash_token(token),
        scopes=[s.value for s in parsed],
    )
    session.add(row)
    session.flush()
    return row, token


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_key(session: Session, key_id: str) -> ApiKey:
    """Revoke a key (again is a no-op). The row stays, so the database still has keys and
    authentication stays on: revoking the last key never opens the service."""
    row = session.get(ApiKey, key_id.strip())
    if row is None:
        raise NotFound(f"API key {key_id} not found (`ner keys list` shows the ids)")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row


def any_keys(session: Session) -> bool:
    """True once a key was ever created, revoked ones included (fail closed)."""
    return bool(session.scalar(select(exists().select_from(ApiKey))))


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a database key (`key_id`), a settings key, or nobody."""

    name: str
    scopes: frozenset[Scope]
    key_id: str | None = None


# No key exists anywhere: authentication is off and every caller may do everything.
OPEN = Caller("anonymous (no API keys configured)", ALL_SCOPES)
SETTINGS_KEY = Caller("NER_API_KEYS", ALL_SCOPES)


def lookup(session: Session, token: str) -> Caller | None:
    """The live key this token belongs to, or None. Marks it used (coarsely)."""
    if not TOKEN_PATTERN.fullmatch(token):
        return None  # not one of ours: no query for it
    digest = hash_token(token)
    rows = session.scalars(
        select(ApiKey).where(ApiKey.prefix == token[:PREFIX_LENGTH], ApiKey.revoked_at.is_(None))
    ).all()
    found = None
    for row in rows:
        if hmac.compare_digest(row.hash, digest):
            found = row
    if found is None:
        return None
    now = utcnow()
    if found.last_used_at is None or now - found.last_used_at > LAST_USED_RESOLUTION:
        session.execute(update(ApiKey).where(ApiKey.id == found.id).values(last_used_at=now))
    return Caller(found.name, expand_scopes(found.scopes), key_id=found.id)


class _Miss:
    """The cache cannot answer without the database."""


MISS = _Miss()


class KeyResolver:
    """Token → Caller for one process: the settings keys first (no I/O), then the database
    through a TTL cache (entries keyed by the token's hash, so no token is held in memory
    longer than the request). `peek` answers from memory or says MISS; `authenticate` may
    query the database and so belongs off the event loop."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.ttl = settings.api_key_cache_seconds
        self.clock = clock
        self._settings_hashes = [hash_token(k) for k in settings.api_key_list]
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, tuple[float, Caller | None]] = OrderedDict()
        self._enabled: tuple[float, bool] | None = None

    def _settings_match(self, token: str | None) -> bool:
        if token is None or not self._settings_hashes:
            return False
        digest = hash_token(token)
        matched = False
        for known in self._settings_hashes:  # every one: no early exit
            matched |= hmac.compare_digest(known, digest)
        return matched

    def _fresh(self, entry: tuple[float, object]) -> bool:
        return self.clock() - entry[0] < self.ttl

    def peek(self, token: str | None) -> Caller | _Miss | None:
        if self._settings_match(token):
            return SETTINGS_KEY
        with self._lock:
            if not self._settings_hashes:
                enabled = self._enabled
                if enabled is None or not self._fresh(enabled):
                    return MISS
                if not enabled[1]:
                    return OPEN
            if token is None or not TOKEN_PATTERN.fullmatch(token):
                return None
            entry = self._keys.get(hash_token(token))
            if entry is None or not self._fresh(entry):
                return MISS
            return entry[1]

    def authenticate(self, token: str | None) -> Caller | None:
        """The caller, OPEN when no key exists at all, None for a missing or unknown key.
        Raises Unavailable when the database is needed, does not answer, and nothing
        learnt from it recently can stand in."""
        if self._settings_match(token):
            return SETTINGS_KEY
        if not self._settings_hashes and not self._keys_exist():
            return OPEN
        if token is None:
            return None
        return self._lookup(token)

    def _keys_exist(self) -> bool:
        with self._lock:
            cached = self._enabled
        if cached is not None and self._fresh(cached):
            return cached[1]
        try:
            with session_scope(self.sessions) as session:
                found = any_keys(session)
        except SQLAlchemyError as exc:
            if cached is not None and self.clock() - cached[0] < STALE_IF_ERROR_SECONDS:
                return cached[1]
            raise _unavailable() from exc
        with self._lock:
            self._enabled = (self.clock(), found)
        return found

    def _lookup(self, token: str) -> Caller | None:
        digest = hash_token(token)
        with self._lock:
            cached = self._keys.get(digest)
        if cached is not None and self._fresh(cached):
            return cached[1]
        try:
            with session_scope(self.sessions) as session:
                caller = lookup(session, token)
        except SQLAlchemyError as exc:
            if cached is not None and self.clock() - cached[0] < STALE_IF_ERROR_SECONDS:
                return cached[1]
            raise _unavailable() from exc
        with self._lock:
            self._keys[digest] = (self.clock(), caller)
            self._keys.move_to_end(digest)
            while len(self._keys) > CACHE_ENTRIES:
                self._keys.popitem(last=False)
        return caller


def _unavailable() -> Unavailable:
    return Unavailable("the API key cannot be checked: the database does not answer")
