"""PostgreSQL: the exact count of ``groups`` kept by triggers too

``/api/health`` asks for ``groups(first: 0) { totalCount }`` (the database is reachable
and answers). SQLite counts a table by walking its smallest index's pages (0.005 ms for
8,640 groups); PostgreSQL visits every index entry (0.85 ms, 12,384 groups of the 10^5
demo 1.2 ms): a health probe, the cheapest request a load balancer sends, cost 1.2-1.4x
SQLite's. ``groups`` joins ``sources`` and ``images`` among the trigger-counted tables
(``dsa110.db.row_counts``). Installing is idempotent (drop, then create), so a database
whose 0017 already counted ``groups`` is left counting it once.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from alembic import op

from dsa110.db.row_counts import install_sql, uninstall_sql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TABLE = "groups"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in (*uninstall_sql(TABLE), *install_sql(TABLE)):
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in uninstall_sql(TABLE):
        op.execute(statement)
    op.execute(f"DELETE FROM row_counts WHERE table_name = '{TABLE}'")
