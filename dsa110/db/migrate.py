"""Schema migrations (Alembic), run in-process on the application's own async engine.

``upgrade`` brings any older database to the current schema in place; it is what the
server and the demo builder call on start, so nobody runs Alembic by hand. ``downgrade``
takes it back to an older revision the same way.

On SQLite both run with foreign-key enforcement off, in one transaction that is checked
with ``PRAGMA foreign_key_check`` before it commits (SQLite docs, "ALTER TABLE: Making
Other Kinds Of Table Schema Changes", steps 1, 2, 10-12). Why: a migration in batch mode
rebuilds a table there (create a copy, copy the rows, DROP TABLE, rename), and with
foreign keys enforced the DROP TABLE first deletes the table's rows one by one, firing
ON DELETE CASCADE and SET NULL in every table that refers to it: 0008 going up deleted
all product lineage and job products that way. Alembic's batch docs ("Dealing with
Referencing Foreign Keys") require the pragma off for the same reason. The pragma is a
no-op inside a transaction, so it is set here, before the migration's transaction begins,
and read back; the connection enforces foreign keys again before it returns to the pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    if await current_revision(engine) == (head_revision() if revision == "head" else revision):
        return  # what every start of a current server does: no transaction, no foreign-key check

    def _run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with _migrating(engine) as connection:
        await connection.run_sync(_run)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    if await current_revision(engine) == revision:
        return

    def _run(connection: Connection) -> None:
        command.downgrade(alembic_config(connection), revision)

    async with _migrating(engine) as connection:
        await connection.run_sync(_run)


async def current_revision(engine: AsyncEngine) -> str | None:
    def _read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(_read)


@asynccontextmanager
async def _migrating(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that commits if the body succeeds; on SQLite with
    foreign keys off during it and checked before the commit (see the module docstring)."""
    async with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            async with connection.begin():
                yield connection
            return
        try:
            await connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            enforced = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar_one()
            await connection.commit()
            if enforced:
                raise RuntimeError("SQLite kept enforcing foreign keys: a transaction was open")
            async with connection.begin():
                # pysqlite opens its transaction only at the first INSERT/UPDATE/DELETE, so
                # the DDL before it would commit on its own: begin here, for all of it.
                await connection.exec_driver_sql("BEGIN")
                before = await _broken_references(connection)
                yield connection
                broken = await _broken_references(connection) - before
                if broken:
                    raise RuntimeError(
                        f"the migration broke foreign keys (table, rowid, parent): {sorted(broken)[:10]}"
                    )
        finally:
            try:
                await connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                await connection.commit()
            except BaseException:
                await connection.invalidate()  # never pool a connection that ignores foreign keys
                raise


async def _broken_references(connection: AsyncConnection) -> set[tuple[str, int | None, str]]:
    """Rows whose foreign key points at no row. Only those a migration adds fail it: a
    reference left dangling earlier (a row deleted by hand with the ``sqlite3`` shell, which
    does not enforce foreign keys) must not stop every later upgrade, and the server's start."""
    rows: list[Any] = list(await connection.exec_driver_sql("PRAGMA foreign_key_check"))
    return {(str(table), rowid, str(parent)) for table, rowid, parent, _fkid in rows}
