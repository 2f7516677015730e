"""A separate OS process that ingests through the Python API (run by test_write_races).

Usage: python -m tests.server.ingest_process URL IMAGE_PK [IMAGE_PK ...]
Prints ``ready`` once connected, waits for a line on stdin (the start signal), then
ingests every source on each image in turn (``flux_of`` values) and prints ``done``.
"""

from __future__ import annotations

import asyncio
import sys

from sqlalchemy import select

from dsa110.db.engine import create_engine
from dsa110.db.tables import sources
from dsa110.ops.ingest import ingest_image_measurements

PATIENT_S = 300.0
"""Lock budget of this writer: long, so that the race, not the budget, decides."""


def flux_of(image_pk: int, source_pk: int) -> tuple[float, float]:
    """The (flux, error) in Jy every writer of the race test reports for this pair."""
    return 0.05 + 0.001 * ((image_pk * 31 + source_pk * 17) % 53), 0.001 + 0.0001 * (source_pk % 7)


async def run(url: str, image_pks: list[int]) -> None:
    engine = create_engine(url, write_lock_timeout_s=PATIENT_S)
    try:
        async with engine.connect() as conn:
            pks = list((await conn.execute(select(sources.c.id).order_by(sources.c.id))).scalars())
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        for image_pk in image_pks:
            rows = []
            for pk in pks:
                flux, err = flux_of(image_pk, pk)
                rows.append({"source_pk": pk, "peak_flux_jy": flux, "peak_flux_err_jy": err})
            await ingest_image_measurements(engine, image_pk, rows, detect=False)
        print("done", flush=True)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], [int(a) for a in sys.argv[2:]]))
