"""The Alembic migrations create exactly the schema the models describe."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from shared.db import Base, make_engine
from shared.migrate import pending_revisions, upgrade_to_head


def _assert_matches_models(url: str) -> None:
    engine = make_engine(url)
    try:
        assert not pending_revisions(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], diff
        tables = set(inspect(engine).get_table_names())
        assert {"datasets", "jobs", "job_documents", "job_results", "models"} <= tables
    finally:
        engine.dispose()


@pytest.mark.services
def test_postgres_schema_from_migrations(database_url: str) -> None:
    _assert_matches_models(database_url)  # the fixture ran `upgrade head` on an empty database


def test_sqlite_schema_from_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'ner.sqlite3'}"
    upgrade_to_head(url)
    upgrade_to_head(url)  # a second run has nothing to do
    _assert_matches_models(url)
