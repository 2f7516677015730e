"""Bulk writes: chunked executemany through SQLAlchemy Core, never a row per round trip.

Primary keys are left to the database (no hand-assigned ids), so PostgreSQL sequences
stay right for the writers that come after the demo.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from alembic import command
from sqlalchemy import Table, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.migrate import alembic_config, upgrade

CHUNK_ROWS = 20_000

Row = dict[str, Any]


def chunked(rows: Iterable[Row], size: int = CHUNK_ROWS) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


async def insert_rows(
    conn: AsyncConnection,
    table: Table,
    rows: Iterable[Row],
    size: int = CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Insert ``rows`` in chunks of ``size``; returns the number inserted."""
    total = 0
    for batch in chunked(rows, size):
        await conn.execute(insert(table), batch)
        total += len(batch)
        if on_chunk is not None:
            on_chunk(len(batch))
    return total


async def insert_returning_ids(
    conn: AsyncConnection, table: Table, rows: Sequence[Row], size: int = CHUNK_ROWS
) -> list[int]:
    """Insert ``rows`` and return their new ``id`` values, in row order.

    ``INSERT ... RETURNING`` with guaranteed order falls back to one statement per row on
    SQLite, so instead: plain executemany, then read back the ids above the previous
    maximum. Both backends hand out ascending ids in insertion order within one
    connection, and the demo is the only writer while it builds.
    """
    before = (await conn.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one()
    await insert_rows(conn, table, rows, size)
    result = await conn.execute(select(table.c.id).where(table.c.id > before).order_by(table.c.id))
    ids = [int(i) for i in result.scalars().all()]
    if len(ids) != len(rows):
        raise RuntimeError(f"{table.name}: inserted {len(rows)} rows but found {len(ids)} new ids")
    return ids


async def count_rows(conn: AsyncConnection, table: Table) -> int:
    return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def reset_schema(engine: AsyncEngine) -> None:
    """Drop every table (migrations down to base) and migrate up again: a clean database."""

    def _down(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), "base")

    async with engine.begin() as connection:
        await connection.run_sync(_down)
    await upgrade(engine)
