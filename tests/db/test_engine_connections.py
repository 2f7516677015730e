"""PostgreSQL connections of the engine: JIT off, and an idle pooled connection that died is replaced.

The engine pings a pooled connection only when it sat idle (``dsa110.db.engine``), instead
of three round trips at every checkout; a connection the server dropped while idle must
still never reach a caller.
"""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from dsa110.db import engine as engine_module
from dsa110.db.engine import create_engine


async def test_postgres_connections_run_without_jit(backend: str, empty_db_url: str) -> None:
    if backend != "postgresql":
        pytest.skip("a PostgreSQL setting")
    engine = create_engine(empty_db_url)
    try:
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("SHOW jit")).scalar_one() == "off"
    finally:
        await engine.dispose()


async def test_an_idle_connection_the_server_dropped_is_replaced(
    backend: str, empty_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no server to drop connections")
    monkeypatch.setattr(engine_module, "IDLE_PING_S", 0.0)  # every checked-in connection counts as idle
    engine = create_engine(empty_db_url, pool_size=1, max_overflow=0)
    admin = await asyncpg.connect(make_url(empty_db_url).set(drivername="postgresql").render_as_string(False))
    try:
        async with engine.connect() as conn:
            pid = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        # pg_terminate_backend(pid, timeout) waits until the backend has exited
        assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
        async with engine.connect() as conn:
            again = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one()
        assert again != pid
    finally:
        await admin.close()
        await engine.dispose()
