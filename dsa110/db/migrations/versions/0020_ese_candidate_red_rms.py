"""ESE candidates: the red-noise rms that sets their false-alarm stratum

``ese_candidates.red_rms``: the damped-random-walk rms, as a fraction of the baseline,
that best explains the candidate's light curve with its dip modelled
(``dsa110.science.ese.EseDetection.red_rms``). A two-sided dip's live false-alarm
probability is read from the table of its stratum (``dsa110.science.ese_far.live_key``:
quiet below 1 %, red up to 4.5 %, strong above), so two dips of one score can differ in
probability by this alone.
NULL for rows written before this revision (and for legacy imports).

Not in batch mode, either way: on SQLite that rebuilds ``ese_candidates``, and dropping
the old table would cascade to its status changes and unlink its alerts. SQLite adds a
nullable column in place and (>= 3.35) drops an unindexed one in place.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ese_candidates", sa.Column("red_rms", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("ese_candidates", "red_rms")
