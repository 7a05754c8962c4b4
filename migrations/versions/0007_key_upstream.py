"""upstream API keys added through the admin API name their upstream ([[upstreams]] name)

Rows stored before this revision keep NULL: they were added to the first upstream listed, and
they stay there (``KeyRepository.all`` reads NULL as "the first upstream").

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("upstream_keys", sa.Column("upstream", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("upstream_keys") as batch:
        batch.drop_column("upstream")
