"""PostgreSQL: source indexes in the graph's descending order, ``DESC NULLS LAST, id DESC``

The graph orders sources by a nullable metric as ``metric DESC NULLS LAST, id DESC``
(``dsa110.db.filters.Ordering``). A PostgreSQL btree built ascending, scanned backwards, yields
``DESC NULLS FIRST``, so the planner sorted the whole table for every descending page (the
``nested`` request of bench/scale.py, 4.7x SQLite). An index declared in the emitted order is
read forwards and stops after the page. SQLite keeps NULLs lowest in its indexes, so its
backward scan already matches, and it does not accept NULLS in index definitions: the indexes
are PostgreSQL-only (``tables.SOURCE_DESC_NULLS_LAST``, ``ddl_if(dialect="postgresql")``).

Revision ID: 0015
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0012"
branch_labels = None
depends_on = None

COLUMNS = ("catalog_flux_jy", "mean_flux_jy", "eta", "v", "chi2_nu", "sigma_deviation", "last_mjd", "max_snr")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in COLUMNS:
        op.create_index(
            f"ix_sources_{name}_desc_nulls_last",
            "sources",
            [sa.text(f"{name} DESC NULLS LAST"), sa.text("id DESC")],
            unique=False,
        )
    op.execute("ANALYZE sources")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in COLUMNS:
        op.drop_index(f"ix_sources_{name}_desc_nulls_last", table_name="sources")
