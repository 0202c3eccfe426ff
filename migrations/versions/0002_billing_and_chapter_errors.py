"""billed characters per segment, the reason a chapter failed

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 20:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # idempotent: development builds of 0001 already had these columns
    existing = sa.inspect(op.get_bind())
    if "error" not in {c["name"] for c in existing.get_columns("chapters")}:
        with op.batch_alter_table("chapters") as batch_op:
            batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
    if "billed_chars" not in {c["name"] for c in existing.get_columns("segments")}:
        with op.batch_alter_table("segments") as batch_op:
            batch_op.add_column(sa.Column("billed_chars", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("segments") as batch_op:
        batch_op.drop_column("billed_chars")
    with op.batch_alter_table("chapters") as batch_op:
        batch_op.drop_column("error")
