"""The tiny end-to-end workflow: convert -> calibrate -> apply -> image -> photometry, timed per step.

Simulates the tiny data of ``dsa110.ops.stages.tiny`` (6 antennas, 2 subbands x 4
channels, 2 integrations; a 10 Jy calibrator group and a target group with an injected
2 Jy point source), queues one ``workflow`` job on a fresh SQLite database and runs it with
an in-process worker (each step a child process). Prints ``pipeline convert_s=..
calibrate_s=.. apply_s=.. image_s=.. photometry_s=.. flux_ratio=..`` (wall seconds of
each step as the workflow recorded them; ``cal_convert_s`` the calibrator group's
conversion; ``flux_ratio`` the injected source's measured peak flux over the injected
flux; target |flux_ratio - 1| <= 0.05) and ``total_s``. ``python -m bench.pipeline``
runs it alone; ``bench/jobs.py`` runs it after the queue figures.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

import dsa110.ops.stages  # noqa: F401  (registers the pipeline kinds)
from bench.common import line
from dsa110.db.engine import create_engine
from dsa110.db.migrate import upgrade
from dsa110.db.tables import jobs, measurements, sources
from dsa110.ops.queue import store
from dsa110.ops.queue.worker import Worker, WorkerConfig, job_environment
from dsa110.ops.stages.tiny import INJECTED_JY, make_tiny_data
from dsa110.science.healpix import healpix_index
from dsa110.settings import Settings


async def run(root: Path, timeout_s: float) -> str:
    started = time.perf_counter()
    data = make_tiny_data(root / "incoming")
    url = f"sqlite+aiosqlite:///{root / 'dsa110.sqlite3'}"
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(
                sources.insert().values(
                    source_id="INJECTED",
                    ra_deg=data.source_ra_deg,
                    dec_deg=data.source_dec_deg,
                    healpix=int(healpix_index(data.source_ra_deg, data.source_dec_deg)),
                )
            )
        job = await store.submit(engine, "workflow", data.workflow_params())
        env = job_environment(Settings(data_dir=root, database_url=url))
        worker = Worker(engine, env, WorkerConfig(slots=1, lease_s=60.0, poll_s=0.2))
        worker.start()
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                async with engine.connect() as conn:
                    state = (await conn.execute(select(jobs.c.state).where(jobs.c.id == job["id"]))).scalar()
                if state in ("done", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.5)
        finally:
            await worker.stop()
        async with engine.connect() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job["id"]))).mappings().one()
            peak = (await conn.execute(select(measurements.c.peak_flux_jy))).scalar()
    finally:
        await engine.dispose()
    steps = {s["name"]: s for s in (row["result"] or {}).get("steps", [])}

    def seconds(name: str) -> float:
        value = steps.get(name, {}).get("seconds")
        return float(value) if value is not None else float("nan")

    return line(
        "pipeline",
        convert_s=seconds("convert"),
        calibrate_s=seconds("calibrate"),
        apply_s=seconds("apply"),
        image_s=seconds("image"),
        photometry_s=seconds("photometry"),
        flux_ratio=float(peak) / INJECTED_JY if peak is not None else float("nan"),
        cal_convert_s=seconds("convert-calibrator"),
        total_s=time.perf_counter() - started,
        state=row["state"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        print(asyncio.run(run(Path(tmp), args.timeout_s)), flush=True)


if __name__ == "__main__":
    main()
