"""legacy import bookkeeping: high-water marks, legacy keys, sources awaiting a recompute

* ``legacy_import_state``: per legacy file and table, the largest rowid and change time
  imported (the import resumes from them; ``--follow`` polls above them);
* ``legacy_keys``: which of our rows each legacy integer id became (images, jobs, batches,
  candidates, mosaics), so importing twice changes nothing;
* ``legacy_dirty_sources``: sources whose metrics still need a recompute after a bulk
  import of measurements (written with the measurements, cleared by the recompute).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsa110.db.types import UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "legacy_import_state",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("last_rowid", sa.BigInteger(), nullable=False),
        sa.Column("last_changed", sa.Float(), nullable=True),
        sa.Column("rows_imported", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "table_name", name=op.f("pk_legacy_import_state")),
    )
    op.create_table(
        "legacy_keys",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("legacy_key", sa.String(length=512), nullable=False),
        sa.Column("target_pk", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "legacy_key", name=op.f("pk_legacy_keys")),
    )
    op.create_index(op.f("ix_legacy_keys_kind_target_pk"), "legacy_keys", ["kind", "target_pk"], unique=False)
    op.create_table(
        "legacy_dirty_sources",
        sa.Column("source_pk", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_pk"],
            ["sources.id"],
            name=op.f("fk_legacy_dirty_sources_source_pk_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_pk", name=op.f("pk_legacy_dirty_sources")),
    )


def downgrade() -> None:
    op.drop_table("legacy_dirty_sources")
    op.drop_index(op.f("ix_legacy_keys_kind_target_pk"), table_name="legacy_keys")
    op.drop_table("legacy_keys")
    op.drop_table("legacy_import_state")
