"""models.serving: how a model is served on a CPU (its ONNX export's parity checks and
the variant chosen, from onnx/serving.json), shown with the model

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("models", sa.Column("serving", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("models", "serving")
