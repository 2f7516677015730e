"""Who may change things, and who did: API keys and the audit log.

Kept apart from :mod:`dsa110.db.tables` (which imports this module at its end and
re-exports the tables, so they share its ``metadata`` and old imports keep working).
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table

from dsa110.db.tables import metadata
from dsa110.db.types import UtcDateTime

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    # The public part of a key (`d110_<prefix>_<secret>`): finds the row without a scan.
    Column("prefix", String(16), nullable=False, unique=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    # SHA-256 of the whole key: keys are 256-bit random, so a slow hash adds nothing.
    Column("secret_sha256", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("role", String(16)),
    Column("operation", String(128), nullable=False),
    Column("operation_name", String(128)),
    Column("arguments", JSON, nullable=False),
    Column("address", String(64)),
    Column("outcome", String(64), nullable=False),
    Index(None, "at"),
    Index(None, "actor", "at"),
    Index(None, "operation", "at"),
    Index(None, "outcome"),
)
