"""The same jobs on the Dask executor (a LocalCluster): states, logs, progress, results, failure, cancel."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.ops.queue import store
from dsa110.ops.queue.dask_executor import DaskExecutor
from tests.ops.queue_helpers import group_members, in_process_worker, job_row, log_lines
from tests.waiting import eventually

distributed = pytest.importorskip("distributed")


@contextlib.contextmanager
def local_cluster() -> Iterator[str]:
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=4, processes=True, dashboard_address=None, silence_logs=40
    )
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


async def _state(engine: AsyncEngine, job_id: int, state: str) -> bool:
    return (await job_row(engine, job_id))["state"] == state


async def test_jobs_run_fail_and_cancel_the_same_on_the_dask_executor(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    with local_cluster() as scheduler:
        ok = await store.submit(engine, "sleep", {"seconds": 0.3, "steps": 3})
        broken = await store.submit(engine, "fail", {"exit_code": 5, "message": "no calibrator in the beam"})
        long = await store.submit(
            engine, "sleep", {"seconds": 120, "steps": 120, "children": 1, "ignore_term": True}
        )
        async with in_process_worker(engine, tmp_path, DaskExecutor(scheduler), slots=3):
            await eventually(lambda: _state(engine, ok["id"], "done"), 120)
            await eventually(lambda: _state(engine, broken["id"], "failed"), 120)

            async def started() -> bool:
                return any("child processes" in line for line in await log_lines(engine, long["id"]))

            await eventually(started, 120)
            await store.request_cancel(engine, long["id"], "key:ops")
            await eventually(lambda: _state(engine, long["id"], "cancelled"), 60)
        done = await job_row(engine, ok["id"])
        assert done["executor"] == "dask" and done["progress"] == 1.0 and done["result"] == {"slept_s": 0.3}
        assert "@@progress 1.0000 step 3 of 3" in await log_lines(engine, ok["id"])
        failed = await job_row(engine, broken["id"])
        assert failed["exit_code"] == 5 and "no calibrator in the beam" in failed["error"]
        lines = await log_lines(engine, long["id"])
        assert any("cancelled by key:ops" in line for line in lines)
        pgid = (await job_row(engine, long["id"]))["process_group"]
        # The Dask task ran on this host (a LocalCluster): nothing of the job's group is left.
        assert pgid is not None and not group_members(pgid)
