"""job attempts and a database-enforced status machine: each claim of a job is a numbered
attempt (a fencing token its worker's writes carry); statuses are checked, and a final
status (succeeded, failed, cancelled) can never change again

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "'queued', 'running', 'succeeded', 'failed', 'cancelling', 'cancelled'"
FINAL = "'succeeded', 'failed', 'cancelled'"


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attempt", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.create_check_constraint(op.f("ck_jobs_status_known"), f"status IN ({STATUSES})")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION jobs_final_is_final() RETURNS trigger AS $$
            BEGIN
                IF OLD.status IN ({FINAL}) AND NEW.status IS DISTINCT FROM OLD.status THEN
                    RAISE EXCEPTION 'job % is % and cannot become %', OLD.id, OLD.status,
                        NEW.status USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER jobs_final_is_final BEFORE UPDATE OF status ON jobs "
            "FOR EACH ROW EXECUTE FUNCTION jobs_final_is_final()"
        )
    else:
        op.execute(
            f"""
            CREATE TRIGGER jobs_final_is_final BEFORE UPDATE OF status ON jobs
            FOR EACH ROW WHEN OLD.status IN ({FINAL}) AND NEW.status != OLD.status
            BEGIN
                SELECT RAISE(ABORT, 'a finished job cannot change its status');
            END
            """
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS jobs_final_is_final ON jobs")
        op.execute("DROP FUNCTION IF EXISTS jobs_final_is_final()")
    else:
        op.execute("DROP TRIGGER IF EXISTS jobs_final_is_final")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_jobs_status_known"), type_="check")
        batch_op.drop_column("attempt")
