"""Two operators acting on one dead-letter item at once (each from its own server process).

Whatever the timing, the outcome is one of the two orders: a settle then a refused retry,
or a retry then a refused settle (a retrying item is settled by its retry). Never a retry
overwriting an operator's ``resolved`` with ``retrying``, never an item missing from the
queue because one writer caught the other half done, and a retry is counted once.

The loser is refused ``ConflictError``, or, on a machine so loaded that the winner held the
item's lock past the write-lock budget, ``BusyError``: the same "nothing written, reload"
(seen once on PostgreSQL in a CI run beside other CPU-bound work). Either way the state is
the winner's alone.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.engine import create_engine
from dsa110.db.tables import jobs
from dsa110.errors import BusyError, ConflictError
from dsa110.ops import dlq
from dsa110.ops.queue import store
from tests.ops.queue_helpers import url_of

ROUNDS = 12
"""Rounds of the race: its interleaving is the scheduler's, so it is run several times."""
REFUSED = (ConflictError, BusyError)
"""What the loser of a race is answered: nothing it asked for was written."""


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
            item = await dlq.get(engine, key)
            job = await store.get_job(engine, int(key.removeprefix("job-")))
            if isinstance(retried, REFUSED):  # settled first: the retry is refused
                assert not isinstance(settled, BaseException), settled
                assert (item.status, item.resolution_note) == ("resolved", "fixed by hand")
                assert (job["state"], item.retry_count) == ("failed", 0)
            else:  # retried first: queued once, and the settle is refused
                assert not isinstance(retried, BaseException), retried
                assert isinstance(settled, REFUSED), settled
                assert (item.status, item.resolution_note) == ("retrying", None)
                assert (job["state"], item.retry_count) == ("pending", 1)
    finally:
        await a.dispose()
        await b.dispose()


async def test_a_resolve_and_a_give_up_at_once_settle_the_item_once(engine: AsyncEngine) -> None:
    """Two operators settle one pending item differently at once: the first verdict stands,
    the second is refused; the item never ends as the second after being the first."""
    a, b = create_engine(url_of(engine)), create_engine(url_of(engine))
    try:
        for _ in range(ROUNDS):
            key = await _failed_job(engine)
            results = await asyncio.gather(
                dlq.settle(a, key, "resolved", "fixed", "key:a"),
                dlq.settle(b, key, "failed", "hopeless", "key:b"),
                return_exceptions=True,
            )
            assert sum(isinstance(r, REFUSED) for r in results) == 1, results
            assert sum(isinstance(r, dlq.DlqItem) for r in results) == 1, results
            won = next(r for r in results if isinstance(r, dlq.DlqItem))
            item = await dlq.get(engine, key)
            assert (item.status, item.resolution_note) == (won.status, won.resolution_note)
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
            assert sum(isinstance(r, REFUSED) for r in results) == 1, results
            assert sum(isinstance(r, dlq.DlqItem) for r in results) == 1, results
            item = await dlq.get(engine, key)
            assert (item.status, item.retry_count) == ("retrying", 1)
    finally:
        await a.dispose()
        await b.dispose()
