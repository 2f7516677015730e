"""One pending job per kind that many callers add to: ``ese-detect`` after every ingest,
``db-maintain`` after bulk ones.

A caller merges its work into the kind's *pending* job, or queues a new one when there is
none. Once a worker has claimed the job the next caller queues a new one, because the
claimed run may already have passed the rows that caller wrote.

Concurrency: on PostgreSQL callers take a transaction advisory lock keyed by the kind
first, so two concurrent callers cannot both find no pending job and both queue one; on
SQLite the write transaction's ``BEGIN IMMEDIATE`` serialises them. The merge is a
conditional update (``WHERE state = 'pending'``): a claim that commits first leaves it
matching no row, and a new job is queued in the same transaction.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import jobs
from dsa110.db.writes import write_transaction
from dsa110.ops.queue.store import checked_params, emit, job_values

Publish = Callable[[str, dict[str, Any]], Awaitable[Any]]
Merge = Callable[[Mapping[str, Any]], dict[str, Any]]
"""The pending job's parameters -> its parameters with the caller's work added."""

LOCK_CLASS: Final = 110_111
"""First key of the two-key advisory lock (no other lock of ours uses it); the second is the kind's CRC."""


def lock_key(kind: str) -> tuple[int, int]:
    """The advisory lock of ``kind``'s enqueuers: stable across processes (CRC-32, not ``hash``)."""
    return LOCK_CLASS, zlib.crc32(kind.encode()) & 0x7FFF_FFFF


async def add_to_pending(
    engine: AsyncEngine,
    kind: str,
    new_params: Mapping[str, Any],
    merge: Merge,
    *,
    created_by: str,
    publish: Publish | None = None,
) -> int:
    """Merge into ``kind``'s pending job, or queue one with ``new_params``; returns its id.

    ``new_params`` is validated by the kind (a coded error and nothing queued when wrong);
    ``merge`` must return parameters the kind accepts.
    """
    checked, max_attempts = checked_params(kind, new_params)
    async with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            # Released at commit: the next enqueuer reads after this one's job is visible.
            await conn.execute(select(func.pg_advisory_xact_lock(*lock_key(kind))))
        row = (
            (
                await conn.execute(
                    select(jobs.c.id, jobs.c.params)
                    .where(jobs.c.type == kind, jobs.c.state == "pending")
                    .order_by(jobs.c.id)
                    .limit(1)
                )
            )
            .mappings()
            .first()
        )
        if row is not None:
            done = await conn.execute(
                update(jobs)
                .where(jobs.c.id == row["id"], jobs.c.state == "pending")
                .values(params=merge(row["params"] or {}))
            )
            if done.rowcount == 1:
                return int(row["id"])
        values = job_values(kind, checked, max_attempts, created_by=created_by)
        inserted = await conn.execute(jobs.insert().values(**values).returning(*jobs.c))
        created = dict(inserted.mappings().one())
    await emit(publish, created, None)
    return int(created["id"])
