"""The durable queue: validation before queueing, running, progress, logs, cancel, retry, leases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.enums import JobState
from dsa110.db.tables import data_products, job_products, jobs
from dsa110.errors import ConflictError, InputError
from dsa110.ops.products import register_product
from dsa110.ops.queue import kinds, store
from tests.ops.queue_helpers import group_members, in_process_worker, job_row, log_lines
from tests.waiting import eventually

BAD_PARAMS = {
    "noop": [{"message": 5}, {"message": "x" * 201}, {"unknown": 1}, {"message": "a\x00b"}],
    "sleep": [{"seconds": -1}, {"seconds": "1"}, {"seconds": float("inf")}, {"steps": 0}, {"children": 99}],
    "fail": [{"exit_code": 0}, {"exit_code": 256}, {"exit_code": True}, {"message": None}],
}


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(jobs))).scalar_one())


async def test_bad_parameters_for_every_kind_are_coded_errors_and_queue_nothing(engine: AsyncEngine) -> None:
    assert set(BAD_PARAMS) <= set(kinds.names())
    for kind, cases in BAD_PARAMS.items():
        for params in cases:
            with pytest.raises(InputError) as caught:
                await store.submit(engine, kind, params)
            assert caught.value.code == kinds.BAD_PARAMS, (kind, params)
    for params in (None, [], "x", {"a": float("nan")}, {"big": "x" * 70_000}, {1: 2}):
        with pytest.raises(InputError) as caught:
            await store.submit(engine, "noop", params)
        assert caught.value.code == kinds.BAD_PARAMS
    for name in ("nope", "", "../x"):
        with pytest.raises(InputError) as caught:
            await store.submit(engine, name, {})
        assert caught.value.code == kinds.UNKNOWN_KIND
    assert await _count(engine) == 0


async def test_a_job_runs_with_its_log_result_and_progress(engine: AsyncEngine, tmp_path: Path) -> None:
    ok = await store.submit(engine, "noop", {"message": "hello from the queue"}, created_by="key:ops")
    slow = await store.submit(engine, "sleep", {"seconds": 0.3, "steps": 3})
    broken = await store.submit(engine, "fail", {"exit_code": 7, "message": "the disk is full"})
    assert ok["state"] == "pending" and ok["params"] == {"message": "hello from the queue"}
    async with in_process_worker(engine, tmp_path, slots=3):
        await eventually(lambda: _all_final(engine, [ok["id"], slow["id"], broken["id"]]), 30)
    done = await job_row(engine, ok["id"])
    assert (done["state"], done["exit_code"], done["attempts"]) == ("done", 0, 1)
    assert done["result"] == {"message": "hello from the queue"} and done["progress"] == 1.0
    assert done["created_by"] == "key:ops" and done["lease_owner"] is None
    lines = await log_lines(engine, ok["id"])
    assert "hello from the queue" in lines and lines[0].startswith("[queue] noop job")
    assert lines[-1].startswith("[queue] done")
    slept = await job_row(engine, slow["id"])
    assert slept["state"] == "done" and slept["progress_message"] == "step 3 of 3"
    assert "@@progress 1.0000 step 3 of 3" in await log_lines(engine, slow["id"])
    failed = await job_row(engine, broken["id"])
    assert (failed["state"], failed["exit_code"]) == ("failed", 7)
    assert "exit status 7" in failed["error"] and "the disk is full" in failed["error"]


async def _all_final(engine: AsyncEngine, ids: list[int]) -> bool:
    async with engine.connect() as conn:
        states = (await conn.execute(select(jobs.c.state).where(jobs.c.id.in_(ids)))).scalars().all()
    return len(states) == len(ids) and all(s in ("done", "failed", "cancelled") for s in states)


async def test_cancel_stops_the_whole_process_group(engine: AsyncEngine, tmp_path: Path) -> None:
    """A job ignoring SIGTERM, with two child processes: cancelled, and nothing of it left after 5 s."""
    params = {"seconds": 120, "steps": 120, "children": 2, "ignore_term": True}
    job = await store.submit(engine, "sleep", params)
    output = await register_product(
        engine, data_id="partial-image", data_type="image", stage_path=str(tmp_path / "x")
    )
    async with engine.begin() as conn:
        await conn.execute(
            job_products.insert().values(job_pk=job["id"], product_pk=output["id"], role="output")
        )
    async with in_process_worker(engine, tmp_path):

        async def started() -> bool:
            row = await job_row(engine, job["id"])
            return row["process_group"] is not None and any(
                "child processes" in x for x in await log_lines(engine, job["id"])
            )

        await eventually(started, 30)
        pgid = (await job_row(engine, job["id"]))["process_group"]
        assert len(group_members(pgid)) >= 4  # guard, job, two children
        asked = await store.request_cancel(engine, job["id"], "key:night-ops")
        assert asked["state"] == "running" and asked["cancel_requested_by"] == "key:night-ops"
        await eventually(lambda: _state_is(engine, job["id"], "cancelled"), 30)
        await eventually(lambda: not group_members(pgid), 5)
    row = await job_row(engine, job["id"])
    assert row["error"] == "cancelled by key:night-ops" and row["finished_at"] is not None
    assert any("cancelled by key:night-ops" in line for line in await log_lines(engine, job["id"]))
    async with engine.connect() as conn:
        product = (
            (await conn.execute(select(data_products).where(data_products.c.id == output["id"])))
            .mappings()
            .one()
        )
    assert product["finalization_status"] == "partial" and not product["auto_publish"]


async def _state_is(engine: AsyncEngine, job_id: int, state: str) -> bool:
    return (await job_row(engine, job_id))["state"] == state


async def test_a_queued_job_is_cancelled_at_once_and_retried_on_request(engine: AsyncEngine) -> None:
    job = await store.submit(engine, "noop", {})
    cancelled = await store.request_cancel(engine, job["id"], "key:a")
    assert cancelled["state"] == "cancelled" and "before it ran" in cancelled["error"]
    assert (await store.request_cancel(engine, job["id"], "key:a"))["state"] == "cancelled"
    again = await store.retry(engine, job["id"], "key:b")
    assert again["state"] == "pending" and again["error"] is None and again["cancel_requested_at"] is None
    with pytest.raises(ConflictError):
        await store.retry(engine, job["id"], "key:b")
    async with engine.begin() as conn:
        await conn.execute(update(jobs).where(jobs.c.id == job["id"]).values(state="done"))
    with pytest.raises(ConflictError):
        await store.request_cancel(engine, job["id"], "key:a")


async def test_each_job_is_claimed_once_and_leases_decide_what_happens_to_lost_jobs(
    engine: AsyncEngine,
) -> None:
    retried = await store.submit(engine, "sleep", {"seconds": 1})
    never = await store.submit(engine, "fail", {})  # not retried when its worker is lost
    first = await store.claim(engine, "w1", ["sleep", "fail"], 5, lease_s=0.05)
    assert {r["id"] for r in first} == {retried["id"], never["id"]}
    assert await store.claim(engine, "w2", ["sleep", "fail"], 5, lease_s=60) == []
    await asyncio.sleep(0.1)
    assert await store.heartbeat(engine, "w1", [retried["id"]], 60) == set()  # a lease that ran out
    settled = {r["id"]: r for r in await store.reap(engine)}
    assert settled[retried["id"]]["state"] == "pending" and settled[retried["id"]]["not_before"] is not None
    assert settled[never["id"]]["state"] == "failed" and "not retried" in settled[never["id"]]["error"]
    # The lost worker cannot write a final state any more.
    assert await store.finish(engine, retried["id"], "w1", JobState.DONE) is None
    # Attempts run out: the third loss fails the job.
    for attempt in (2, 3):
        async with engine.begin() as conn:
            await conn.execute(update(jobs).where(jobs.c.id == retried["id"]).values(not_before=None))
        claimed = await store.claim(engine, f"w{attempt}", ["sleep"], 1, lease_s=0.05)
        assert [r["attempts"] for r in claimed] == [attempt]
        await asyncio.sleep(0.1)
        await store.reap(engine)
    row = await job_row(engine, retried["id"])
    assert row["state"] == "failed" and "all 3 attempts used" in row["error"]
    assert any("was lost" in line for line in await log_lines(engine, retried["id"]))
