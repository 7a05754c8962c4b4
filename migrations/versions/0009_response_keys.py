"""Idempotency keys of POST /v1/responses: a repeat with the same key is answered from here

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "response_keys",
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "key", name="pk_response_keys"),
    )
    op.create_index("ix_response_keys_expires_at", "response_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_response_keys_expires_at", table_name="response_keys")
    op.drop_table("response_keys")
