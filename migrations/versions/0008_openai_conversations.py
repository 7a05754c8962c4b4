"""OpenAI's Conversations API (/v1/conversations and their items) and background response runs

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "openai_conversations",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_openai_conversations"),
        sa.UniqueConstraint("id", name="uq_openai_conversations_id"),
    )
    op.create_index("ix_openai_conversations_owner", "openai_conversations", ["owner"])
    op.create_table(
        "openai_conversation_items",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("item", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_openai_conversation_items"),
    )
    op.create_index(
        "ix_openai_conversation_items_conversation_id", "openai_conversation_items", ["conversation_id"]
    )
    op.create_table(
        "response_runs",
        sa.Column("response_id", sa.String(64), nullable=False),
        sa.Column("instance", sa.String(64), nullable=False),
        sa.Column("heartbeat_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("response_id", name="pk_response_runs"),
    )
    op.create_index("ix_response_runs_heartbeat_at", "response_runs", ["heartbeat_at"])


def downgrade() -> None:
    op.drop_index("ix_response_runs_heartbeat_at", table_name="response_runs")
    op.drop_table("response_runs")
    op.drop_index("ix_openai_conversation_items_conversation_id", table_name="openai_conversation_items")
    op.drop_table("openai_conversation_items")
    op.drop_index("ix_openai_conversations_owner", table_name="openai_conversations")
    op.drop_table("openai_conversations")
