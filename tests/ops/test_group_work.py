"""Two convert jobs starting the same group at the same instant (``start_group_work``).

A group is started by every convert job run for it: the first run of a queued job, a run of
a job the reaper re-queued while the old run's process was still finishing, a retried job.
Each job runs in its own process with its own engine, so two may call ``start_group_work``
at once. The move must happen once: one ``pending -> in_progress`` (a failed group
reprocessed once, its retry counted once), the other caller finding the group already
``in_progress`` and keeping it, both succeeding, one event per move made.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.engine import create_engine
from dsa110.db.tables import groups
from dsa110.db.writes import write_transaction
from dsa110.errors import ConflictError
from dsa110.ops import jobs
from tests.ops.queue_helpers import url_of

GROUP = "2025-11-13T12:00:00"
WRITERS = 4


async def _seed(engine: AsyncEngine, state: str, error: str | None = None) -> None:
    when = datetime(2025, 11, 13, 12, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(groups).values(
                group_id=GROUP,
                state=state,
                error=error,
                received_at=when,
                updated_at=when,
                mid_mjd=60992.5,
                expected_subbands=16,
                retry_count=0,
            )
        )


async def _group(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return dict((await conn.execute(select(groups))).mappings().one())


class _Events:
    def __init__(self) -> None:
        self.moves: list[tuple[str, str]] = []

    async def __call__(self, channel: str, payload: dict[str, Any]) -> None:
        self.moves.append((payload["from_state"], payload["state"]))


@pytest.mark.parametrize(
    ("state", "error", "retries", "moves"),
    [
        ("pending", None, 0, [("pending", "in_progress")]),
        ("failed", "conversion failed: disk full", 1, [("failed", "pending"), ("pending", "in_progress")]),
        ("in_progress", None, 0, []),
    ],
)
async def test_convert_jobs_starting_one_group_at_once_move_it_once(
    engine: AsyncEngine, state: str, error: str | None, retries: int, moves: list[tuple[str, str]]
) -> None:
    """Each job on its own engine (its own process in production), all at once."""
    await _seed(engine, state, error)
    events = _Events()
    engines = [create_engine(url_of(engine)) for _ in range(WRITERS)]
    try:
        rows = await asyncio.gather(*(jobs.start_group_work(e, GROUP, publish=events) for e in engines))
    finally:
        for e in engines:
            await e.dispose()
    assert [row["state"] for row in rows] == ["in_progress"] * WRITERS
    group = await _group(engine)
    assert (group["state"], group["error"], group["retry_count"]) == ("in_progress", None, retries)
    assert events.moves == moves


async def test_a_start_waiting_on_a_start_in_flight_keeps_its_move(engine: AsyncEngine) -> None:
    """The interleaving the gather above may or may not hit: job A has locked the failed group
    and reprocessed it (retry counted) but not committed when job B starts. B must wait for
    A's commit and then find ``in_progress``, not reprocess the group a second time from a
    stale read, nor fail with a conflict."""
    await _seed(engine, "failed", "conversion failed: disk full")
    other = create_engine(url_of(engine))
    try:
        async with write_transaction(engine) as conn:
            current = (
                (await conn.execute(select(groups).where(groups.c.group_id == GROUP).with_for_update()))
                .mappings()
                .one()
            )
            await conn.execute(
                groups.update()
                .where(groups.c.id == current["id"])
                .values(state="in_progress", retry_count=1, error=None)
            )
            waiting = asyncio.create_task(jobs.start_group_work(other, GROUP))
            for _ in range(20):  # let B reach the lock (it cannot get past it)
                await asyncio.sleep(0.01)
            assert not waiting.done()
        row = await waiting
    finally:
        await other.dispose()
    assert (row["state"], row["retry_count"], row["error"]) == ("in_progress", 1, None)


async def test_a_completed_group_is_refused_to_every_starter_and_kept(engine: AsyncEngine) -> None:
    await _seed(engine, "completed")
    engines = [create_engine(url_of(engine)) for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(jobs.start_group_work(e, GROUP) for e in engines), return_exceptions=True
        )
    finally:
        for e in engines:
            await e.dispose()
    assert all(isinstance(r, ConflictError) for r in results)
    assert (await _group(engine))["state"] == "completed"
