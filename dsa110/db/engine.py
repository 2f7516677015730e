"""The async engine: one place for dialect-specific connection set-up.

SQLite (the embedded default) gets WAL, a busy timeout and foreign keys on every new
connection; PostgreSQL needs nothing special. Everything above this module is dialect-free.

``write_lock_timeout_s`` is how long a writer waits for the write lock before it is
refused as ``BUSY`` (``dsa110.db.writes``): SQLite's busy timeout, PostgreSQL's
``lock_timeout`` inside ``write_transaction``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

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
        engine = create_async_engine(url, **kwargs)
        busy_ms = max(1, round(write_lock_timeout_s * 1000))
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_ms))
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)
