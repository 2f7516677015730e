"""The audit log: secrets recorded before redaction are taken out

Until ``dsa110.auth.redaction`` the audit log kept a mutation's arguments as written, a
webhook's whole URL included (a Slack hook's path is its secret), and so did every copy of
the database since. This revision passes every stored record's arguments through the same
``redact`` the server now applies before writing one, in batches by id. No schema change.

Downgrade changes nothing: the secrets are gone, which is the point.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dsa110.auth.redaction import redact

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

BATCH = 1000

_audit = sa.table(
    "audit_log",
    sa.column("id", sa.Integer),
    sa.column("operation", sa.String),
    sa.column("arguments", sa.JSON),
)


def upgrade() -> None:
    connection = op.get_bind()
    after = 0
    while True:
        rows = connection.execute(
            sa.select(_audit.c.id, _audit.c.operation, _audit.c.arguments)
            .where(_audit.c.id > after)
            .order_by(_audit.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for row_id, operation, arguments in rows:
            if isinstance(arguments, dict) and (clean := redact(operation, arguments)) != arguments:
                connection.execute(sa.update(_audit).where(_audit.c.id == row_id).values(arguments=clean))
        after = rows[-1][0]


def downgrade() -> None:
    pass
