"""Real test databases: a SQLite file in a temp dir, or a fresh PostgreSQL database.

PostgreSQL is used when ``DSA110_TEST_POSTGRES_URL`` names a server (CI sets it to the
one on 127.0.0.1); each call creates a uniquely named database and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_

from dsa110.db.engine import create_engine
from dsa110.db.migrate import upgrade

POSTGRES_URL = os.environ.get("DSA110_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("DSA110_TEST_REDIS_URL")
BACKENDS = ["sqlite", "postgresql"]


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# Running every migration costs ~1 s on SQLite and several seconds on PostgreSQL, and most
# tests want a fresh migrated database. Each test process migrates one template per backend
# and copies it: a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL.
# The templates are named after this process, so parallel runs never share one.
_TEMPLATE_PREFIX = "dsa110_tmpl_"
_templates: dict[str, str] = {}


async def _admin_execute(*statements: str) -> None:
    assert POSTGRES_URL is not None
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        for statement in statements:
            await admin.execute(statement)
    finally:
        await admin.close()


def _pg_url(name: str) -> str:
    assert POSTGRES_URL is not None
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def _drop_orphan_templates() -> None:
    """Drop templates left by test processes that were killed before their exit hook ran."""
    assert POSTGRES_URL is not None
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        rows = await admin.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", _TEMPLATE_PREFIX + "%"
        )
        for row in rows:
            pid = row["datname"].removeprefix(_TEMPLATE_PREFIX).split("_")[0]
            if pid.isdigit() and not _process_alive(int(pid)):
                await admin.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await admin.close()


def _drop_templates_at_exit() -> None:
    names = [name for backend, name in _templates.items() if backend == "postgresql"]
    if names:
        asyncio.run(_admin_execute(*(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in names)))


async def _template(backend: str) -> str:
    """The migrated template of ``backend`` for this process: a file path or a database name."""
    if backend in _templates:
        return _templates[backend]
    if backend == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="dsa110-template-"))
        atexit.register(shutil.rmtree, directory, True)
        path = directory / "template.sqlite3"
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await upgrade(engine)
        await engine.dispose()  # the last connection checkpoints the WAL into the file
        _templates[backend] = str(path)
        return str(path)
    await _drop_orphan_templates()
    name = f"{_TEMPLATE_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:8]}"
    await _admin_execute(f'CREATE DATABASE "{name}"')
    if not _templates.get("postgresql"):
        atexit.register(_drop_templates_at_exit)
    engine = create_engine(_pg_url(name))
    await upgrade(engine)
    await engine.dispose()  # CREATE DATABASE ... TEMPLATE needs the template idle
    _templates[backend] = name
    return name


@asynccontextmanager
async def scratch_database(backend: str, tmp_dir: Path, migrate: bool = True) -> AsyncIterator[str]:
    """Yield the URL of a new, migrated (a copy of the template), empty database of ``backend``."""
    if backend == "sqlite":
        path = tmp_dir / f"{uuid.uuid4().hex}.sqlite3"
        if migrate:
            shutil.copyfile(await _template(backend), path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    if not POSTGRES_URL:
        raise RuntimeError("DSA110_TEST_POSTGRES_URL is not set")
    name = f"dsa110_test_{uuid.uuid4().hex[:12]}"
    if migrate:
        template = await _template(backend)
        await _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    else:
        await _admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def write_lock_held(backend: str, url: str, *tables: str) -> AsyncIterator[None]:
    """Another connection holds the write lock while the block runs: SQLite's database lock
    (``BEGIN IMMEDIATE``), or on PostgreSQL an EXCLUSIVE lock on ``tables`` (reads pass,
    writes wait). Released (rolled back) when the block ends."""
    if backend == "sqlite":
        holder = sqlite3.connect(str(make_url(url).database), isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
            holder.execute("ROLLBACK")
        finally:
            holder.close()
        return
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE")
        yield
        await transaction.rollback()
    finally:
        await conn.close()


def crawl_when(engine: AsyncEngine, slow: Callable[[Any], bool], step_s: float, every: int = 1) -> None:
    """Each SQLite connection ``engine`` opens from now on sleeps ``step_s`` every ``every``
    virtual-machine instructions while ``slow(dbapi_connection)`` holds (a progress handler):
    a statement that crawls until the test lets it go, or until it is interrupted."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        def step() -> int:
            if slow(dbapi_connection):
                time.sleep(step_s)
            return 0

        await_(dbapi_connection.driver_connection.set_progress_handler(step, every))

    event.listen(engine.sync_engine, "connect", on_connect)
