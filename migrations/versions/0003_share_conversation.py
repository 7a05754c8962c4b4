"""shares with an id of their own: the conversation they were stored from

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

With ``[shares] separate_ids = true`` a share's id is not the conversation's id; the
conversation's id is kept beside it (unique: one share per conversation, replaced when the
conversation is stored again). Existing shares keep NULL there: their id is the
conversation's, as in the original.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shares") as batch:
        batch.add_column(sa.Column("conversation_id", sa.String(64), nullable=True))
        batch.create_index("ix_shares_conversation_id", ["conversation_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("shares") as batch:
        batch.drop_index("ix_shares_conversation_id")
        batch.drop_column("conversation_id")
