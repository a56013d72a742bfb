"""`ner api`: migrate the database, then serve the API with uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from api import processes
from api.metrics import shared_between_processes
from shared.db import make_engine, make_session_factory, session_scope
from shared.migrate import upgrade_to_head
from shared.services import keys
from shared.settings import MAX_API_WORKERS, Settings, get_settings

log = logging.getLogger(__name__)


def workers_argument(text: str) -> int:
    """`--workers` (argparse type): 1 to MAX_API_WORKERS processes, as the setting allows."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_API_WORKERS:
        raise argparse.ArgumentTypeError(f"expected 1 to {MAX_API_WORKERS} processes, not {text!r}")
    return value


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def migrate_or_exit(settings: Settings) -> None:
    """Bring the schema to the code's newest migration, or stop with a readable reason."""
    try:
        upgrade_to_head(settings.database_url)
    except SQLAlchemyError as exc:
        raise SystemExit(
            f"cannot migrate the database at {_safe_url(settings.database_url)}: {exc}\n"
            "check NER_DATABASE_URL and that the server is up"
        ) from exc


def _safe_url(url: str) -> str:

    return make_url(url).render_as_string(hide_password=True)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def keys_configured(settings: Settings) -> bool:
    """NER_API_KEYS, or any key ever made with `ner keys create` (revoked ones too: the
    API keeps authentication on for them, so it is not open either)."""
    if settings.api_key_list:
        return True
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            return keys.any_keys(session)
    finally:
        engine.dispose()


def refuse_open_listener(host: str, settings: Settings, *, insecure: bool) -> None:
    """Exit 2 rather than serve every route, unauthenticated, to whoever can reach `host`."""
    if is_loopback(host) or keys_configured(settings):
        return
    if insecure:
        log.warning("--insecure: serving on %s with no API key; every route is open", host)
        return
    print(
        f"refusing to listen on {host} with no API key configured: anyone who can reach it "
        "could use every route.\n"
        "  create a key:  ner keys create --name NAME --scopes admin   (or set NER_API_KEYS)\n"
        "  or listen on 127.0.0.1, or pass --insecure to serve without authentication",
        file=sys.stderr,
    )
    raise SystemExit(2)


def run_api(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    insecure: bool = False,
    workers: int | None = None,
) -> None:
    """Run pending migrations, then serve until SIGTERM / Ctrl-C, in `workers` processes
    (default: the `api_workers` setting)."""
    configure_logging()
    settings = get_settings()
    workers = workers or settings.api_workers  # a given count comes from workers_argument
    migrate_or_exit(settings)
    refuse_open_listener(host, settings, insecure=insecure)
    log.info("serving the API on http://%s:%d (docs at /docs), %d process(es)", host, port, workers)
    # access_log=False: an access line is one more place a query string could carry data.
    if workers == 1:
        from api.app import create_app  # here: a parent of several processes does not need it

        uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=False)
        return
    app = "api.app:create_app"  # each process builds the app from the same environment
    with shared_between_processes():
        if processes.supported():
            config = uvicorn.Config(
                app, factory=True, host=host, port=port, log_level="info", access_log=False
            )
            status = processes.serve(config, workers)
        else:  # no SO_REUSEPORT: uvicorn's workers, one shared socket (api/processes.py)
            uvicorn.run(
                app,
                factory=True,
                workers=workers,
                host=host,
                port=port,
                log_level="info",
                access_log=False,
            )
            status = 0
    if status:
        raise SystemExit(status)
