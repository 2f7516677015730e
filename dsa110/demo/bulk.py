"""Bulk writes: chunked executemany through SQLAlchemy Core, never a row per round trip.

``insert_returning_ids`` uses one multi-row ``INSERT ... RETURNING id`` per chunk
(SQLAlchemy's insertmanyvalues) with ``sort_by_parameter_order`` so ids come back in the
order of the rows on SQLite and PostgreSQL alike, and the sequences stay right for later
writers (no hand-assigned primary keys).
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


async def insert_returning_ids(conn: AsyncConnection, table: Table, rows: Sequence[Row], size: int = CHUNK_ROWS) -> list[int]:
    """Insert ``rows`` and return their new ``id`` values, in row order."""
    ids: list[int] = []
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    for start in range(0, len(rows), size):
        result = await conn.execute(statement, list(rows[start : start + size]))
        ids.extend(int(r) for r in result.scalars().all())
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
