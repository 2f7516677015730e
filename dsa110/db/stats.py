"""Planner statistics after bulk loads (``ANALYZE``), on both backends.

Without statistics SQLite's planner guesses index selectivity (it chose an index matching
every row over one matching 1 %), and PostgreSQL's autovacuum refreshes them only after a
delay. Bulk writers (a large ingest, a demo or legacy import) call :func:`analyze` after
their commit. On SQLite ``PRAGMA analysis_limit`` bounds the work per index, so the cost
does not grow with the table (SQLite ``ANALYZE`` docs, "Approximate ANALYZE").
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

SQLITE_ANALYSIS_LIMIT = 1000  # rows sampled per index


async def analyze(engine: AsyncEngine, tables: Sequence[str], *, vacuum: bool = False) -> None:
    """Refresh the planner statistics of ``tables`` (names from ``dsa110.db.tables``).

    ``vacuum`` (after a bulk load, PostgreSQL only): ``VACUUM (ANALYZE)`` also sets the
    visibility map, without which an index-only scan (a count from a covering index) still
    visits every matching heap page; it reads only the pages not yet all-visible.
    """
    for name in tables:
        if not name.isidentifier():
            raise ValueError(f"not a table name: {name!r}")
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
        elif vacuum:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for name in tables:
                await auto.exec_driver_sql(f"VACUUM (ANALYZE) {name}")
            return
        for name in tables:
            await conn.exec_driver_sql(f"ANALYZE {name}")
        await conn.commit()
