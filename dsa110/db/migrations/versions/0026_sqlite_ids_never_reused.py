"""SQLite: the ids clients act on are never given again

Regions and webhook subscriptions are deleted by id, and updated by id. Without
``AUTOINCREMENT`` SQLite gives a new row the largest id in use plus one, so deleting the
newest region made its id the next region's: a client's late update or delete of the one
it deleted (a retry, another tab) then changed or removed someone else's region. With
``AUTOINCREMENT`` an id is used once (``sqlite_sequence`` keeps the highest given). The
tables are rebuilt in place (rows, indexes and constraints kept; foreign keys are off
during migrations, ``dsa110.db.migrate``). PostgreSQL sequences never reuse: nothing to do.

Downgrade rebuilds them without ``AUTOINCREMENT``.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

TABLES = ("regions", "webhook_subscriptions")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
