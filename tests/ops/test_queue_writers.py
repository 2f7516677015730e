"""Operators' queue writes (submit, cancel, retry; batches) under concurrent writers.

Two operators (two server processes, each its own engine) acting on the same job or batch
at once: each change is made once, the loser is told ``CONFLICT`` or gets the row as it
is. And a queue write that waits for the database's write lock longer than the engine's
budget is refused with ``BUSY`` having written nothing, as every write is (README,
"Concurrent writers"), rather than failing with the driver's error (a 500) on SQLite or
waiting without limit on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.engine import create_engine
from dsa110.db.tables import batches, job_logs, jobs
from dsa110.errors import BusyError, ConflictError
from dsa110.ops.queue import batches as batch_ops
from dsa110.ops.queue import store
from tests.databases import write_lock_held
from tests.ops.queue_helpers import url_of

HANG_GUARD_S = 30.0
"""Only so that a writer waiting without limit fails the test instead of hanging it."""


@contextlib.asynccontextmanager
async def _engines(engine: AsyncEngine, n: int, **options: Any) -> AsyncIterator[list[AsyncEngine]]:
    made = [create_engine(url_of(engine), **options) for _ in range(n)]
    try:
        yield made
    finally:
        for e in made:
            await e.dispose()


async def _fail(engine: AsyncEngine, job_id: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(jobs).where(jobs.c.id == job_id).values(state="failed", error="boom"))


async def _count(engine: AsyncEngine, table: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one())


async def test_two_operators_retrying_one_job_queue_it_once(engine: AsyncEngine) -> None:
    job = await store.submit(engine, "noop", {})
    await _fail(engine, job["id"])
    async with _engines(engine, 2) as (a, b):
        results = await asyncio.gather(
            store.retry(a, job["id"], "key:a"), store.retry(b, job["id"], "key:b"), return_exceptions=True
        )
    won = [r for r in results if isinstance(r, dict)]
    assert len(won) == 1 and won[0]["state"] == "pending"
    assert [type(r) for r in results if not isinstance(r, dict)] == [ConflictError]
    assert await _count(engine, job_logs, job_logs.c.line.like("[queue] queued again%")) == 1


async def test_cancel_racing_a_claim_never_leaves_an_unstoppable_job(engine: AsyncEngine) -> None:
    """Either the cancel wins (cancelled, nothing claimed) or the claim does (running, with
    the cancel recorded for its worker): never running without the request."""
    job = await store.submit(engine, "noop", {})
    async with _engines(engine, 2) as (a, b):
        claimed, _ = await asyncio.gather(
            store.claim(a, "w1", ["noop"], limit=1, lease_s=60.0), store.request_cancel(b, job["id"], "key:a")
        )
    async with engine.connect() as conn:
        row = (await conn.execute(select(jobs).where(jobs.c.id == job["id"]))).mappings().one()
    if claimed:
        assert row["state"] == "running" and row["cancel_requested_at"] is not None
    else:
        assert row["state"] == "cancelled"


async def test_two_operators_retrying_one_batch_queue_each_item_once(engine: AsyncEngine) -> None:
    batch = await batch_ops.create_batch(
        engine, "noop", {}, [batch_ops.Item(label=f"item {i}", params={}) for i in range(4)]
    )
    async with engine.begin() as conn:
        await conn.execute(update(jobs).where(jobs.c.batch_id == batch["id"]).values(state="failed"))
    async with _engines(engine, 2) as (a, b):
        await asyncio.gather(
            *(batch_ops.retry_batch(e, batch["id"], f"key:{i}") for i, e in enumerate((a, b))),
            return_exceptions=True,
        )
    assert await _count(engine, jobs, jobs.c.batch_id == batch["id"], jobs.c.state == "pending") == 4
    assert await _count(engine, job_logs, job_logs.c.line.like("[queue] queued again%")) == 4


Write = Callable[[AsyncEngine, dict[str, int]], Awaitable[Any]]
WRITES: dict[str, Write] = {
    "submit": lambda e, ids: store.submit(e, "noop", {}),
    "cancel": lambda e, ids: store.request_cancel(e, ids["pending"], "key:a"),
    "retry": lambda e, ids: store.retry(e, ids["failed"], "key:a"),
    "create_batch": lambda e, ids: batch_ops.create_batch(e, "noop", {}, [batch_ops.Item("one", {})]),
    "cancel_batch": lambda e, ids: batch_ops.cancel_batch(e, ids["batch"], "key:a"),
    "retry_batch": lambda e, ids: batch_ops.retry_batch(e, ids["failed_batch"], "key:a"),
}


@pytest.mark.parametrize("write", list(WRITES))
async def test_a_queue_write_past_its_lock_budget_is_busy_and_writes_nothing(
    engine: AsyncEngine, backend: str, empty_db_url: str, write: str
) -> None:
    pending = await store.submit(engine, "noop", {})
    failed = await store.submit(engine, "noop", {})
    await _fail(engine, failed["id"])
    batch = await batch_ops.create_batch(engine, "noop", {}, [batch_ops.Item("a", {})])
    failed_batch = await batch_ops.create_batch(engine, "noop", {}, [batch_ops.Item("b", {})])
    async with engine.begin() as conn:
        await conn.execute(update(jobs).where(jobs.c.batch_id == failed_batch["id"]).values(state="failed"))
    ids = {"pending": pending["id"], "failed": failed["id"], "batch": batch["id"]}
    ids["failed_batch"] = failed_batch["id"]

    async def snapshot() -> tuple[list[Any], list[Any], int]:
        async with engine.connect() as conn:
            job_rows = list((await conn.execute(select(jobs).order_by(jobs.c.id))).all())
            batch_rows = list((await conn.execute(select(batches).order_by(batches.c.id))).all())
        return job_rows, batch_rows, await _count(engine, job_logs)

    before = await snapshot()
    async with (
        _engines(engine, 1, write_lock_timeout_s=0.3) as (impatient,),
        write_lock_held(backend, empty_db_url, "jobs", "batches"),
    ):
        with pytest.raises(BusyError):
            await asyncio.wait_for(WRITES[write](impatient, ids), HANG_GUARD_S)
    assert await snapshot() == before


def _refuse_update(backend: str, job_id: int, to_state: str) -> list[str]:
    """A trigger refusing to move job ``job_id`` to ``to_state``: a real failure, mid-batch."""
    if backend == "sqlite":
        return [
            f"CREATE TRIGGER refuse_move BEFORE UPDATE ON jobs WHEN NEW.id = {job_id} "
            f"AND NEW.state = '{to_state}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ]
    return [
        "CREATE FUNCTION refuse_move() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$"
        " LANGUAGE plpgsql",
        f"CREATE TRIGGER refuse_move BEFORE UPDATE ON jobs FOR EACH ROW WHEN (NEW.id = {job_id} "
        f"AND NEW.state = '{to_state}') EXECUTE FUNCTION refuse_move()",
    ]


async def _batch_of(engine: AsyncEngine, n: int, state: str) -> tuple[int, list[int]]:
    batch = await batch_ops.create_batch(
        engine, "noop", {}, [batch_ops.Item(label=f"item {i}", params={}) for i in range(n)]
    )
    async with engine.begin() as conn:
        await conn.execute(update(jobs).where(jobs.c.batch_id == batch["id"]).values(state=state))
    children = [int(r["id"]) for r in await batch_ops.children(engine, batch["id"])]
    return int(batch["id"]), children


@pytest.mark.parametrize(
    ("operation", "state", "refused"), [("cancel", "pending", "cancelled"), ("retry", "failed", "pending")]
)
async def test_a_batch_operation_failing_on_one_child_changes_no_child(
    engine: AsyncEngine, backend: str, operation: str, state: str, refused: str
) -> None:
    """Cancelling or retrying a batch is all its children or none: one child that cannot be
    moved (here the database refuses it) leaves the others as they were too."""
    batch_id, children = await _batch_of(engine, 3, state)
    async with engine.begin() as conn:
        for statement in _refuse_update(backend, children[-1], refused):
            await conn.execute(text(statement))
    act = batch_ops.cancel_batch if operation == "cancel" else batch_ops.retry_batch
    with pytest.raises(DBAPIError):
        await act(engine, batch_id, "key:a")
    async with engine.connect() as conn:
        states = list((await conn.execute(select(jobs.c.state).where(jobs.c.batch_id == batch_id))).scalars())
        marked = (
            await conn.execute(select(batches.c.cancelled_at).where(batches.c.id == batch_id))
        ).scalar_one()
    assert states == [state] * 3
    assert marked is None
    assert await _count(engine, job_logs) == 0
