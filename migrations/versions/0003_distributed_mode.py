"""distributed mode: priorities, fan-in counters, leases, retry backoff, partial jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COUNT = "(SELECT count(*) FROM segments s WHERE s.chapter_id = chapters.id{})"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(
            sa.Column("allow_partial", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("started_at_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("finished_at_ms", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("chapters") as batch_op:
        for name in ("segments_total", "segments_done", "segments_failed"):
            batch_op.add_column(sa.Column(name, sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("stitch_enqueued_at_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("gaps", sa.JSON(), nullable=True))
    with op.batch_alter_table("segments") as batch_op:
        batch_op.add_column(sa.Column("retries", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("not_before_ms", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("queued_at_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("lease_until_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("finished_at_ms", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_segments_status", ["status"], unique=False)
    # chapters made before this revision get their counters from their segments
    total = _COUNT.format("")
    done = _COUNT.format(" AND s.status = 'done'")
    failed = _COUNT.format(" AND s.status = 'failed'")
    op.execute(
        f"UPDATE chapters SET segments_total = {total}, segments_done = {done}, "
        f"segments_failed = {failed}"
    )


def downgrade() -> None:
    with op.batch_alter_table("segments") as batch_op:
        batch_op.drop_index("ix_segments_status")
        for name in (
            "finished_at_ms",
            "lease_until_ms",
            "queued_at_ms",
            "not_before_ms",
            "retries",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("chapters") as batch_op:
        for name in (
            "gaps",
            "stitch_enqueued_at_ms",
            "segments_failed",
            "segments_done",
            "segments_total",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("jobs") as batch_op:
        for name in ("finished_at_ms", "started_at_ms", "allow_partial", "priority"):
            batch_op.drop_column(name)
