"""Sources' variability metrics recomputed exactly from their measurements after an import.

The legacy ``variability_stats`` are not copied: they mix units and definitions
(``nvss_flux_mjy`` stored x1000 by one writer, signed-mean two-epoch metrics, a chi2 that
is identically 1 on one path; legacy-pipeline-facts sections 3.1 and 3.2). Instead every
source that gained imported measurements gets the running state a recompute defines
(:func:`dsa110.science.variability.states_by_source`, the same closed forms as the O(1)
ingest path), written by :func:`dsa110.science.variability.source_row`.

Small batches (following the pipeline) recompute their sources in the transaction that
inserts the measurements, so subscribers told of new measurements read current metrics.
Bulk imports mark the sources in ``legacy_dirty_sources`` in that transaction instead,
and :func:`recompute_dirty` works through them after the table: an interrupted import
leaves them marked, and the next run finishes the job. Sources are locked in id order
(PostgreSQL), as the ingest path locks them, before their measurements are read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.legacy_tables import legacy_dirty_sources
from dsa110.db.norm_tables import bump_epoch
from dsa110.db.tables import measurements, sources
from dsa110.science.variability import RunningSums, source_row, states_by_source

CHUNK: Final = 2000


def _update_sql(dialect: str, columns: list[str]) -> str:
    """The metric update as driver SQL (10^5 sources skip SQLAlchemy's per-row work)."""
    if dialect == "postgresql":
        sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=1))
        return f"UPDATE sources SET {sets} WHERE id = ${len(columns) + 1}"
    return f"UPDATE sources SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?"


async def recompute(conn: AsyncConnection, source_pks: Sequence[int]) -> int:
    """Rewrite the metric columns of ``source_pks`` from all their stored measurements."""
    pks = sorted(set(source_pks))
    columns = list(source_row(RunningSums()))
    update_sql = _update_sql(conn.dialect.name, columns)
    for start in range(0, len(pks), CHUNK):
        chunk = pks[start : start + CHUNK]
        await conn.execute(
            select(sources.c.id).where(sources.c.id.in_(chunk)).order_by(sources.c.id).with_for_update()
        )
        # A dense chunk (a bulk import touches every source): one index range scan over
        # (source_pk, mjd); a sparse one (following: one image's sources): an IN list.
        dense = len(chunk) * 2 >= chunk[-1] - chunk[0] + 1
        wanted = (
            measurements.c.source_pk.between(chunk[0], chunk[-1])
            if dense
            else measurements.c.source_pk.in_(chunk)
        )
        result = await conn.execute(
            select(
                measurements.c.source_pk,
                measurements.c.mjd,
                measurements.c.peak_flux_jy,
                measurements.c.peak_flux_err_jy,
            ).where(wanted)
        )
        points = np.asarray([tuple(r) for r in result], dtype=np.float64).reshape(-1, 4)
        position = np.full(chunk[-1] - chunk[0] + 1, -1, dtype=np.int64)
        position[np.asarray(chunk, dtype=np.int64) - chunk[0]] = np.arange(len(chunk))
        index = position[points[:, 0].astype(np.int64) - chunk[0]]
        mine = index >= 0
        states = states_by_source(index[mine], points[mine, 1], points[mine, 2], points[mine, 3], len(chunk))
        params = []
        for pk, state in zip(chunk, states, strict=True):
            row = source_row(state)
            params.append((*(row[c] for c in columns), pk))
        await conn.exec_driver_sql(update_sql, params)
    return len(pks)


async def mark_dirty(conn: AsyncConnection, source_pks: Sequence[int]) -> None:
    """Owe these sources a recompute (driver SQL: a bulk batch marks ~10^5 of them)."""
    mark = "$1" if conn.dialect.name == "postgresql" else "?"
    sql = f"INSERT INTO legacy_dirty_sources (source_pk) VALUES ({mark}) ON CONFLICT (source_pk) DO NOTHING"
    rows = [(pk,) for pk in sorted(set(source_pks))]
    for start in range(0, len(rows), 20 * CHUNK):
        await conn.exec_driver_sql(sql, rows[start : start + 20 * CHUNK])


async def recompute_dirty(engine: AsyncEngine) -> int:
    """Recompute every source marked dirty, a chunk per transaction; returns how many."""
    total = 0
    async with engine.connect() as conn:  # a poll with nothing owed takes no write lock
        if (await conn.execute(select(legacy_dirty_sources.c.source_pk).limit(1))).first() is None:
            return 0
    while True:
        async with engine.begin() as conn:
            # The DELETE is the first statement: it takes SQLite's write lock up front.
            picked = (
                select(legacy_dirty_sources.c.source_pk)
                .order_by(legacy_dirty_sources.c.source_pk)
                .limit(CHUNK)
            )
            result = await conn.execute(
                delete(legacy_dirty_sources)
                .where(legacy_dirty_sources.c.source_pk.in_(picked))
                .returning(legacy_dirty_sources.c.source_pk)
            )
            pks = [int(pk) for pk in result.scalars()]
            if not pks:
                return total
            total += await recompute(conn, pks)
            # Metrics moved without a new measurement id: the stored normalisation is stale
            # (norm_store). Last in the transaction, after the sources' row locks, as ingest.
            await bump_epoch(conn)
