"""The job environment check behind ``/api/jobs/healthz``: can jobs run here, and what runs."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import jobs

MIN_FREE_BYTES: Final = 200 * 1024 * 1024
"""Legacy: the job environment is healthy with more than 200 MB free in the state directory."""


@dataclass(frozen=True)
class JobsHealth:
    casa_ok: bool
    casa_error: str | None
    db_ok: bool
    db_error: str | None
    disk_total: int
    disk_used: int
    disk_free: int
    python: str
    queued: int
    running: int
    workers: list[str]

    @property
    def disk_ok(self) -> bool:
        return self.disk_free > MIN_FREE_BYTES

    @property
    def ok(self) -> bool:
        return self.db_ok and self.disk_ok


def casa_check(data_dir: Path | None = None) -> tuple[bool, str | None]:
    """Whether job processes can use CASA. Never imports CASA here: it bundles its own
    casacore, which must not meet python-casacore in the server process. The pipeline
    stages may provide ``dsa110.ops.stages.casa_check`` (run in a subprocess); else it
    is enough to find the packages."""
    if importlib.util.find_spec("dsa110.ops.stages") is not None:
        stages = importlib.import_module("dsa110.ops.stages")
        check: Callable[[Path | None], tuple[bool, str | None]] | None = getattr(stages, "casa_check", None)
        if check is not None:
            return check(data_dir)
    missing = [name for name in ("casatools", "casatasks") if importlib.util.find_spec(name) is None]
    if missing:
        return False, f"not installed: {', '.join(missing)}"
    return True, None


def _disk(data_dir: Path) -> Any:
    return shutil.disk_usage(data_dir if data_dir.exists() else Path("/"))


async def jobs_health(engine: AsyncEngine, data_dir: Path) -> JobsHealth:
    casa_ok, casa_error = await asyncio.to_thread(casa_check, data_dir)
    db_ok, db_error, queued, running, workers = True, None, 0, 0, []
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            counts: dict[str, int] = dict(
                (await conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state))).all()
            )
            queued, running = int(counts.get("pending", 0)), int(counts.get("running", 0))
            holders = await conn.execute(
                select(jobs.c.lease_owner)
                .where(jobs.c.state == "running", jobs.c.lease_owner.is_not(None))
                .distinct()
            )
            workers = sorted(str(w) for w in holders.scalars())
    except Exception as exc:  # reported, not raised: this is the health check
        db_ok, db_error = False, type(exc).__name__
    usage = await asyncio.to_thread(_disk, data_dir)
    return JobsHealth(
        casa_ok=casa_ok,
        casa_error=casa_error,
        db_ok=db_ok,
        db_error=db_error,
        disk_total=usage.total,
        disk_used=usage.used,
        disk_free=usage.free,
        python=sys.executable,
        queued=queued,
        running=running,
        workers=workers,
    )
