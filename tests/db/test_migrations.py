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
