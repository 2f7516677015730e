"""Stored light-curve normalisation: ``norm_state``, ``norm_cells``, ``image_norm_factors``

Each coarse sky cell's reference set and per-image ensemble corrections, stamped with the
data they were computed from (the largest measurement id and the ``norm_state`` epoch), so a
light-curve read joins its measurements to the stored factors instead of recomputing them
(``dsa110.ops.norm_store``, issue 11). Cells are filled on first use.

Revision ID: 0016
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsa110.db.types import UtcDateTime

revision = "0016"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    state = op.create_table(
        "norm_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_norm_state")),
    )
    op.bulk_insert(state, [{"id": 1, "epoch": 0}])
    op.create_table(
        "norm_cells",
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("watermark", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("reference_pks", sa.Text(), nullable=False),
        sa.Column("computed_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("cell", name=op.f("pk_norm_cells")),
    )
    op.create_table(
        "image_norm_factors",
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("image_pk", sa.Integer(), nullable=False),
        sa.Column("factor", sa.Float(), nullable=False),
        sa.Column("factor_err", sa.Float(), nullable=False),
        sa.Column("n_ref", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell"],
            ["norm_cells.cell"],
            name=op.f("fk_image_norm_factors_cell_norm_cells"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["image_pk"],
            ["images.id"],
            name=op.f("fk_image_norm_factors_image_pk_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("cell", "image_pk", name=op.f("pk_image_norm_factors")),
    )
    op.create_index(op.f("ix_image_norm_factors_image_pk"), "image_norm_factors", ["image_pk"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_image_norm_factors_image_pk"), table_name="image_norm_factors")
    op.drop_table("image_norm_factors")
    op.drop_table("norm_cells")
    op.drop_table("norm_state")
