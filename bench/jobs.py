"""The job queue under two competing worker processes: claim rate, cancel latency, lost and double runs.

Two ``dsa110-graph worker`` processes (``--slots`` each) race for ``--jobs`` trivial jobs
(the ``probe`` kind: each run takes a per-job ``flock`` for its life and appends a line to
``<job>.runs``; a second run alive at the same time finds the lock taken and writes
``<job>.double``). Then ``--cancels`` sleeping jobs are started and cancelled one at a
time; the cancel latency is from the request to the job's ``cancelled`` state (the whole
process group stopped, SIGTERM then SIGKILL, and the state written).

Prints ``jobs claim_per_s=<claims per second between the first and the last claim>
done_per_s=<jobs done per second of wall time> cancel_p50_ms=<..> cancel_p95_ms=<..>
lost=<jobs not done or not run> double_run=<jobs run more than once, or twice at once>``.
SQLite in a temporary directory unless ``--database-url`` names another database.
Targets: lost=0, double_run=0, cancel_p50_ms <= 1000.

Then (unless ``--no-pipeline``) the tiny end-to-end workflow of ``bench/pipeline.py``:
``pipeline convert_s=.. calibrate_s=.. apply_s=.. image_s=.. photometry_s=.. flux_ratio=..``
(target |flux_ratio - 1| <= 0.05).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.common import line, p50, percentile
from dsa110.db.engine import create_engine
from dsa110.db.migrate import upgrade
from dsa110.db.tables import jobs
from dsa110.ops.queue import probe, store

ROOT = Path(__file__).resolve().parents[1]
assert probe.PROBE  # the probe kind, registered here too (the workers load it by name)


def _worker(url: str, data_dir: Path, slots: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DSA110_JOB_KINDS_MODULES": "dsa110.ops.queue.probe", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "server.cli",
        "worker",
        "--data-dir",
        str(data_dir),
        "--database-url",
        url,
        "--slots",
        str(slots),
        "--poll-s",
        "0.05",
        "--log-level",
        "warning",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env)


async def _count(engine: Any, ids: list[int], state: str) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(select(func.count()).where(jobs.c.id.in_(ids), jobs.c.state == state))
            ).scalar_one()
        )


async def run(url: str, data_dir: Path, n_jobs: int, n_cancels: int, slots: int, timeout_s: float) -> str:
    engine = create_engine(url)
    await upgrade(engine)
    marks = data_dir / "marks"
    marks.mkdir(parents=True, exist_ok=True)
    ids = [(await store.submit(engine, "probe", {"dir": str(marks)}))["id"] for _ in range(n_jobs)]
    workers = [_worker(url, data_dir, slots) for _ in range(2)]
    latencies: list[float] = []
    try:
        began = time.perf_counter()
        deadline = began + timeout_s
        while True:
            if await _count(engine, ids, "done") >= n_jobs or time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.1)
        wall_s = time.perf_counter() - began
        for _ in range(n_cancels):
            job = await store.submit(engine, "sleep", {"seconds": 600, "steps": 600})
            while True:
                if (await store.get_job(engine, job["id"]))["process_group"] is not None:
                    break
                await asyncio.sleep(0.01)
            asked = time.perf_counter()
            await store.request_cancel(engine, job["id"], "bench")
            while True:
                if (await store.get_job(engine, job["id"]))["state"] == "cancelled":
                    break
                await asyncio.sleep(0.005)
            latencies.append((time.perf_counter() - asked) * 1000.0)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(jobs.c.id, jobs.c.state, jobs.c.started_at).where(jobs.c.id.in_(ids)))
        ).all()
    await engine.dispose()
    runs = {job_id: _runs(marks, job_id) for job_id in ids}
    doubles = {int(p.stem) for p in marks.glob("*.double")} | {j for j, n in runs.items() if n > 1}
    lost = sum(1 for job_id, state, _ in rows if state != "done" or runs[job_id] == 0)
    starts = sorted(started for _, _, started in rows if started is not None)
    span_s = (starts[-1] - starts[0]).total_seconds() if len(starts) > 1 else float("nan")
    return line(
        "jobs",
        jobs=n_jobs,
        workers=2,
        slots=slots,
        claim_per_s=(len(starts) - 1) / span_s if span_s > 0 else float("nan"),
        done_per_s=n_jobs / wall_s,
        cancel_p50_ms=p50(latencies) if latencies else float("nan"),
        cancel_p95_ms=percentile(latencies, 95) if latencies else float("nan"),
        lost=lost,
        double_run=len(doubles),
    )


def _runs(marks: Path, job_id: int) -> int:
    path = marks / f"{job_id}.runs"
    return len(path.read_text().split()) if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--cancels", type=int, default=20)
    parser.add_argument("--slots", type=int, default=4, help="slots per worker")
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    parser.add_argument("--timeout-s", type=float, default=900.0)
    parser.add_argument("--no-pipeline", action="store_true", help="skip the tiny end-to-end workflow")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        data_dir = Path(tmp)
        url = args.database_url or f"sqlite+aiosqlite:///{data_dir / 'dsa110.sqlite3'}"
        print(
            asyncio.run(run(url, data_dir, args.jobs, args.cancels, args.slots, args.timeout_s)), flush=True
        )
    if not args.no_pipeline:
        from bench import pipeline

        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
            print(asyncio.run(pipeline.run(Path(tmp), args.timeout_s)), flush=True)


if __name__ == "__main__":
    main()
