"""PostgreSQL: exact whole-table counts of ``sources`` and ``images`` kept by triggers

An unfiltered ``totalCount`` visited every index entry on PostgreSQL (7.6 ms for 10^5
sources, ``rest_sources_search`` of bench/scale.py 1.45x SQLite, whose count walks index
pages). Statement-level triggers now add each statement's inserted and deleted rows to
``row_counts`` and the count is their sum (``dsa110.db.row_counts``). The table exists on
SQLite too and stays empty there.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsa110.db.row_counts import COUNTED_TABLES, FUNCTIONS, install_sql, uninstall_sql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "row_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_row_counts")),
    )
    op.create_index(op.f("ix_row_counts_table_name"), "row_counts", ["table_name"], unique=False)
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in COUNTED_TABLES:
        for statement in install_sql(table):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in COUNTED_TABLES:
            for statement in uninstall_sql(table):
                op.execute(statement)
        for name in (*FUNCTIONS, "dsa110_row_count_add"):
            op.execute(f"DROP FUNCTION IF EXISTS {name}")
    op.drop_index(op.f("ix_row_counts_table_name"), table_name="row_counts")
    op.drop_table("row_counts")
