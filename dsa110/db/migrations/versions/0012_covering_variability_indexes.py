"""covering (metric, n_epochs) indexes for the variability filters

The source filters combine ``nEpochsMin`` with every variability and flux minimum
(``dsa110.db.filters.SourceFilter``). With one-column indexes SQLite answered
``eta >= x AND n_epochs >= k`` from ``ix_sources_n_epochs`` (which matches nearly every
row) and read each row to test eta: a count cost grew with the table. A ``(metric,
n_epochs)`` index answers the range on the metric and the n_epochs test from the index
alone, and still leads with the metric, so sorts and one-filter counts use it as before.
Each replaces the metric's one-column index: no more indexes for ingest to maintain.

Revision ID: 0012
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0014"
branch_labels = None
depends_on = None

METRICS = ("mean_flux_jy", "eta", "v", "chi2_nu", "sigma_deviation", "max_snr")


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        for name in METRICS:
            batch_op.drop_index(f"ix_sources_{name}")
            batch_op.create_index(f"ix_sources_{name}_n_epochs", [name, "n_epochs"], unique=False)
    op.execute("ANALYZE sources")


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        for name in METRICS:
            batch_op.drop_index(f"ix_sources_{name}_n_epochs")
            batch_op.create_index(f"ix_sources_{name}", [name], unique=False)
