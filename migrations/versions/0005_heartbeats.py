"""heartbeats: workers and beat as last seen, and the lease under which one worker feeds
and reaps when no beat runs

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "heartbeats",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("heartbeats")
