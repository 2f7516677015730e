"""ESE tracker state: what the source's last look found, for the next look's earlier search

``ese_source_state.last_look``: the last full test's ``dsa110.science.ese_tracker.LookMemo``
as JSON (its curve's fingerprint and the search's detections). The persistence look asked
for ``PERSIST_DAYS`` after a look that found something searches the curve as it was then;
when that curve is exactly the last look's, its detections are reused instead of searched
again. NULL: nothing remembered (rows written before this revision, a test that failed):
the earlier search runs, with the same outcome.

Plain add/drop column, not batch mode (as 0020, 0021, 0023): on SQLite a batch rebuild
drops the old table.

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ese_source_state", sa.Column("last_look", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("ese_source_state", "last_look")
