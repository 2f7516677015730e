"""The migrations are the schema: they build it from nothing and upgrade in place."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from dsa110.db.engine import create_engine
from dsa110.db.migrate import current_revision, head_revision, upgrade
from dsa110.db.tables import metadata
from tests.databases import scratch_database


async def test_migrations_build_exactly_the_declared_tables(backend: str, tmp_path: Path) -> None:
    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()

        def _diff(connection: Connection) -> list[object]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))

        async with engine.connect() as connection:
            names = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            diff = await connection.run_sync(_diff)
        await engine.dispose()
    assert set(metadata.tables) <= names
    assert diff == [], f"tables.py and the migrations disagree: {diff}"


async def test_upgrade_is_idempotent(backend: str, tmp_path: Path) -> None:
    async with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        await engine.dispose()


async def test_an_older_database_upgrades_in_place(backend: str, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from dsa110.db import tables as t

    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine, "0001")
        assert await current_revision(engine) == "0001"
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(
                insert(t.groups).values(
                    group_id="2025-10-24T14:00:00",
                    state="completed",
                    received_at=now,
                    updated_at=now,
                    mid_mjd=60972.58,
                )
            )
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            kept = (await conn.execute(select(t.groups.c.group_id, t.groups.c.received_at))).all()
        await engine.dispose()
    assert kept == [("2025-10-24T14:00:00", now.replace(microsecond=now.microsecond))]


def test_every_sort_and_filter_column_leads_an_index() -> None:
    """Lists sort and filter in SQL; without an index each page would scan the table."""
    from enum import Enum

    from dsa110.db import filters
    from dsa110.db import tables as t

    def indexed(table: object) -> set[str]:
        leading = {idx.columns[0].name for idx in table.indexes}  # type: ignore[attr-defined]
        leading |= {c.name for c in table.columns if c.unique or c.primary_key}  # type: ignore[attr-defined]
        return leading

    sorts = {
        filters.SourceOrderField: t.sources,
        filters.ImageOrderField: t.images,
        filters.GroupOrderField: t.groups,
        filters.MosaicOrderField: t.mosaics,
        filters.JobOrderField: t.jobs,
        filters.DataProductOrderField: t.data_products,
        filters.EseCandidateOrderField: t.ese_candidates,
        filters.AlertOrderField: t.alerts,
        filters.RegionOrderField: t.regions,
    }
    missing = [
        f"{table.name}.{field.value}"
        for enum, table in sorts.items()
        for field in enum  # type: ignore[attr-defined]
        if isinstance(field, Enum) and field.value not in indexed(table)
    ]
    assert missing == []
