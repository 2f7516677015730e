"""Webhook subscriptions: the highest false-alarm probability of the ESE alerts they hear

``webhook_subscriptions.max_false_alarm``: an ESE event whose candidate's calibrated
false-alarm probability per steady source-year is above it is not sent (the calibrated
operating point; ``min_significance`` is the uncalibrated one). NULL: no ceiling
(subscriptions made before this revision hear as before).

Plain add/drop column, not batch mode (as 0020, 0021): on SQLite a batch rebuild drops the
old table.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_subscriptions", sa.Column("max_false_alarm", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("webhook_subscriptions", "max_false_alarm")
