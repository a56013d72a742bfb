"""outbox and job history: a job's task message is an intent committed with the job, sent
after the commit; a training job keeps its loss and validation curves

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("history", sa.JSON(), nullable=True))
    op.create_table(
        "outbox",
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("send_count", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_outbox_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_next_attempt_at"), "outbox", ["next_attempt_at"])
    # Jobs queued before this revision had their message sent directly: give each an intent,
    # already sent, so the sweeper re-sends them if the broker lost them.
    op.execute(
        "INSERT INTO outbox (job_id, task, created_at, sent_at, send_count, next_attempt_at) "
        "SELECT id, CASE type WHEN 'train' THEN 'ner.train' ELSE 'ner.predict_bulk' END, "
        "created_at, created_at, 1, created_at FROM jobs WHERE status = 'queued'"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_next_attempt_at"), table_name="outbox")
    op.drop_table("outbox")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("history")
