"""Workers as separate processes: racing for jobs, and one killed with SIGKILL mid-job."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import jobs
from dsa110.ops.queue import probe, store
from tests.ops.queue_helpers import job_row, log_lines, worker_process
from tests.waiting import eventually

assert probe.PROBE  # registers the probe kind in this process too


def _runs(directory: Path, job_id: int) -> list[str]:
    path = directory / f"{job_id}.runs"
    return path.read_text().split() if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_two_workers_racing_for_200_jobs_run_each_exactly_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    ids = [(await store.submit(engine, "probe", {"dir": str(marks)}))["id"] for _ in range(200)]
    flags = ("--slots", "4", "--poll-s", "0.05", "--kinds", "probe")
    with worker_process(engine, tmp_path, *flags), worker_process(engine, tmp_path, *flags):

        async def all_done() -> bool:
            async with engine.connect() as conn:
                states = (await conn.execute(select(jobs.c.state).where(jobs.c.id.in_(ids)))).scalars().all()
            return all(state == "done" for state in states)

        await eventually(all_done, 240)
    assert not list(marks.glob("*.double"))
    assert all(len(_runs(marks, job_id)) == 1 for job_id in ids)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(jobs.c.attempts, jobs.c.worker).where(jobs.c.id.in_(ids)))).all()
    assert {attempts for attempts, _ in rows} == {1}
    assert len({worker for _, worker in rows}) == 2  # both workers took part


async def test_a_job_of_a_killed_worker_is_retried_after_its_lease_and_never_runs_twice_at_once(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    job = await store.submit(engine, "probe", {"dir": str(marks), "seconds": 3.0})
    flags = ("--slots", "1", "--poll-s", "0.1", "--lease-s", "3", "--kinds", "probe")
    with worker_process(engine, tmp_path, *flags) as doomed:
        await eventually(lambda: len(_runs(marks, job["id"])) == 1, 60)
        first_pid = int(_runs(marks, job["id"])[0])
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        # Its guard notices at once (the keepalive pipe closes) and kills the job.
        await eventually(lambda: not _alive(first_pid), 5)
        row = await job_row(engine, job["id"])
        assert row["state"] == "running" and str(doomed.pid) in row["lease_owner"]
        with worker_process(engine, tmp_path, *flags) as rescuer:
            await eventually(lambda: _state(engine, job["id"], "done"), 60)
            row = await job_row(engine, job["id"])
            assert str(rescuer.pid) in row["worker"]
    assert row["attempts"] == 2
    assert len(_runs(marks, job["id"])) == 2 and not list(marks.glob("*.double"))
    assert any("was lost (lease expired)" in line for line in await log_lines(engine, job["id"]))
    assert os.getpid()  # the test process itself never ran the job


async def _state(engine: AsyncEngine, job_id: int, state: str) -> bool:
    return (await job_row(engine, job_id))["state"] == state
