"""inbox_conversation, inbound_messages, ticket_number_seq: several instances on one
PostgreSQL keep a conversation's mails in order, store a mail delivered twice once, and take
ticket numbers without a lock held across a batch

- inbox_conversation (key, inbox_id): the conversation keys of waiting inbox rows; a row is
  not claimed while an earlier row with a shared key is queued or processing.
- inbound_messages (message_id): one row per inbound Message-ID, inserted with ON CONFLICT DO
  NOTHING in the worker's transaction; filled here from the inbound articles stored so far.
- ticket_number_seq (PostgreSQL only): ticket numbers from a sequence, which locks no row and
  is never rolled back (numbers may have gaps there); it starts after the highest number
  taken so far. SQLite keeps the counter row (one writer, consecutive numbers).

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQUENCE = "ticket_number_seq"


def upgrade() -> None:
    op.create_table(
        "inbox_conversation",
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["inbox_id"], ["inbox.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key", "inbox_id"),
    )
    op.create_index(
        "ix_inbox_conversation_inbox_id", "inbox_conversation", ["inbox_id"], unique=False
    )
    op.create_table(
        "inbound_messages",
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["inbox_id"], ["inbox.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.execute(
        "INSERT INTO inbound_messages (message_id, inbox_id) "
        "SELECT message_id, MIN(inbox_id) FROM articles "
        "WHERE direction = 'in' AND message_id IS NOT NULL GROUP BY message_id"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE SEQUENCE {SEQUENCE} AS BIGINT")
        op.execute(
            f"SELECT setval('{SEQUENCE}', GREATEST("
            "(SELECT COALESCE(MAX(value), 0) FROM counters WHERE name = 'ticket'), "
            "(SELECT COALESCE(MAX(number), 0) FROM tickets)) + 1, false)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # the counter row takes over again after the highest number handed out
        op.execute(
            "UPDATE counters SET value = GREATEST(value, "
            f"(SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM {SEQUENCE}),"
            " (SELECT COALESCE(MAX(number), 0) FROM tickets)) WHERE name = 'ticket'"
        )
        op.execute(f"DROP SEQUENCE {SEQUENCE}")
    op.drop_table("inbound_messages")
    op.drop_index("ix_inbox_conversation_inbox_id", table_name="inbox_conversation")
    op.drop_table("inbox_conversation")
