"""`ner api`: migrate the database, then serve the API with uvicorn."""

from __future__ import annotations

import logging

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from api.app import create_app
from shared.migrate import upgrade_to_head
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)


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


def run_api(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run pending migrations, then serve until SIGTERM / Ctrl-C."""
    configure_logging()
    settings = get_settings()
    migrate_or_exit(settings)
    log.info("serving the API on http://%s:%d (docs at /docs)", host, port)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", access_log=False)
