"""SLA clocks on tickets (due moments, indexed, and the state to pause and restart them) and
sla_notices: one row per reminder or escalation sent, unique per clock run

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DUE = ("first_response_due_at", "update_due_at", "solution_due_at")


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        for name in _DUE:
            batch.add_column(sa.Column(name, sa.DateTime(), nullable=True))
            batch.create_index(f"ix_tickets_{name}", [name])
        for name in ("first_responded_at", "update_started_at", "solution_paused_at",
                     "status_changed_at"):
            batch.add_column(sa.Column(name, sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("solution_paused_minutes", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("sla_basis", sa.String(120), nullable=True))
        batch.add_column(sa.Column("sla_outcome", sa.JSON(), nullable=False,
                                   server_default=sa.text("'{}'")))
    op.create_table(
        "sla_notices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("ticket_id", sa.Integer(),
                  sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("clock", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("ticket_id", "clock", "kind", "due_at"),
    )
    op.create_index("ix_sla_notices_ticket_id", "sla_notices", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_sla_notices_ticket_id", "sla_notices")
    op.drop_table("sla_notices")
    with op.batch_alter_table("tickets") as batch:
        for name in ("sla_outcome", "sla_basis", "solution_paused_minutes", "status_changed_at",
                     "solution_paused_at", "update_started_at", "first_responded_at"):
            batch.drop_column(name)
        for name in _DUE:
            batch.drop_index(f"ix_tickets_{name}")
            batch.drop_column(name)
