"""Alembic revision scripts, one per schema change, named by date and slug."""
