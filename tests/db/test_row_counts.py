"""A whole table's totalCount stays exact whatever writes it (``dsa110.db.row_counts``).

On PostgreSQL the unfiltered counts of ``sources`` and ``images`` are read from
trigger-kept deltas; each test compares that answer with a real ``count(*)`` after the
kinds of writes the pipeline makes: bulk inserts, upserts, deletes, rolled-back and
concurrent transactions, ``TRUNCATE``, and a database migrated while it held rows.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Table, delete, func, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.db.engine import create_engine
from dsa110.db.migrate import upgrade
from dsa110.db.row_counts import COUNTED_TABLES, count_statement, row_counts
from tests.databases import scratch_database


def _sources(start: int, n: int) -> list[dict[str, object]]:
    return [
        {"id": i, "source_id": f"T J{i:07d}", "ra_deg": 1.0, "dec_deg": 2.0, "healpix": i}
        for i in range(start, start + n)
    ]


def _images(start: int, n: int) -> list[dict[str, object]]:
    now = datetime(2025, 10, 24, 14, tzinfo=UTC)
    return [
        {"id": i, "path": f"/images/{i}.fits", "type": "science", "created_at": now, "mid_mjd": 60972.0 + i}
        for i in range(start, start + n)
    ]


def _groups(start: int, n: int) -> list[dict[str, object]]:
    now = datetime(2025, 10, 24, 14, tzinfo=UTC)
    return [
        {"id": i, "group_id": f"2025-10-24T14:{i:05d}", "state": "completed", "received_at": now,
         "updated_at": now, "mid_mjd": 60972.0 + i}
        for i in range(start, start + n)
    ]  # fmt: skip


async def _both(engine: AsyncEngine, table: Table) -> tuple[int, int]:
    """(the count the graph serves, a real count(*))."""
    async with engine.connect() as conn:
        served = (await conn.execute(count_statement(conn.dialect.name, table))).scalar()
        real = (await conn.execute(select(func.count()).select_from(table))).scalar()
    return int(served or 0), int(real or 0)


async def test_counts_stay_exact_through_inserts_upserts_deletes_and_rollbacks(engine: AsyncEngine) -> None:
    assert await _both(engine, t.sources) == (0, 0)
    async with engine.begin() as conn:
        await conn.execute(insert(t.sources), _sources(1, 500))  # executemany
        await conn.execute(insert(t.images), _images(1, 30))
    assert await _both(engine, t.sources) == (500, 500)
    assert await _both(engine, t.images) == (30, 30)
    async with engine.begin() as conn:  # a statement that inserts nothing, then deletes
        await conn.execute(
            insert(t.sources).from_select(
                ["id", "source_id", "ra_deg", "dec_deg", "healpix"],
                select(
                    t.sources.c.id,
                    t.sources.c.source_id,
                    t.sources.c.ra_deg,
                    t.sources.c.dec_deg,
                    t.sources.c.healpix,
                ).where(t.sources.c.id < 0),
            )
        )
        await conn.execute(delete(t.sources).where(t.sources.c.id <= 120))
        await conn.execute(delete(t.images).where(t.images.c.id == 7))
    assert await _both(engine, t.sources) == (380, 380)
    assert await _both(engine, t.images) == (29, 29)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(t.sources), _sources(1000, 50))
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert await _both(engine, t.sources) == (380, 380)
    if engine.dialect.name == "postgresql":
        # An upsert counts the rows it inserted, not the ones it updated.
        stmt = postgresql.insert(t.sources).values(_sources(490, 20))
        stmt = stmt.on_conflict_do_update(index_elements=["id"], set_={"ra_deg": stmt.excluded.ra_deg + 1})
        async with engine.begin() as conn:
            await conn.execute(stmt)
        assert await _both(engine, t.sources) == (389, 389)  # 501..509 new
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE images CASCADE"))
        assert await _both(engine, t.images) == (0, 0)
        async with engine.begin() as conn:
            await conn.execute(insert(t.images), _images(100, 3))
        assert await _both(engine, t.images) == (3, 3)


async def test_concurrent_writers_are_counted_once_each_and_deltas_are_folded(engine: AsyncEngine) -> None:
    async def writer(k: int) -> None:
        for j in range(10):
            async with engine.begin() as conn:
                await conn.execute(insert(t.sources), _sources(10_000 * k + 100 * j, 7))

    await asyncio.gather(*(writer(k) for k in range(1, 5)))
    assert await _both(engine, t.sources) == (280, 280)
    # A writer that finds the fold lock taken adds a delta row of its own; the next writer
    # that gets it folds every committed row into one (SQLite keeps no deltas at all).
    async with engine.begin() as conn:
        await conn.execute(insert(t.sources), _sources(90_000, 1))
    assert await _both(engine, t.sources) == (281, 281)
    async with engine.connect() as conn:
        kept = (
            await conn.execute(
                select(func.count()).select_from(row_counts).where(row_counts.c.table_name == "sources")
            )
        ).scalar()
    assert kept == (1 if engine.dialect.name == "postgresql" else 0)


async def test_a_database_migrated_with_rows_counts_them(backend: str, tmp_path: Path) -> None:
    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        try:
            await upgrade(engine, "0016")
            async with engine.begin() as conn:
                await conn.execute(insert(t.sources), _sources(1, 40))
                await conn.execute(insert(t.images), _images(1, 4))
            await upgrade(engine)
            assert await _both(engine, t.sources) == (40, 40)
            assert await _both(engine, t.images) == (4, 4)
            async with engine.begin() as conn:
                await conn.execute(insert(t.sources), _sources(100, 2))
            assert await _both(engine, t.sources) == (42, 42)
        finally:
            await engine.dispose()


def test_the_counted_tables_exist() -> None:
    assert set(COUNTED_TABLES) <= set(t.metadata.tables)


async def test_groups_are_counted_from_0019_on_whatever_an_earlier_revision_kept(
    backend: str, tmp_path: Path
) -> None:
    """``/api/health`` counts ``groups`` (0019). Migrating a database that holds groups counts
    them once, whether or not its 0017 already kept their deltas; later writes stay exact."""
    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        try:
            await upgrade(engine, "0016")
            async with engine.begin() as conn:
                await conn.execute(insert(t.groups), _groups(1, 6))
            await upgrade(engine, "0018")
            async with engine.begin() as conn:
                await conn.execute(insert(t.groups), _groups(100, 3))
            await upgrade(engine)
            assert await _both(engine, t.groups) == (9, 9)
            async with engine.begin() as conn:
                await conn.execute(delete(t.groups).where(t.groups.c.id <= 2))
                await conn.execute(insert(t.groups), _groups(200, 1))
            assert await _both(engine, t.groups) == (8, 8)
        finally:
            await engine.dispose()
