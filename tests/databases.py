"""Real test databases: a SQLite file in a temp dir, or a fresh PostgreSQL database.

PostgreSQL is used when ``DSA110_TEST_POSTGRES_URL`` names a server (CI sets it to the
one on 127.0.0.1); each call creates a uniquely named database and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from dsa110.db.engine import create_engine
from dsa110.db.migrate import upgrade

POSTGRES_URL = os.environ.get("DSA110_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("DSA110_TEST_REDIS_URL")
BACKENDS = ["sqlite", "postgresql"]


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def scratch_database(backend: str, tmp_dir: Path, migrate: bool = True) -> AsyncIterator[str]:
    """Yield the URL of a new, migrated, empty database of ``backend``."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_dir / f'{uuid.uuid4().hex}.sqlite3'}"
        if migrate:
            engine = create_engine(url)
            await upgrade(engine)
            await engine.dispose()
        yield url
        return
    if not POSTGRES_URL:
        raise RuntimeError("DSA110_TEST_POSTGRES_URL is not set")
    name = f"dsa110_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            engine = create_engine(url)
            await upgrade(engine)
            await engine.dispose()
        yield url
    finally:
        admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
