"""files, QA and the product lifecycle: qa_artifacts; product publish failures; MS sizes

* ``qa_artifacts``: plots, thumbnails, notebooks and reports made for a group, an MS, an
  image or a calibration table (the legacy ``qa_artifacts`` table, linked by keys);
* ``data_products.publish_failed_at``: when the last publish attempt failed (with
  ``publish_attempts`` and ``publish_error``); ``data_products.caltable_pk``: the
  calibration table a ``caltable`` product is; ``finalized_by`` / ``published_by``: the
  identity (``key:<name>``, ``oidc:<subject>``) whose request finalized / published it;
* ``measurement_sets.size_bytes``: bytes on disk when the MS was last discovered.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsa110.db.types import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "qa_artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("group_pk", sa.Integer(), nullable=True),
        sa.Column("ms_pk", sa.Integer(), nullable=True),
        sa.Column("image_pk", sa.Integer(), nullable=True),
        sa.Column("caltable_pk", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_pk"], ["groups.id"], name=op.f("fk_qa_artifacts_group_pk_groups"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["ms_pk"],
            ["measurement_sets.id"],
            name=op.f("fk_qa_artifacts_ms_pk_measurement_sets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["image_pk"], ["images.id"], name=op.f("fk_qa_artifacts_image_pk_images"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["caltable_pk"],
            ["cal_tables.id"],
            name=op.f("fk_qa_artifacts_caltable_pk_cal_tables"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_artifacts")),
        sa.UniqueConstraint("path", name=op.f("uq_qa_artifacts_path")),
    )
    for columns in (["group_pk"], ["ms_pk"], ["image_pk"], ["caltable_pk"], ["created_at"], ["kind"]):
        op.create_index(op.f(f"ix_qa_artifacts_{columns[0]}"), "qa_artifacts", columns, unique=False)
    with op.batch_alter_table("data_products") as batch_op:
        batch_op.add_column(sa.Column("publish_failed_at", UtcDateTime(), nullable=True))
        batch_op.add_column(sa.Column("caltable_pk", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("finalized_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("published_by", sa.String(length=64), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_data_products_caltable_pk_cal_tables"),
            "cal_tables",
            ["caltable_pk"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(op.f("ix_data_products_publish_failed_at"), ["publish_failed_at"], unique=False)
        batch_op.create_index(op.f("ix_data_products_caltable_pk"), ["caltable_pk"], unique=False)
        batch_op.create_index(op.f("ix_data_products_ms_pk"), ["ms_pk"], unique=False)
    op.add_column("measurement_sets", sa.Column("size_bytes", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("measurement_sets") as batch_op:
        batch_op.drop_column("size_bytes")
    with op.batch_alter_table("data_products") as batch_op:
        batch_op.drop_index(op.f("ix_data_products_ms_pk"))
        batch_op.drop_index(op.f("ix_data_products_caltable_pk"))
        batch_op.drop_index(op.f("ix_data_products_publish_failed_at"))
        batch_op.drop_constraint(op.f("fk_data_products_caltable_pk_cal_tables"), type_="foreignkey")
        batch_op.drop_column("published_by")
        batch_op.drop_column("finalized_by")
        batch_op.drop_column("caltable_pk")
        batch_op.drop_column("publish_failed_at")
    for column in ("kind", "created_at", "caltable_pk", "image_pk", "ms_pk", "group_pk"):
        op.drop_index(op.f(f"ix_qa_artifacts_{column}"), table_name="qa_artifacts")
    op.drop_table("qa_artifacts")
