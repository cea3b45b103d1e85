"""tickets.closed_at: when a ticket became `closed` (final: a later reply opens a linked
ticket); deletion periods with the trigger `closed` count from it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("closed_at", sa.DateTime(), nullable=True))
        batch.create_index("ix_tickets_closed_at", ["closed_at"])
    op.execute(
        "UPDATE tickets SET closed_at = COALESCE(resolved_at, updated_at) WHERE status = 'closed'"
    )


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_closed_at")
        batch.drop_column("closed_at")
