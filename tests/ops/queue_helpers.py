"""Running workers for the queue tests: in this process, or as ``dsa110-graph worker`` processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import job_logs, jobs
from dsa110.ops.queue.local import Executor
from dsa110.ops.queue.worker import Worker, WorkerConfig, job_environment
from dsa110.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def url_of(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def in_process_worker(
    engine: AsyncEngine, data_dir: Path, executor: Executor | None = None, **config: Any
) -> AsyncIterator[Worker]:
    settings = Settings(data_dir=data_dir, database_url=url_of(engine))
    options = {"slots": 2, "lease_s": 6.0, "poll_s": 0.1, **config}
    worker = Worker(engine, job_environment(settings), WorkerConfig(**options), executor)
    worker.start()
    try:
        yield worker
    finally:
        await worker.stop()


@contextlib.contextmanager
def worker_process(engine: AsyncEngine, data_dir: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``dsa110-graph worker`` in its own process (stopped with SIGTERM if still alive)."""
    env = {
        **os.environ,
        "DSA110_JOB_KINDS_MODULES": "dsa110.ops.queue.probe",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable,
        "-m",
        "server.cli",
        "worker",
        "--data-dir",
        str(data_dir),
        "--database-url",
        url_of(engine),
        "--log-level",
        "warning",
        *args,
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def job_row(engine: AsyncEngine, job_id: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        return dict((await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().one())


async def log_lines(engine: AsyncEngine, job_id: int) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(job_logs.c.line).where(job_logs.c.job_pk == job_id).order_by(job_logs.c.id)
        )
        return [str(line) for line in rows.scalars()]


def group_members(pgid: int) -> list[int]:
    """Live processes (not zombies) in process group ``pgid``."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.getpgid(int(name)) != pgid:
                continue
            stat = Path(f"/proc/{name}/stat").read_text()
        except (OSError, ProcessLookupError):
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            members.append(int(name))
    return members
