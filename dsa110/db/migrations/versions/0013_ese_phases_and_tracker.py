"""ESE candidates: phase, kind and false-alarm probability; per-source tracker state

* ``ese_candidates.phase`` (``ongoing`` | ``confirmed`` | ``rejected``; NULL for rows
  from before detector ese-drw-3.0 and for legacy imports), ``kind`` (``dip`` |
  ``ongoing`` | ``egress``) and ``false_alarm_probability`` (per steady source-year,
  ``dsa110.science.ese_far``);
* ``ese_source_state``: the running statistic of ``dsa110.science.ese_tracker`` per
  source, the last measurement it folded in (the job's watermark), when the source was
  last fully tested, and the last failure (a source that cannot be tested is recorded
  here instead of aborting the run).

Not in batch mode, either way (as 0020): on SQLite a batch that drops a column rebuilds
``ese_candidates``, and dropping the old table deletes its status changes (ON DELETE
CASCADE) and unlinks its alerts (SET NULL), both of which outlive this revision. SQLite
adds a nullable column in place and (>= 3.35) drops an unindexed one in place, so the
downgrade drops the two indexes before the columns.

Revision ID: 0013
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsa110.db.types import UtcDateTime

revision = "0013"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("ese_candidates", sa.Column("phase", sa.String(length=16), nullable=True))
    op.add_column("ese_candidates", sa.Column("kind", sa.String(length=16), nullable=True))
    op.add_column("ese_candidates", sa.Column("false_alarm_probability", sa.Float(), nullable=True))
    op.create_index(op.f("ix_ese_candidates_phase"), "ese_candidates", ["phase"])
    op.create_index(
        op.f("ix_ese_candidates_false_alarm_probability"), "ese_candidates", ["false_alarm_probability"]
    )
    op.create_table(
        "ese_source_state",
        sa.Column("source_pk", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("mean", sa.Float(), nullable=False),
        sa.Column("var", sa.Float(), nullable=False),
        sa.Column("cusum", sa.Float(), nullable=False),
        sa.Column("last_measurement_pk", sa.Integer(), nullable=False),
        sa.Column("last_test_mjd", sa.Float(), nullable=True),
        sa.Column("last_test_n", sa.Integer(), nullable=False),
        sa.Column("backoff_days", sa.Float(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_pk"], ["sources.id"], name=op.f("fk_ese_source_state_source_pk_sources"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("source_pk", name=op.f("pk_ese_source_state")),
    )


def downgrade() -> None:
    op.drop_table("ese_source_state")
    op.drop_index(op.f("ix_ese_candidates_false_alarm_probability"), table_name="ese_candidates")
    op.drop_index(op.f("ix_ese_candidates_phase"), table_name="ese_candidates")
    op.drop_column("ese_candidates", "false_alarm_probability")
    op.drop_column("ese_candidates", "kind")
    op.drop_column("ese_candidates", "phase")
