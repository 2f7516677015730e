"""the durable job queue: attempts, leases, progress, cancellation; batches; supervised services

* ``jobs``: attempts and the most allowed, progress (0-1) and its message, the result a job
  reported, its exit code, who queued it, the lease (holder, expiry, heartbeat), the worker,
  executor and process group of the latest attempt, a retry's back-off (``not_before``),
  cancellation requests (when, by whom), and the item of its batch (``batch_id`` now
  references ``batches``);
* ``batches``: a parent of one child job per item (legacy ``batch_jobs``);
* ``services``: the streaming service's desired state, config and last reported status.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsa110.db.types import UtcDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("n_items", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("cancelled_at", UtcDateTime(), nullable=True),
        sa.Column("cancelled_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    op.create_index(op.f("ix_batches_created_at"), "batches", ["created_at"], unique=False)
    op.create_index(op.f("ix_batches_kind"), "batches", ["kind"], unique=False)
    op.create_table(
        "services",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("desired", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("config_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("generation", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=True),
        sa.Column("running_generation", sa.Integer(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("restarts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_exit_code", sa.Integer(), nullable=True),
        sa.Column("last_exit_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_services")),
    )
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("max_attempts", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("progress", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("progress_message", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("result", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("exit_code", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("created_by", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("not_before", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("worker", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("executor", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("process_group", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cancel_requested_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("cancel_requested_by", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("batch_item", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_jobs_batch_id_batches"), "batches", ["batch_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index(op.f("ix_jobs_batch_id"), ["batch_id"], unique=False)
    # Jobs queued before the queue existed ran in no worker; they may run once.
    op.execute("UPDATE jobs SET max_attempts = 1")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index(op.f("ix_jobs_batch_id"))
        batch_op.drop_constraint(op.f("fk_jobs_batch_id_batches"), type_="foreignkey")
        for name in (
            "batch_item",
            "cancel_requested_by",
            "cancel_requested_at",
            "process_group",
            "executor",
            "worker",
            "heartbeat_at",
            "lease_expires_at",
            "lease_owner",
            "not_before",
            "created_by",
            "exit_code",
            "result",
            "progress_message",
            "progress",
            "max_attempts",
            "attempts",
        ):
            batch_op.drop_column(name)
    op.drop_table("services")
    op.drop_index(op.f("ix_batches_kind"), table_name="batches")
    op.drop_index(op.f("ix_batches_created_at"), table_name="batches")
    op.drop_table("batches")
