"""system_metrics: the host each sample describes

Processes on several hosts can share one database; each host's sampler keeps its own
series (and its own retention window). Rows stored before this have host ''.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN with a literal default (no table rebuild on SQLite).
    op.add_column("system_metrics", sa.Column("host", sa.String(length=255), server_default="", nullable=False))
    op.create_index(
        op.f("ix_system_metrics_host_sampled_at"), "system_metrics", ["host", "sampled_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_system_metrics_host_sampled_at"), table_name="system_metrics")
    with op.batch_alter_table("system_metrics") as batch_op:
        batch_op.drop_column("host")
