"""PostgreSQL: ``measurements (source_pk, mjd, id)`` instead of ``(source_pk, mjd)``

Nested pages of measurements (``sources { measurements(first: 5) }``) number each source's
measurements by ``(mjd, id)`` in a narrow window over ``(id, source_pk)`` (``loaders.pages``).
SQLite answers it from ``(source_pk, mjd)``, whose entries end with the rowid (= id); on
PostgreSQL the id is not in that index, so the window read one heap page per measurement
(2,307 pages, 10.5 ms, for the ``nested`` request of bench/scale.py on 10^5 sources). With
the id in the index it is an index-only scan. The new index replaces the old one (one index
for ingest to maintain); SQLite keeps its own.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        op.f("ix_measurements_source_pk_mjd_id"), "measurements", ["source_pk", "mjd", "id"], unique=False
    )
    op.drop_index(op.f("ix_measurements_source_pk_mjd"), table_name="measurements")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(op.f("ix_measurements_source_pk_mjd"), "measurements", ["source_pk", "mjd"], unique=False)
    op.drop_index(op.f("ix_measurements_source_pk_mjd_id"), table_name="measurements")
