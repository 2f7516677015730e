"""Bookkeeping of the legacy import (``dsa110.legacy``): how far each legacy table was read.

Kept apart from :mod:`dsa110.db.tables` (which imports this module, so the tables share
its ``metadata``): these rows describe the import, not the pipeline.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, String, Table

from dsa110.db.tables import metadata
from dsa110.db.types import UtcDateTime

legacy_import_state = Table(
    "legacy_import_state",
    metadata,
    # The legacy file by role (queue, registry, products, data_registry, master), not by
    # path: moving the state directory must not make the import start again.
    Column("source", String(32), primary_key=True),
    Column("table_name", String(64), primary_key=True),
    # High-water marks: the largest rowid imported, and the largest change time (legacy
    # epoch seconds) of tables whose rows are updated in place.
    Column("last_rowid", BigInteger, nullable=False, default=0),
    Column("last_changed", Float),
    Column("rows_imported", BigInteger, nullable=False, default=0),
    Column("updated_at", UtcDateTime, nullable=False),
)

legacy_keys = Table(
    "legacy_keys",
    metadata,
    # Which of our rows a legacy row became, for legacy keys that are not ours too
    # (integer ids of images, jobs, batches, candidates, mosaics).
    Column("kind", String(16), primary_key=True),
    Column("legacy_key", String(512), primary_key=True),
    Column("target_pk", Integer, nullable=False),
    Index(None, "kind", "target_pk"),
)

legacy_dirty_sources = Table(
    "legacy_dirty_sources",
    metadata,
    # Sources given imported measurements whose metrics are not recomputed yet: written in
    # the same transaction as the measurements, so an interrupted import finishes the job.
    Column("source_pk", Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
)
