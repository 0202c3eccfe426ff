"""jobs submitted to the workers (the feeder and reaper leave embedded renders alone);
stitch leases

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 09:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # idempotent: development builds of 0003 already had these columns
    existing = sa.inspect(op.get_bind())
    if "distributed" not in {c["name"] for c in existing.get_columns("jobs")}:
        with op.batch_alter_table("jobs") as batch_op:
            batch_op.add_column(
                sa.Column("distributed", sa.Boolean(), server_default=sa.false(), nullable=False)
            )
    if "stitch_lease_until_ms" not in {c["name"] for c in existing.get_columns("chapters")}:
        with op.batch_alter_table("chapters") as batch_op:
            batch_op.add_column(sa.Column("stitch_lease_until_ms", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chapters") as batch_op:
        batch_op.drop_column("stitch_lease_until_ms")
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("distributed")
