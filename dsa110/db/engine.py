"""The async engine: one place for dialect-specific connection set-up.

SQLite (the embedded default) gets WAL, a busy timeout and foreign keys on every new
connection. PostgreSQL connections run with JIT off and are pinged only after sitting idle
(:func:`_ping_when_idle`); reads there run in autocommit (:func:`read_connection`).
Everything above this module is dialect-free.

Why for PostgreSQL: the graph's statements are short (a page, a count, a batch of one
DataLoader), but over a 10^5-row table their estimated cost passes ``jit_above_cost`` and
PostgreSQL then compiles each to machine code first, milliseconds that the query itself
does not take (PostgreSQL docs, "JIT Accelerated Operations: When to JIT?"). And
SQLAlchemy's ``pool_pre_ping`` costs three round trips (BEGIN, ``;``, ROLLBACK on asyncpg)
at every checkout, and a request checks out a connection per DataLoader batch.

``write_lock_timeout_s`` is how long a writer waits for the write lock before it is
refused as ``BUSY`` (``dsa110.db.writes``): SQLite's busy timeout, PostgreSQL's
``lock_timeout`` inside ``write_transaction``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from dsa110.db.sky import SEPARATION_FUNCTION, separation_deg
from dsa110.db.writes import DEFAULT_WRITE_LOCK_TIMEOUT_S, WRITE_LOCK_OPTION


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 64 MiB page cache (default 2 MiB): bulk ingest rewrites rows and index entries of the
        # sources table all over the file; without it most of that time is page misses.
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()
        dbapi_connection.create_function(SEPARATION_FUNCTION, 4, _sqlite_separation, deterministic=True)

    return on_connect


def _sqlite_separation(
    ra1: float | None, dec1: float | None, ra2: float | None, dec2: float | None
) -> float | None:
    if ra1 is None or dec1 is None or ra2 is None or dec2 is None:
        return None
    return separation_deg(ra1, dec1, ra2, dec2)


IDLE_PING_S = 30.0
"""A pooled PostgreSQL connection idle at least this long is pinged before it is handed out."""
_CHECKED_IN = "dsa110_checked_in"


def _ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """Pessimistic disconnect handling for connections that sat idle in the pool.

    What ``pool_pre_ping`` guards against, a server restart or a network drop while a
    connection sits unused, is tested for connections idle at least ``idle_s``; one that
    fails the ping is replaced (``DisconnectionError``: the pool retries with a fresh one,
    SQLAlchemy docs "Disconnect Handling - Pessimistic"). A busy pool pays nothing. A
    connection that dies while in steady use fails its statement, and SQLAlchemy then
    invalidates the whole pool, as with the pre-ping.
    """
    dialect = engine.sync_engine.dialect

    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_CHECKED_IN] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last = record.info.get(_CHECKED_IN)
        if last is None or time.monotonic() - last < idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError() from error

    event.listen(engine.sync_engine.pool, "checkin", on_checkin)
    event.listen(engine.sync_engine.pool, "checkout", on_checkout)


def create_engine(
    url: str, *, write_lock_timeout_s: float = DEFAULT_WRITE_LOCK_TIMEOUT_S, **kwargs: Any
) -> AsyncEngine:
    """Create the async engine for ``url`` (``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``)."""
    if not 0 < write_lock_timeout_s <= 3600:
        raise ValueError("write_lock_timeout_s must be in (0, 3600]")
    options = kwargs.pop("execution_options", {})
    kwargs["execution_options"] = {**options, WRITE_LOCK_OPTION: write_lock_timeout_s}
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # URI filenames on (a plain path still opens as before): ATTACH of a file read-only
        # (``file:...?mode=ro``, the legacy import's bulk path) must never create or write it.
        kwargs["connect_args"] = {"uri": True, **kwargs.get("connect_args", {})}
        engine = create_async_engine(url, **kwargs)
        busy_ms = max(1, round(write_lock_timeout_s * 1000))
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_ms))
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args["server_settings"] = {"jit": "off", **connect_args.get("server_settings", {})}
    engine = create_async_engine(url, connect_args=connect_args, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        _ping_when_idle(engine, IDLE_PING_S)
    return engine


@asynccontextmanager
async def read_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection for read-only statements: on PostgreSQL in autocommit.

    Why: asyncpg sends ``BEGIN`` before the first statement of a checkout and ``ROLLBACK``
    when the connection is returned, two round trips around what is often one statement (a
    DataLoader batch, a page; 0.54 -> 0.31 ms a checkout, and less client CPU). A read gains
    nothing from them: at READ COMMITTED each statement takes its own snapshot anyway
    (PostgreSQL docs, "Transaction Isolation: Read Committed Isolation Level"). Under CPU
    contention every round trip also waits for the server process to be scheduled. The pool
    restores the isolation level when the connection is returned. SQLite is left as it is.
    Never write on it: each statement would commit on its own.
    """
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn
