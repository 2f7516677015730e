"""SQLite: rebuild the running-metric indexes of ``sources`` after a batch that rewrites most rows.

Every ingested measurement rewrites its source's metric columns, and nine indexes of
``sources`` hold one of them (the ``(metric, n_epochs)`` filter indexes, ``n_epochs``,
``last_mjd``, ``new_source``). Row by row, SQLite deletes and re-inserts an entry in each:
two B-tree descents per index per row, about 2.5 us each, 9 x 2 x 100,000 of them for a
100,000-row image, ~85 % of that image's ingest (profiled: the UPDATE took 3.07 s with the
indexes, 0.25 s without). Building an index from scratch is one sort of the table
(~0.1 s per index at 10^5 rows), so when a batch rewrites a large share of the table,
dropping those indexes before the writes and creating them again after is cheaper, the
standard bulk-load order (SQLite docs, "CREATE INDEX": creating indexes after a bulk
insert is faster than maintaining them).

Rebuild cost grows with the table and maintenance with the batch, so the choice is made
per call: rebuild when the rows to write are at least :data:`REBUILD_FRACTION` of the
table. Everything happens inside the caller's write transaction: a failure rolls the
indexes back with the data (SQLite DDL is transactional), and readers, on their WAL
snapshot, keep the old indexes until the commit. The definitions are taken verbatim from
``sqlite_master`` (whatever migrations made), and their ``sqlite_stat1`` rows are put
back, so plans do not change between the commit and the next ``ANALYZE``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

REBUILD_FRACTION = 0.4
"""Break-even of 9 sorts of the table against 18 descents per written row, with a margin."""
MIN_REBUILD_ROWS = 5_000
"""Below this, per-row maintenance is cheap in absolute terms: never touch the schema."""


async def _hot_indexes(conn: AsyncConnection, columns: Collection[str]) -> list[tuple[str, str]]:
    rows: list[tuple[Any, ...]] = [
        tuple(row)
        for row in await conn.exec_driver_sql(
            "SELECT m.name, m.sql, i.name FROM sqlite_master AS m, pragma_index_info(m.name) AS i "
            "WHERE m.type = 'index' AND m.tbl_name = 'sources' AND m.sql IS NOT NULL "
            "ORDER BY m.name"
        )
    ]
    hot = {str(name) for name, _, column in rows if column in columns}
    return sorted({(str(name), str(sql)) for name, sql, _ in rows if name in hot})


async def _saved_stats(conn: AsyncConnection, names: list[str]) -> list[tuple[str, str, str]]:
    exists = (
        await conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        )
    ).first()
    if exists is None or not names:
        return []
    marks = ", ".join("?" for _ in names)
    result = await conn.exec_driver_sql(
        f"SELECT tbl, idx, stat FROM sqlite_stat1 WHERE tbl = 'sources' AND idx IN ({marks})", tuple(names)
    )
    return [(str(tbl), str(idx), str(stat)) for tbl, idx, stat in map(tuple, result)]


@asynccontextmanager
async def rebuilt_source_indexes(
    conn: AsyncConnection, n_rows: int, columns: Collection[str]
) -> AsyncIterator[bool]:
    """Inside the caller's transaction: drop the ``sources`` indexes on ``columns`` when
    ``n_rows`` updates make rebuilding cheaper, and create them again on the way out.

    Yields whether it did. On an exception nothing is recreated: the caller's rollback
    restores the indexes. A no-op on other dialects (PostgreSQL cannot drop an index
    without locking readers out until the commit).
    """
    if conn.dialect.name != "sqlite" or n_rows < MIN_REBUILD_ROWS:
        yield False
        return
    total = (await conn.exec_driver_sql("SELECT count(*) FROM sources")).scalar_one()
    if n_rows < REBUILD_FRACTION * int(total):
        yield False
        return
    indexes = await _hot_indexes(conn, columns)
    stats = await _saved_stats(conn, [name for name, _ in indexes])
    for name, _ in indexes:
        await conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield True
    for _, sql in indexes:
        await conn.exec_driver_sql(sql)
    if stats:
        await conn.exec_driver_sql("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", stats)
