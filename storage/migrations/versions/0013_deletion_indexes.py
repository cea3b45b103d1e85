"""indexes on the columns that point at a ticket without one (tickets.linked_ticket_id,
inbox.ticket_id, outbox.ticket_id): deleting a ticket updates and checks them, and without an
index each deletion read the whole of three tables that only grow; and on participants.email,
which deletion, export and erasure look a person up by

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_tickets_linked_ticket_id", "tickets", "linked_ticket_id"),
    ("ix_inbox_ticket_id", "inbox", "ticket_id"),
    ("ix_outbox_ticket_id", "outbox", "ticket_id"),
    ("ix_participants_email", "participants", "email"),  # a person's tickets, by address
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
