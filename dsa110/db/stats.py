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


async def analyze(engine: AsyncEngine, tables: Sequence[str]) -> None:
    """Refresh the planner statistics of ``tables`` (names from ``dsa110.db.tables``)."""
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}")
        for name in tables:
            if not name.isidentifier():
                raise ValueError(f"not a table name: {name!r}")
            await conn.exec_driver_sql(f"ANALYZE {name}")
        await conn.commit()
