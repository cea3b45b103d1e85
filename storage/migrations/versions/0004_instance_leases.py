"""inbox.lease_until: a claim is an instance's lease, renewed while it works, so another
instance takes a row over only once the lease ran out (or its instance is gone); outbox.claimed_by:
the instance sending a row, so a restarted or surviving instance re-sends at once what a dead one
left `sending`; cluster_facts:
values every instance of one database must agree on (the server secret's fingerprint)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=100), nullable=True))
    op.create_table(
        "cluster_facts",
        sa.Column("name", sa.String(length=50), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cluster_facts")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_column("lease_until")
