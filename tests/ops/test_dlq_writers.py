"""Two operators acting on one dead-letter item at once (each from its own server process).

Whatever the timing, the outcome is one of the two orders: a settle then a refused retry,
or a retry then a settle recorded over it. Never a retry overwriting an operator's
``resolved`` with ``retrying``, never an item missing from the queue because one writer
caught the other half done, and a retry is counted once.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.engine import create_engine
from dsa110.db.tables import jobs
from dsa110.errors import ConflictError
from dsa110.ops import dlq
from dsa110.ops.queue import store
from tests.ops.queue_helpers import url_of

ROUNDS = 12
"""Rounds of the race: its interleaving is the scheduler's, so it is run several times."""


async def _failed_job(engine: AsyncEngine) -> str:
    job = await store.submit(engine, "noop", {})
    async with engine.begin() as conn:
        await conn.execute(update(jobs).where(jobs.c.id == job["id"]).values(state="failed", error="boom"))
    return f"job-{job['id']}"


async def test_a_retry_and_a_settle_at_once_happen_in_one_order_or_the_other(engine: AsyncEngine) -> None:
    a, b = create_engine(url_of(engine)), create_engine(url_of(engine))
    try:
        for _ in range(ROUNDS):
            key = await _failed_job(engine)
            retried, settled = await asyncio.gather(
                dlq.retry(a, key, "key:a"),
                dlq.settle(b, key, "resolved", "fixed by hand", "key:b"),
                return_exceptions=True,
            )
            assert not isinstance(settled, BaseException), settled
            item = await dlq.get(engine, key)
            job = await store.get_job(engine, int(key.removeprefix("job-")))
            assert (item.status, item.resolution_note) == ("resolved", "fixed by hand")
            if isinstance(retried, ConflictError):  # settled first: the retry is refused
                assert (job["state"], item.retry_count) == ("failed", 0)
            else:  # retried first: queued once, then settled over it
                assert not isinstance(retried, BaseException), retried
                assert (job["state"], item.retry_count) == ("pending", 1)
    finally:
        await a.dispose()
        await b.dispose()


async def test_two_retries_at_once_queue_the_job_once(engine: AsyncEngine) -> None:
    a, b = create_engine(url_of(engine)), create_engine(url_of(engine))
    try:
        for _ in range(ROUNDS):
            key = await _failed_job(engine)
            results = await asyncio.gather(
                dlq.retry(a, key, "key:a"), dlq.retry(b, key, "key:b"), return_exceptions=True
            )
            assert sorted(type(r).__name__ for r in results) == ["ConflictError", "DlqItem"], results
            item = await dlq.get(engine, key)
            assert (item.status, item.retry_count) == ("retrying", 1)
    finally:
        await a.dispose()
        await b.dispose()
