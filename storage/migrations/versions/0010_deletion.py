"""ticket_statistics, deletion_records, erasure_requests: deletion periods and erasure requests
(issue 16). A deleted ticket leaves an anonymous statistics row (reports stay right) and a
deletion record (the proof for an auditor: which ticket, which rule, how much, no content);
an erasure request is recorded under a keyed hash of the address, never the address

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_statistics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=100), nullable=True),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("first_response_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("articles", sa.Integer(), nullable=False),
        sa.Column("sla_outcome", sa.JSON(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_statistics_created_at", "ticket_statistics", ["created_at"])
    op.create_table(
        "deletion_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_ref", sa.String(length=40), nullable=False),
        sa.Column("queue", sa.String(length=100), nullable=True),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("period", sa.String(length=40), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_deletion_records_deleted_at", "deletion_records", ["deleted_at"])
    op.create_table(
        "erasure_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_erasure_requests_subject_hash", "erasure_requests", ["subject_hash"])


def downgrade() -> None:
    op.drop_index("ix_erasure_requests_subject_hash", "erasure_requests")
    op.drop_table("erasure_requests")
    op.drop_index("ix_deletion_records_deleted_at", "deletion_records")
    op.drop_table("deletion_records")
    op.drop_index("ix_ticket_statistics_created_at", "ticket_statistics")
    op.drop_table("ticket_statistics")
