"""Cone search over 10^6 catalog rows: HEALPix range scan versus a full scan, in one run.

Builds a SQLite file in a temp dir (or uses --database-url, e.g. a scratch PostgreSQL
database) holding ``--rows`` catalog entries spread uniformly over the sky north of
Dec -40 (NVSS-like coverage, ~29 per square degree), then times ``--queries`` cones of
0.5 deg through ``dsa110.science.catalogs.cone_search`` (index range scan + exact cut)
and ``--scans`` full scans that evaluate the separation for every row. Both must return
the same rows. Prints one line:

    cone p50_ms=<x> scan_p50_ms=<y> ratio=<y/x> rows=<n> radius_deg=0.5

Usage: .venv/bin/python bench/cone.py [--rows 1000000] [--queries 200] [--scans 5]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.db.engine import create_engine
from dsa110.db.migrate import upgrade
from dsa110.science.catalogs import cone_search
from dsa110.science.healpix import healpix_index

RADIUS_DEG = 0.5
DEC_MIN = -40.0
CHUNK = 50_000


def sky_positions(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform on the sphere above DEC_MIN: uniform RA, uniform sin(Dec)."""
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(math.sin(math.radians(DEC_MIN)), 1.0, n)))
    return ra, dec


async def build(engine: AsyncEngine, n: int, rng: np.random.Generator) -> float:
    started = time.perf_counter()
    ra, dec = sky_positions(n, rng)
    pixels = healpix_index(ra, dec)
    # Insert in index order (HEALPix, then names that grow with it): every B-tree append
    # lands at the right edge, which is what makes a 10^6-row bulk load take seconds.
    order = np.argsort(pixels, kind="stable")
    ra, dec, pixels = ra[order], dec[order], pixels[order]
    flux = rng.lognormal(math.log(0.01), 1.0, n)
    columns = ("catalog", "name", "ra_deg", "dec_deg", "healpix", "flux_jy")
    async with engine.begin() as conn:
        await conn.execute(t.catalog_sources.delete())
        for lo in range(0, n, CHUNK):
            chunk = [
                ("bench", f"B{i:07d}", float(ra[i]), float(dec[i]), int(pixels[i]), float(flux[i]))
                for i in range(lo, min(n, lo + CHUNK))
            ]
            if engine.dialect.name == "sqlite":
                # The DB-API executemany skips SQLAlchemy's multi-VALUES rendering: ~3x faster.
                marks = ", ".join("?" * len(columns))
                sql = f"INSERT INTO catalog_sources ({', '.join(columns)}) VALUES ({marks})"
                await conn.exec_driver_sql(sql, chunk)
            else:
                await conn.execute(
                    insert(t.catalog_sources), [dict(zip(columns, r, strict=True)) for r in chunk]
                )
    async with engine.begin() as conn:
        await conn.execute(text("ANALYZE"))
    return time.perf_counter() - started


async def full_scan(engine: AsyncEngine, ra: float, dec: float) -> set[int]:
    cs = t.catalog_sources.c
    sep = func.dsa_sep_deg(cs.ra_deg, cs.dec_deg, ra, dec)
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(cs.id, (sep * 3600.0).label("s")).where(sep <= RADIUS_DEG).order_by("s")
        )
        return {r.id for r in rows}


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--scans", type=int, default=5)
    parser.add_argument(
        "--database-url", help="use this (migrated or empty) database instead of a temp SQLite file"
    )
    args = parser.parse_args(argv)
    rng = np.random.default_rng(20251024)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'cone.sqlite3'}"
        engine = create_engine(url)
        try:
            await upgrade(engine)
            build_s = await build(engine, args.rows, rng)
            print(f"# built {args.rows} rows in {build_s:.1f} s", file=sys.stderr)
            centres = list(zip(*sky_positions(args.queries, rng), strict=True))
            await cone_search(engine, *centres[0], RADIUS_DEG)  # warm the connection pool and cache
            cone_ms, found = [], []
            for ra, dec in centres:
                started = time.perf_counter()
                rows = await cone_search(engine, float(ra), float(dec), RADIUS_DEG, limit=100_000)
                cone_ms.append((time.perf_counter() - started) * 1000.0)
                found.append({r.id for r in rows})
            scan_ms = []
            for k in range(args.scans):
                ra, dec = centres[k % len(centres)]
                started = time.perf_counter()
                ids = await full_scan(engine, float(ra), float(dec))
                scan_ms.append((time.perf_counter() - started) * 1000.0)
                if ids != found[k % len(centres)]:
                    raise SystemExit(f"cone and full scan disagree at RA={ra:.4f} Dec={dec:.4f}")
        finally:
            await engine.dispose()
    cone_p50, scan_p50 = statistics.median(cone_ms), statistics.median(scan_ms)
    mean_rows = statistics.mean(len(f) for f in found)
    print(f"# mean rows per cone {mean_rows:.1f}", file=sys.stderr)
    print(
        f"cone p50_ms={cone_p50:.3f} scan_p50_ms={scan_p50:.1f} ratio={scan_p50 / cone_p50:.0f} "
        f"rows={args.rows} radius_deg={RADIUS_DEG}"
    )


if __name__ == "__main__":
    asyncio.run(main())
