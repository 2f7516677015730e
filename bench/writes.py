"""Concurrent writers: issue 15's lost running-sum updates, measured on both backends.

Per backend, ``--sources`` sources and ``--writers`` writers that each ingest ``--images``
images of every source, all at once: all writers but one in this process (each through
its own engine, as separate clients are), the last in another OS process (the Python API,
``tests.server.ingest_process``). Afterwards every source's running sums and every
image's count are compared with the stored measurements (``drift`` must be 0).

Prints per backend ``writes backend=.. writers=.. images=.. rows=.. seconds=.. rows_per_s=.. drift=..``.

    .venv/bin/python -m bench.writes [--sources 495] [--images 10] [--writers 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.common import add_backend_arguments, line
from dsa110.db.engine import create_engine
from dsa110.ops.ingest import ingest_image_measurements

PATIENT_S = 600.0


async def _in_process(url: str, source_pks: list[int], image_pks: list[int], start: asyncio.Event) -> None:
    from tests.server.ingest_process import flux_of

    engine = create_engine(url, write_lock_timeout_s=PATIENT_S)
    try:
        await start.wait()
        for image_pk in image_pks:
            rows = []
            for pk in source_pks:
                flux, err = flux_of(image_pk, pk)
                rows.append({"source_pk": pk, "peak_flux_jy": flux, "peak_flux_err_jy": err})
            await ingest_image_measurements(engine, image_pk, rows, detect=False)
    finally:
        await engine.dispose()


async def scenario(url: str, backend: str, args: argparse.Namespace) -> None:
    from tests.server.test_write_races import _drift, _process_writer, _seed

    engine = create_engine(url)
    try:
        names, image_pks = await _seed(engine, args.sources, args.writers * args.images)
        shares = [image_pks[i :: args.writers] for i in range(args.writers)]
        ready, start = asyncio.Event(), asyncio.Event()
        process = asyncio.create_task(_process_writer(url, shares[-1], ready, start))
        local = [asyncio.create_task(_in_process(url, list(names), share, start)) for share in shares[:-1]]
        waiting = asyncio.ensure_future(ready.wait())
        await asyncio.wait([waiting, process], return_when=asyncio.FIRST_COMPLETED)
        began = time.perf_counter()
        start.set()
        await asyncio.gather(process, *local)
        seconds = time.perf_counter() - began
        drift = await _drift(engine)
    finally:
        await engine.dispose()
    rows = args.sources * len(image_pks)
    print(
        line(
            "writes",
            backend=backend,
            writers=args.writers,
            images=len(image_pks),
            rows=rows,
            seconds=seconds,
            rows_per_s=rows / seconds,
            drift=sum(len(v) for v in drift.values()),
        ),
        flush=True,
    )


async def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("DSA110_TEST_POSTGRES_URL", args.postgres_url)
    from tests.databases import scratch_database

    with tempfile.TemporaryDirectory(prefix="bench-writes-") as tmp:
        for backend in [b for b in args.backends.split(",") if b]:
            async with scratch_database(backend, Path(tmp)) as url:
                await scenario(url, backend, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sources", type=int, default=495)
    parser.add_argument("--images", type=int, default=10, help="images per writer")
    parser.add_argument("--writers", type=int, default=3, help="at least 2: one runs in another process")
    add_backend_arguments(parser)
    args = parser.parse_args()
    if args.writers < 2:
        parser.error("--writers must be at least 2")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
