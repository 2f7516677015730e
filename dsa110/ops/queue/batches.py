"""Batches: one parent and one child job per item, each item with its own state.

A batch is created whole or not at all: every item's parameters (the batch's shared
parameters overlaid with the item's own) are validated by the kind first, and the
batch row and all its children are inserted in one transaction. The batch's state is
computed from its children, never stored (so it cannot disagree with them):

* ``running`` while any child runs, or some have finished and some wait;
* ``pending`` while all wait; once all are final: ``failed`` if any failed, else
  ``cancelled`` if any was cancelled, else ``done``.

Cancelling a batch cancels its queued children at once and asks its running children's
workers to stop them (the legacy server only flagged the rows and let the running child
run on). Retrying a batch queues its failed and cancelled children again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.enums import JobState
from dsa110.db.tables import batches, jobs
from dsa110.db.writes import write_transaction
from dsa110.errors import ConflictError, InputError, NotFoundError
from dsa110.ops.queue import kinds, store

MAX_ITEMS: Final = 1000
MAX_LABEL_CHARS: Final = 1024
STATES: Final = ("pending", "running", "done", "failed", "cancelled")


@dataclass(frozen=True)
class Item:
    label: str
    """What the child works on, as people name it (an MS path, a data id, a time window)."""
    params: Mapping[str, Any]


@dataclass(frozen=True)
class BatchCounts:
    pending: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.running + self.done + self.failed + self.cancelled


def batch_state(counts: BatchCounts) -> str:
    if counts.running or (counts.pending and counts.pending < counts.total):
        return "running"
    if counts.pending:
        return "pending"
    if counts.failed:
        return "failed"
    if counts.cancelled:
        return "cancelled"
    return "done"


async def create_batch(
    engine: AsyncEngine,
    kind_name: str,
    shared: Any,
    items: Sequence[Item],
    *,
    created_by: str | None = None,
    publish: store.Publish | None = None,
) -> dict[str, Any]:
    if not items:
        raise InputError("a batch needs at least one item", code=kinds.BAD_PARAMS, field="items")
    if len(items) > MAX_ITEMS:
        raise InputError(f"a batch has at most {MAX_ITEMS} items", code=kinds.BAD_PARAMS, field="items")
    if not isinstance(shared, Mapping):
        raise InputError("batch parameters must be a JSON object", code=kinds.BAD_PARAMS, field="params")
    children: list[tuple[str, dict[str, Any], int]] = []
    for index, item in enumerate(items):
        if not isinstance(item.label, str) or not item.label or len(item.label) > MAX_LABEL_CHARS:
            raise InputError(f"item {index}: a label of 1-{MAX_LABEL_CHARS} characters", field="items")
        if not isinstance(item.params, Mapping):
            raise InputError(f"item {index}: parameters must be a JSON object", code=kinds.BAD_PARAMS)
        try:
            params, allowed = store.checked_params(kind_name, {**shared, **item.params})
        except InputError as exc:
            raise InputError(
                f"item {index} ({item.label[:80]}): {exc.message}", code=exc.code, item=index
            ) from None
        children.append((item.label, params, allowed))
    now = store.now_utc()
    async with write_transaction(engine) as conn:
        batch_id = (
            await conn.execute(
                batches.insert()
                .values(
                    kind=kind_name,
                    params=dict(shared),
                    n_items=len(children),
                    created_at=now,
                    created_by=created_by,
                )
                .returning(batches.c.id)
            )
        ).scalar_one()
        rows = []
        for label, params, allowed in children:
            values = store.job_values(
                kind_name,
                params,
                allowed,
                created_by=created_by,
                batch_id=batch_id,
                batch_item=label,
                ms_path=params.get("ms_path") if isinstance(params.get("ms_path"), str) else None,
                now=now,
            )
            rows.append(
                dict((await conn.execute(jobs.insert().values(**values).returning(*jobs.c))).mappings().one())
            )
    for row in rows:
        await store.emit(publish, row, None)
    return await get_batch(engine, int(batch_id))


async def counts_of(engine: AsyncEngine, batch_ids: Sequence[int]) -> dict[int, BatchCounts]:
    if not batch_ids:
        return {}
    c = jobs.c
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(c.batch_id, c.state, func.count())
                .where(c.batch_id.in_(list(batch_ids)))
                .group_by(c.batch_id, c.state)
            )
        ).all()
    tallies: dict[int, dict[str, int]] = {pk: {} for pk in batch_ids}
    for batch_id, state, n in rows:
        if state in STATES:
            tallies[int(batch_id)][str(state)] = int(n)
    return {pk: BatchCounts(**tally) for pk, tally in tallies.items()}


async def get_batch(engine: AsyncEngine, batch_id: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(batches).where(batches.c.id == batch_id))).mappings().first()
    if row is None:
        raise NotFoundError(f"batch {batch_id} does not exist", key=str(batch_id))
    return dict(row)


async def list_batches(
    engine: AsyncEngine,
    *,
    limit: int = 50,
    kind: str | None = None,
    created_after: datetime | None = None,
) -> list[dict[str, Any]]:
    b = batches.c
    statement = select(batches).order_by(b.created_at.desc(), b.id.desc()).limit(limit)
    if kind is not None:
        statement = statement.where(b.kind == kind)
    if created_after is not None:
        statement = statement.where(b.created_at >= created_after)
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(statement)).mappings().all()]


async def children(engine: AsyncEngine, batch_id: int) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(jobs).where(jobs.c.batch_id == batch_id).order_by(jobs.c.id))
        return [dict(r) for r in rows.mappings().all()]


async def cancel_batch(
    engine: AsyncEngine, batch_id: int, by: str | None, publish: store.Publish | None = None
) -> dict[str, Any]:
    """Cancel the queued children at once and stop the running ones; a finished batch is a conflict.

    One write transaction for the batch and all its children: a batch is cancelled whole
    or not at all (one transaction per child left the rest running when one of them failed,
    e.g. ``BUSY``), and its state is judged under the lock, not from an earlier read."""
    async with write_transaction(engine) as conn:
        await _state_locked(conn, batch_id, ("pending", "running"), "cancelled")
        await conn.execute(
            update(batches)
            .where(batches.c.id == batch_id, batches.c.cancelled_at.is_(None))
            .values(cancelled_at=store.now_utc(), cancelled_by=by)
        )
        changed = await store.cancel_open(conn, jobs.c.batch_id == batch_id, by)
    await store.cancelled(changed, publish)
    return await get_batch(engine, batch_id)


async def retry_batch(
    engine: AsyncEngine, batch_id: int, by: str | None, publish: store.Publish | None = None
) -> dict[str, Any]:
    """Queue the failed and cancelled children again; a batch with none is a conflict.

    One write transaction, as :func:`cancel_batch`: every such child is queued again, or none."""
    c = jobs.c
    async with write_transaction(engine) as conn:
        await _state_locked(conn, batch_id, None, "retried")
        again = await conn.execute(
            select(c.id)
            .where(c.batch_id == batch_id, c.state.in_([str(JobState.FAILED), str(JobState.CANCELLED)]))
            .order_by(c.id)
        )
        wanted = [int(pk) for pk in again.scalars()]
        if not wanted:
            raise ConflictError(f"batch {batch_id} has no failed or cancelled items to retry")
        await conn.execute(
            update(batches).where(batches.c.id == batch_id).values(cancelled_at=None, cancelled_by=None)
        )
        changed = [await store.requeue(conn, job_id) for job_id in wanted]
    for row, from_state in changed:
        await store.requeued(engine, row, from_state, by, publish)
    return await get_batch(engine, batch_id)


async def _state_locked(
    conn: AsyncConnection, batch_id: int, allowed: Sequence[str] | None, verb: str
) -> None:
    """Lock the batch row (PostgreSQL; SQLite's write lock is held already) and check its state."""
    found = await conn.execute(select(batches.c.id).where(batches.c.id == batch_id).with_for_update())
    if found.first() is None:
        raise NotFoundError(f"batch {batch_id} does not exist", key=str(batch_id))
    if allowed is None:
        return
    tally = await conn.execute(
        select(jobs.c.state, func.count()).where(jobs.c.batch_id == batch_id).group_by(jobs.c.state)
    )
    counts = {str(state): int(n) for state, n in tally.all() if state in STATES}
    state = batch_state(BatchCounts(**counts))
    if state not in allowed:
        raise ConflictError(f"batch {batch_id} is {state}; only {' or '.join(allowed)} batches can be {verb}")
