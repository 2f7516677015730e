"""The dashboard's detail tables sorted: the graph's order against arranging the whole list.

The Image detail page lists an image's measurements in pages and sorts them by a column
(``/api/images/{id}/measurements?ordering=-flux_peak``). A DSA-110 image holds ~10^4
measurements. A column the graph orders by (``compat_rest.table_order.GRAPH_ORDERS``) is
sorted in the database and one page is read, and so is a search whose folded text is ASCII
(a source-name filter); any other column, and another search, read the whole list in graph
pages and arrange it in Python. This bench builds a small demo database
(``--no-images``), gives its first image ``--rows`` measurements (one per catalog source,
made up but well formed), and times page 3 of 25 rows: unsorted (the baseline), sorted by
peak flux and by SNR (the graph's order), searched for "nvss" (the graph's filter; every row
matches), by compactness and searched for "é" (arranged here).

Prints one line per request kind: ``detail_table rows=.. query=.. p50_ms=.. ratio=..`` where
``ratio`` is against the unsorted page measured in the same run.

    .venv/bin/python -m bench.detail_tables [--rows 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import line, p50
from dsa110.demo.build import build_demo
from dsa110.settings import Settings
from server.app import create_app

QUERIES = {
    "plain": {},
    "ordering=-flux_peak": {"ordering": "-flux_peak"},
    "ordering=snr": {"ordering": "snr"},
    "ordering=-compactness": {"ordering": "-compactness"},
    "search=nvss": {"search": "nvss"},
    "search=é": {"search": "é"},
}


def _fill_image(path: Path, rows: int, seed: int) -> int:
    """Give the first image a measurement of every source (up to ``rows``); its id."""
    rng = random.Random(seed)
    with sqlite3.connect(path) as db:
        image_pk, mjd = db.execute("SELECT id, mid_mjd FROM images ORDER BY id LIMIT 1").fetchone()
        measured = {
            pk for (pk,) in db.execute("SELECT source_pk FROM measurements WHERE image_pk = ?", (image_pk,))
        }
        sources = db.execute(
            "SELECT id, ra_deg, dec_deg FROM sources ORDER BY id LIMIT ?", (rows,)
        ).fetchall()
        new = []
        for source_pk, ra, dec in sources:
            if source_pk in measured:
                continue
            flux, err = rng.lognormvariate(-4.0, 1.0), 0.001
            new.append(
                (
                    source_pk,
                    image_pk,
                    mjd,
                    ra,
                    dec,
                    flux,
                    err,
                    flux * rng.uniform(0.9, 1.3),
                    err,
                    err,
                    flux / err,
                )
            )
        db.executemany(
            "INSERT INTO measurements (source_pk, image_pk, mjd, ra_deg, dec_deg, peak_flux_jy, "
            "peak_flux_err_jy, int_flux_jy, int_flux_err_jy, local_rms_jy, snr, forced) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            new,
        )
    return int(image_pk)


async def run(rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-detail-") as tmp:
        root = Path(tmp)
        url = f"sqlite+aiosqlite:///{root / 'dsa110.sqlite3'}"
        await build_demo(url, root, sources=rows, days=1, images=False, detect=False)
        image = _fill_image(root / "dsa110.sqlite3", rows, seed=7)
        with sqlite3.connect(root / "dsa110.sqlite3") as db:
            (n,) = db.execute("SELECT count(*) FROM measurements WHERE image_pk = ?", (image,)).fetchone()
        app = create_app(Settings(data_dir=root, database_url=url), migrate=False)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=300
            ) as http,
        ):
            times: dict[str, list[float]] = {name: [] for name in QUERIES}
            for _ in range(repeat + 1):  # the first round warms the caches and is dropped
                for name, params in QUERIES.items():
                    start = time.perf_counter()
                    answer = await http.get(
                        f"/api/images/{image}/measurements", params={"page": 3, "page_size": 25, **params}
                    )
                    times[name].append(time.perf_counter() - start)
                    if answer.status_code != 200:
                        raise SystemExit(f"{name}: {answer.status_code} {answer.text[:200]}")
            base = p50(times["plain"][1:])
            for name, samples in times.items():
                median = p50(samples[1:])
                print(
                    line(
                        "detail_table",
                        rows=n,
                        query=name,
                        p50_ms=round(median * 1000, 1),
                        ratio=round(median / base, 2),
                    )
                )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=10_000, help="measurements on the image (at most the sources)"
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.repeat))


if __name__ == "__main__":
    main()
