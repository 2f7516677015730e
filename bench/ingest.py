"""Ingest throughput: one image of ``--rows`` measurements, all-or-nothing, per backend.

Seeds ``--rows`` sources with one executemany, then ingests ``--images`` images of every
source one after another (``dsa110.ops.ingest.ingest_image_measurements``, detection off:
this is the write path, detection is measured by ``bench.ese_injection``). From the
second image on every measurement has pair partners within 10 d, as in the survey.

Prints per backend and image ``ingest backend=.. image=.. rows=.. seconds=.. rows_per_s=..
cpu_s=.. rows_per_cpu_s=.. load1=..`` (CPU of this process, the SQLite engine's thread
included: on a loaded machine wall time overstates the cost; PostgreSQL's server CPU is not
in it; ``load1`` is the one-minute load average, to read the wall figures by) and a
summary ``ingest backend=.. rows=.. rows_per_s=..`` (median over the images).

    .venv/bin/python -m bench.ingest [--rows 100000] [--images 3] [--backends sqlite,postgresql]
        [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.common import add_backend_arguments, line
from dsa110.db.engine import create_engine
from dsa110.db.tables import images, sources
from dsa110.ops.ingest import MeasurementIn, ingest_image_measurements
from dsa110.science.healpix import healpix_index


async def _seed(engine: AsyncEngine, n_sources: int, n_images: int) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(11)
    ra = rng.uniform(0.0, 360.0, n_sources)
    dec = np.degrees(np.arcsin(rng.uniform(-0.3, 1.0, n_sources)))
    hp = [int(healpix_index(r, d)) for r, d in zip(ra.tolist(), dec.tolist(), strict=True)]
    rows = [
        {
            "id": i + 1,
            "source_id": f"BENCH J{i:07d}",
            "ra_deg": r,
            "dec_deg": d,
            "healpix": h,
            "n_epochs": 0,
            "sum_w": 0.0,
            "sum_wf": 0.0,
            "sum_wf2": 0.0,
            "sum_f": 0.0,
            "sum_f2": 0.0,
        }
        for i, (r, d, h) in enumerate(zip(ra.tolist(), dec.tolist(), hp, strict=True))
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(sources), rows)
        await conn.execute(
            insert(images),
            [
                {
                    "id": k + 1,
                    "path": f"/bench/ingest/img{k:04d}.fits",
                    "type": "image",
                    "created_at": datetime.now(UTC),
                    "mid_mjd": 60_000.0 + 0.25 * k,
                }
                for k in range(n_images)
            ],
        )
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            await conn.exec_driver_sql("SELECT setval('sources_id_seq', (SELECT max(id) FROM sources))")
            await conn.exec_driver_sql("SELECT setval('images_id_seq', (SELECT max(id) FROM images))")
    return [r["id"] for r in rows], list(range(1, n_images + 1))


async def scenario(url: str, backend: str, args: argparse.Namespace) -> None:
    engine = create_engine(url, write_lock_timeout_s=600.0)
    try:
        source_pks, image_pks = await _seed(engine, args.rows, args.images)
        rng = np.random.default_rng(12)
        rates = []
        for k, image_pk in enumerate(image_pks):
            flux = rng.normal(0.05, 0.002, len(source_pks))
            err = np.full(len(source_pks), 0.002)
            rows = [
                MeasurementIn(source_pk=pk, peak_flux_jy=f, peak_flux_err_jy=e)
                for pk, f, e in zip(source_pks, flux.tolist(), err.tolist(), strict=True)
            ]
            began, cpu = time.perf_counter(), time.process_time()
            await ingest_image_measurements(engine, image_pk, rows, detect=False)
            seconds, cpu_s = time.perf_counter() - began, time.process_time() - cpu
            rates.append(len(rows) / seconds)
            print(
                line(
                    "ingest",
                    backend=backend,
                    image=k + 1,
                    rows=len(rows),
                    seconds=seconds,
                    rows_per_s=len(rows) / seconds,
                    cpu_s=cpu_s,
                    rows_per_cpu_s=len(rows) / cpu_s,
                    load1=os.getloadavg()[0],
                ),
                flush=True,
            )
        print(
            line("ingest", backend=backend, rows=args.rows, rows_per_s=statistics.median(rates)), flush=True
        )
    finally:
        await engine.dispose()


async def run(args: argparse.Namespace) -> None:
    os.environ["DSA110_TEST_POSTGRES_URL"] = args.postgres_url
    from tests.databases import scratch_database

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for backend in [b for b in args.backends.split(",") if b]:
            async with scratch_database(backend, Path(tmp)) as url:
                await scenario(url, backend, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=3)
    add_backend_arguments(parser)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
