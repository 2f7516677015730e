"""Operations bookkeeping the dashboard reads: the recent-events log and dead-letter resolutions.

Kept apart from :mod:`dsa110.db.tables` (which imports this module, so the tables share
its ``metadata``).
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Index, Integer, String, Table, Text

from dsa110.db.tables import metadata
from dsa110.db.types import UtcDateTime

event_log = Table(
    "event_log",
    metadata,
    # A capped log of the bus's events (dsa110.events.log): every server process records
    # what it hears, and `event_key` (a digest of origin, time, channel and payload) makes
    # the copies of one event a single row. Pruned to the newest N rows by id.
    Column("id", Integer, primary_key=True),
    Column("event_key", String(40), nullable=False, unique=True),
    Column("channel", String(48), nullable=False),
    Column("origin", String(128), nullable=False),
    Column("published_at", UtcDateTime, nullable=False),
    Column("payload", JSON, nullable=False),
    Index(None, "channel", "id"),
    Index(None, "published_at"),
)

dlq_resolutions = Table(
    "dlq_resolutions",
    metadata,
    # What operators did with an item of the dead-letter queue (dsa110.ops.dlq): the item is
    # a failed job or webhook delivery, named `job-<id>` / `webhook-<id>`.
    Column("item_key", String(40), primary_key=True),
    Column("status", String(16), nullable=False),  # retrying | resolved | failed
    Column("note", Text),
    Column("retries", Integer, nullable=False, default=0),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("updated_by", String(255)),
)
