"""ticket_statistics becomes the one source of reports (issue 17): a row per ticket, kept
current while the ticket lives (linked by `ticket_id`, cleared on deletion), with channel,
tags, reopen count and the business-minute durations. Existing tickets get their rows from
`postdesk report rebuild` (run by `postdesk init` for tickets without one): the durations need
the configured calendars, which a migration does not have.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ticket_statistics") as batch:
        batch.add_column(sa.Column("ticket_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("channel", sa.String(16), nullable=True))
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))
        batch.add_column(sa.Column("first_response_minutes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("resolution_minutes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("reopens", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.alter_column("deleted_at", existing_type=sa.DateTime(), nullable=True)
        batch.create_index("ix_ticket_statistics_ticket_id", ["ticket_id"], unique=True)


def downgrade() -> None:
    op.execute("DELETE FROM ticket_statistics WHERE deleted_at IS NULL")
    with op.batch_alter_table("ticket_statistics") as batch:
        batch.drop_index("ix_ticket_statistics_ticket_id")
        batch.alter_column("deleted_at", existing_type=sa.DateTime(), nullable=False)
        for name in ("reopens", "resolution_minutes", "first_response_minutes", "tags",
                     "channel", "ticket_id"):
            batch.drop_column(name)
