"""Alembic migrations of the service schema.

Run by `ner api`, `ner serve` and `alembic upgrade head`.
"""
