"""ESE candidates: phase, kind and false-alarm probability; per-source tracker state

* ``ese_candidates.phase`` (``ongoing`` | ``confirmed`` | ``rejected``; NULL for rows
  from before detector ese-drw-3.0 and for legacy imports), ``kind`` (``dip`` |
  ``ongoing`` | ``egress``) and ``false_alarm_probability`` (per steady source-year,
  ``dsa110.science.ese_far``);
* ``ese_source_state``: the running statistic of ``dsa110.science.ese_tracker`` per
  source, the last measurement it folded in (the job's watermark), when the source was
  last fully tested, and the last failure (a source that cannot be tested is recorded
  here instead of aborting the run).

Revision ID: 0013
Revises: 0014
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
    with op.batch_alter_table("ese_candidates") as batch:
        batch.add_column(sa.Column("phase", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("false_alarm_probability", sa.Float(), nullable=True))
        batch.create_index(batch.f("ix_ese_candidates_phase"), ["phase"])
        batch.create_index(batch.f("ix_ese_candidates_false_alarm_probability"), ["false_alarm_probability"])
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
    with op.batch_alter_table("ese_candidates") as batch:
        batch.drop_index(batch.f("ix_ese_candidates_false_alarm_probability"))
        batch.drop_index(batch.f("ix_ese_candidates_phase"))
        batch.drop_column("false_alarm_probability")
        batch.drop_column("kind")
        batch.drop_column("phase")
