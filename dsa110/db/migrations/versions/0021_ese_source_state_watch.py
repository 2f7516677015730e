"""ESE tracker state: until when a source whose CUSUM alarm found nothing is watched

``ese_source_state.watch_until_mjd``: after a full test that a CUSUM alarm asked for and
that found nothing, the source is tested again every ``MAX_BACKOFF_DAYS`` until this MJD
(``dsa110.science.ese_tracker.WATCH_DAYS`` after the test): the alarm was an ingress whose
recovery, which makes the dip testable, is still to come, and the CUSUM restarted on a
baseline the dip then pulls down, so it does not fire on the recovery.
NULL: never watched (rows written before this revision, and sources whose alarms were all
fruitful).

Plain add/drop column, not batch mode (as 0020): on SQLite a batch rebuild drops the old
table.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ese_source_state", sa.Column("watch_until_mjd", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("ese_source_state", "watch_until_mjd")
