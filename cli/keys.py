"""`ner keys create|list|revoke`: API keys in the service's database (NER_DATABASE_URL).

The token is printed once, by `create`, on stdout alone (so `TOKEN=$(ner keys create ...)`
works); the database keeps only its SHA-256 (shared/services/keys.py), so nothing can show
it again. `list` shows ids, names, scopes, dates and each token's first characters.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from api.server import migrate_or_exit
from shared.db import ApiKey, make_engine, make_session_factory, session_scope
from shared.services import keys
from shared.settings import get_settings


def _sessions() -> Any:
    settings = get_settings()
    migrate_or_exit(settings)  # the first key may come before the API's first start
    return make_session_factory(make_engine(settings.database_url))


def _public(row: ApiKey) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "scopes": row.scopes,
        "created_at": when(row.created_at),
        "last_used_at": when(row.last_used_at),
        "revoked_at": when(row.revoked_at),
    }


def cmd_create(args: argparse.Namespace) -> int:
    with session_scope(_sessions()) as session:
        row, token = keys.create_key(session, args.name, args.scopes.split(","))
        shown = _public(row)
    print(token)
    print(
        f"created API key {shown['id']} ({shown['name']!r}, scopes: {', '.join(shown['scopes'])})."
        " The token above is shown only this once: keep it now. "
        "Send it as 'Authorization: Bearer <token>'.",
        file=sys.stderr,
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with session_scope(_sessions()) as session:
        rows = [_public(r) for r in keys.list_keys(session)]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    if not rows:
        print("no API keys (`ner keys create --name NAME --scopes predict,train` makes one)")
        return 0
    columns = ("id", "name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    table = [[", ".join(r[c]) if c == "scopes" else (r[c] or "-") for c in columns] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in table)) for i, c in enumerate(columns)]
    for line in [list(columns), *table]:
        print("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with session_scope(_sessions()) as session:
        row = keys.revoke_key(session, args.id)
        shown = _public(row)
    print(f"revoked API key {shown['id']} ({shown['name']!r}) at {shown['revoked_at']}")
    return 0
