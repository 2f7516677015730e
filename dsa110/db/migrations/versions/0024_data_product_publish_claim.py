"""Data products: when a publication claimed the product, and where its files are going

``data_products.publish_claimed_at``: set when a publication claims the product (``staging``
-> ``publishing``), cleared when it ends. A product still ``publishing`` long after its
claim lost its publisher (``kill -9``, out of memory, power): the sweep run by the queue
workers' reaper settles it by what is on disk (``dsa110.ops.products.recover_publishing``).
``data_products.publish_target``: the path in the products area the files are moving to,
recorded before the move starts, so that the sweep can tell where they are. NULL for both
on rows written before this revision; a product left ``publishing`` by an older server is
stamped the first time the sweep sees it and settled a bound later.

Plain add/drop column, not batch mode (as 0020-0023): on SQLite a batch rebuild drops the
old table.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsa110.db.types import UtcDateTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("data_products", sa.Column("publish_claimed_at", UtcDateTime(), nullable=True))
    op.add_column("data_products", sa.Column("publish_target", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("data_products", "publish_target")
    op.drop_column("data_products", "publish_claimed_at")
