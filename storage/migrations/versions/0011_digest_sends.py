"""digest_sends: one row per person and local day a morning digest was taken for, so it goes
out once whatever the restarts and instances (gateway.lifecycle.digest)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest_sends",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("tickets", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("recipient", "day"),
    )


def downgrade() -> None:
    op.drop_table("digest_sends")
