"""Alert delivery by webhooks: subscriptions, the transactional outbox, attempts and cursors.

Kept apart from :mod:`dsa110.db.tables` (which imports this module at its end and
re-exports the tables, so they share its ``metadata`` and old imports keep working).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from dsa110.db.tables import metadata
from dsa110.db.types import UtcDateTime

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    # The HMAC key (Standard Webhooks `whsec_...`); kept in clear because signing needs it.
    Column("secret", String(128), nullable=False),
    Column("event_kinds", JSON, nullable=False),
    Column("min_significance", Float),
    # ESE events whose candidate's false-alarm probability is above this are not sent.
    Column("max_false_alarm", Float),
    Column("format", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    sqlite_autoincrement=True,  # ids never reused (revision 0026), as for regions
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "subscription_pk",
        Integer,
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # What happened, once per subscriber: the idempotency key receivers see (`webhook-id`).
    Column("event_key", String(160), nullable=False),
    Column("event_kind", String(32), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("claimed_until", UtcDateTime),
    Column("claimed_by", String(200)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime),
    Column("last_status", Integer),
    Column("last_error", Text),
    UniqueConstraint("subscription_pk", "event_key"),
    Index(None, "state", "next_attempt_at"),
    Index(None, "created_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("outbox_pk", Integer, ForeignKey("webhook_outbox.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Float, nullable=False),
    Index(None, "outbox_pk", "id"),
)

webhook_cursors = Table(
    "webhook_cursors",
    metadata,
    # How far each event source (alerts, failed jobs, ...) has been read into the outbox.
    Column("source", String(32), primary_key=True),
    Column("position_at", UtcDateTime, nullable=False),
)
