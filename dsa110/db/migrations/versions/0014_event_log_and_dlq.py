"""the recent-events log (capped) and operators' resolutions of dead-letter items

Revision ID: 0014
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsa110.db.types import UtcDateTime

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(length=40), nullable=False),
        sa.Column("channel", sa.String(length=48), nullable=False),
        sa.Column("origin", sa.String(length=128), nullable=False),
        sa.Column("published_at", UtcDateTime(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_log")),
        sa.UniqueConstraint("event_key", name=op.f("uq_event_log_event_key")),
    )
    op.create_index(op.f("ix_event_log_channel_id"), "event_log", ["channel", "id"], unique=False)
    op.create_index(op.f("ix_event_log_published_at"), "event_log", ["published_at"], unique=False)
    op.create_table(
        "dlq_resolutions",
        sa.Column("item_key", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("item_key", name=op.f("pk_dlq_resolutions")),
    )


def downgrade() -> None:
    op.drop_table("dlq_resolutions")
    op.drop_index(op.f("ix_event_log_published_at"), table_name="event_log")
    op.drop_index(op.f("ix_event_log_channel_id"), table_name="event_log")
    op.drop_table("event_log")
