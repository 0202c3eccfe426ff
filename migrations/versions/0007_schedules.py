"""bulletin schedules and the slots they ran (each claimed once)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("base_dir", sa.Text(), nullable=False),
        sa.Column("out_dir", sa.Text(), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("cron", sa.String(120), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_slot_ms", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "schedule_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "schedule_name",
            sa.String(200),
            sa.ForeignKey("schedules.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("slot_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("audio", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_schedule_runs_slot", "schedule_runs", ["schedule_name", "slot_ms"], unique=True
    )
    op.create_index("ix_schedule_runs_schedule_name", "schedule_runs", ["schedule_name"])


def downgrade() -> None:
    op.drop_table("schedule_runs")
    op.drop_table("schedules")
