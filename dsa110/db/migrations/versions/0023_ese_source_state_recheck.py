"""ESE tracker state: when a test that found something looks again

``ese_source_state.recheck_mjd``: a full test whose search found something (an event not
yet persisted, or a candidate's) asks for the persistence look ``PERSIST_DAYS`` later
(``dsa110.science.ese_tracker.tested``); until ese-drw-3.9 that look was scheduled by
arming the CUSUM alone, which the next points can lower again, so it did not always come.
NULL: no look asked for (rows written before this revision: the tracker resumes as before).

Plain add/drop column, not batch mode (as 0020, 0021): on SQLite a batch rebuild drops the
old table.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ese_source_state", sa.Column("recheck_mjd", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("ese_source_state", "recheck_mjd")
