"""A filtered count from either side: ``count(*) WHERE F`` against total minus the left-out rows.

``dsa110.db.complement_count`` counts a filter that keeps most of a counted table as its
exact total minus one index range per comparison. This times, per database and filter, the
plain direct count (``count_statement``), the direct count with the total read alongside
(what a filter seen for the first time costs) and the complement, interleaved so that all
three see the same machine load, on the statement alone (one connection, no GraphQL). Every
complement answer is checked against the direct one.

Prints ``count-sides <filter> backend=.. count=.. total=.. direct_ms=.. direct_total_ms=..
complement_ms=.. ratio=..`` (ratio: complement / direct, p50s).

    .venv/bin/python -m bench.count_sides --url sqlite+aiosqlite:///bench-data/large/dsa110.sqlite3
        [--url postgresql+asyncpg://postgres@127.0.0.1:5432/dsa110_scale_large] [--repeat 50]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bench.common import line, p50
from dsa110.db import tables as t
from dsa110.db.complement_count import sided_count
from dsa110.db.engine import create_engine
from dsa110.db.filters import SourceFilter
from dsa110.db.row_counts import count_statement

FILTERS = {
    "etaMin+nEpochsMin": SourceFilter(eta_min=1.0, n_epochs_min=10),  # bench.scale count_eta_nepochs
    "nEpochsMin": SourceFilter(n_epochs_min=10),
    "vMin+nEpochsMin": SourceFilter(v_min=0.01, n_epochs_min=10),
    "fluxRange": SourceFilter(flux_min_jy=0.001, flux_max_jy=100.0),
    "etaMin(narrow)": SourceFilter(eta_min=100.0),
}


async def _timed(conn: AsyncConnection, stmt: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    row = (await conn.execute(stmt)).one()
    return (time.perf_counter() - start) * 1000.0, row


async def run(urls: list[str], repeat: int) -> None:
    for url in urls:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                backend = conn.dialect.name
                for name, flt in FILTERS.items():
                    conditions = flt.conditions()
                    sided = sided_count(backend, t.sources, conditions)
                    if sided is None:
                        print(line(f"count-sides {name}", backend=backend, sided="no"), flush=True)
                        continue
                    plain = count_statement(backend, t.sources, conditions)
                    samples: dict[str, list[float]] = {"direct": [], "direct_total": [], "complement": []}
                    for i in range(repeat + 3):
                        ms_plain, (count,) = await _timed(conn, plain)
                        ms_total, (count_again, total) = await _timed(conn, sided.direct)
                        ms_comp, (total_again, left_out) = await _timed(conn, sided.complement)
                        if not count == count_again == total_again - left_out:
                            raise SystemExit(f"{name}: {count} {count_again} {total_again} - {left_out}")
                        if i >= 3:
                            samples["direct"].append(ms_plain)
                            samples["direct_total"].append(ms_total)
                            samples["complement"].append(ms_comp)
                    direct, comp = p50(samples["direct"]), p50(samples["complement"])
                    print(
                        line(
                            f"count-sides {name}",
                            backend=backend,
                            count=count,
                            total=int(total),
                            direct_ms=direct,
                            direct_total_ms=p50(samples["direct_total"]),
                            complement_ms=comp,
                            ratio=comp / direct,
                        ),
                        flush=True,
                    )
        finally:
            await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", action="append", required=True, help="a database to time (repeatable)")
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(run(args.url, args.repeat))


if __name__ == "__main__":
    main()
