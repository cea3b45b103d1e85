"""attachments: blob (the HMAC address of the sealed bytes), text and text_state (the redacted
text extracted from the file, searchable)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("blob", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("text", sa.Text(), nullable=True))
        batch.add_column(sa.Column("text_state", sa.String(length=16), nullable=False,
                                   server_default="none"))


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("text_state")
        batch.drop_column("text")
        batch.drop_column("blob")
