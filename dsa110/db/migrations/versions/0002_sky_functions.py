"""sky functions: dsa_sep_deg on PostgreSQL (SQLite registers it per connection)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

from dsa110.db.sky import POSTGRES_SEPARATION_SQL, SEPARATION_FUNCTION

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_SEPARATION_SQL)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS {SEPARATION_FUNCTION}(float8, float8, float8, float8)")
