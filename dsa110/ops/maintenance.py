"""Database upkeep off the request path: the ``db-maintain`` job kind.

A bulk ingest on PostgreSQL rewrites the running sums of every source it measures, and
each rewritten row leaves its heap page not all-visible. Until a vacuum sets the
visibility map again, PostgreSQL prices the index-only count plans as heap visits (a
filtered source count went from a 7 ms index-only scan to a 61-130 ms sequential scan,
issue 11). ``VACUUM (ANALYZE)`` restores that and refreshes the planner's statistics, but
it takes 1-3 s at 10^5 sources: too long for the ingest caller to wait on. So ingest calls
:func:`enqueue_maintenance` after its commit and a worker (``serve``'s job pool or
``dsa110-graph worker``) runs ``python -m dsa110.ops.maintenance``, which calls
:func:`dsa110.db.stats.analyze` with ``vacuum=True``.

Coalescing: many ingests make one *pending* job (the union of their tables). Once a
worker has claimed it, the next ingest queues a new one, because the claimed job's vacuum
may already have passed the pages that ingest rewrote. Concurrent ingests still make one
pending job (``dsa110.ops.queue.coalesce``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.stats import analyze
from dsa110.ops.queue import kinds
from dsa110.ops.queue.coalesce import add_to_pending

Publish = Callable[[str, dict[str, Any]], Awaitable[Any]]

KIND: Final = "db-maintain"
TABLES: Final = frozenset(
    {
        "sources",
        "measurements",
        "images",
        "groups",
        "ese_candidates",
        "ese_source_state",
        "jobs",
        "image_norm_factors",
        "norm_cells",
    }
)
"""Tables a job may vacuum: the bulk-written ones (a job names no arbitrary relation)."""
DEFAULT_TABLES: Final = ("sources", "measurements")


def _validate(params: Mapping[str, Any]) -> dict[str, Any]:
    """``tables``: a non-empty list of names from :data:`TABLES` (default: sources, measurements)."""
    kinds.only(params, {"tables"})
    names = params.get("tables", list(DEFAULT_TABLES))
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise kinds.bad("`tables` must be a non-empty list of table names", "tables")
    unknown = sorted(set(names) - TABLES)
    if unknown:
        choices = ", ".join(sorted(TABLES))
        raise kinds.bad(f"`tables`: {unknown[0][:64]!r} is not maintained; choose from {choices}", "tables")
    return {"tables": sorted(set(names))}


DB_MAINTAIN = kinds.register(
    kinds.JobKind(
        KIND,
        _validate,
        lambda _job_id, p: [sys.executable, "-m", "dsa110.ops.maintenance", json.dumps(p)],
        max_attempts=3,
        cancel_grace_s=5.0,
        description="VACUUM (ANALYZE) after bulk writes: index-only count plans and fresh statistics.",
    )
)


async def enqueue_maintenance(
    engine: AsyncEngine, tables: Sequence[str] = DEFAULT_TABLES, *, publish: Publish | None = None
) -> int:
    """Add ``tables`` to the pending ``db-maintain`` job, or queue one; returns its id."""
    wanted = _validate({"tables": list(tables)})["tables"]

    def merge(pending: Mapping[str, Any]) -> dict[str, Any]:
        return {"tables": sorted(set(pending.get("tables", DEFAULT_TABLES)) | set(wanted))}

    return await add_to_pending(engine, KIND, {"tables": wanted}, merge, created_by="ingest", publish=publish)


async def run_maintenance(engine: AsyncEngine, tables: Sequence[str]) -> dict[str, Any]:
    """``VACUUM (ANALYZE)`` on PostgreSQL (``ANALYZE`` on SQLite) of ``tables``; what it left.

    The result names, per table on PostgreSQL, ``relpages`` and ``relallvisible`` after
    the vacuum: equal when every page is all-visible again (an older snapshot still open
    elsewhere can keep some pages from it; the next bulk load's job catches up).
    """
    wanted = _validate({"tables": list(tables)})["tables"]
    began = time.perf_counter()
    await analyze(engine, wanted, vacuum=True)
    result: dict[str, Any] = {"tables": wanted, "elapsed_s": round(time.perf_counter() - began, 3)}
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT relname, relpages, relallvisible FROM pg_class WHERE relname = ANY(:names)"),
                {"names": wanted},
            )
            result["pages"] = {r.relname: [int(r.relpages), int(r.relallvisible)] for r in rows}
    return result


async def _main(argv: list[str]) -> int:
    from dsa110.db.engine import create_engine

    params = _validate(json.loads(argv[0]))
    engine = create_engine(os.environ["DSA110_DATABASE_URL"])
    try:
        result = await run_maintenance(engine, params["tables"])
    finally:
        await engine.dispose()
    print("@@result " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.argv[1:])))
