"""What ``/healthz`` says, and the state it is said from.

Two answerers give the same body. The app's ``/healthz`` route (under any ASGI server,
and for in-process clients) checks the database there and then. The front door
(``server.front_door``, how ``dsa110-graph serve`` runs) answers probes on a thread of
its own, without the event loop: a health check that waits behind 50 busy clients and a
connection flood says nothing a load balancer can use (issue 15: ``/healthz`` unanswered
for minutes). It cannot run SQL there, so the database is watched from the event loop
(``watch_database``, one ``SELECT 1`` a second) and the front door reads the last result.

A liveness check must stay honest: the front door also reports the event loop itself,
``503`` with ``event_loop: stalled`` when the loop has not ticked for ``stall_s`` (a
synchronous stall, a deadlock), however well the front door is doing.

The parts (live-update counts, the sampler, the job pool) are read from the front
door's thread too, so ``parts`` may only read attributes and sizes: no SQL, no awaiting,
no iteration over something the loop may be changing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("dsa110.server.health")

DATABASE_EVERY_S: Final = 1.0
DATABASE_TIMEOUT_S: Final = 5.0
"""A ``SELECT 1`` that has not answered by then counts as the database unreachable."""

Answer = tuple[int, dict[str, Any]]


class HealthReport:
    """One process's health: its parts, the database as last checked, and the answer built from them."""

    def __init__(self, parts: Callable[[], dict[str, Any]], stall_s: float) -> None:
        self.parts = parts
        self.stall_s = stall_s
        self.database_ok: bool | None = None
        """The last check's result (None: not checked yet, which is not healthy)."""

    def answer(self, database_ok: bool | None, extra: dict[str, Any] | None = None) -> Answer:
        """(status, body): 200 with every part when the database answers, else 503."""
        if not database_ok:
            return 503, {"status": "unavailable", "database": "unreachable", "pid": os.getpid()}
        body: dict[str, Any] = {"status": "ok", "database": "ok", **self.parts(), "pid": os.getpid()}
        body.update(extra or {})
        return 200, body

    def front_answer(self, loop_silent_s: float) -> Answer:
        """The front door's answer: the watched database, and the event loop's own liveness."""
        if loop_silent_s > self.stall_s:
            return 503, {
                "status": "unavailable",
                "event_loop": "stalled",
                "event_loop_silent_s": round(loop_silent_s, 3),
                "pid": os.getpid(),
            }
        return self.answer(self.database_ok, {"event_loop_silent_s": round(loop_silent_s, 3)})


async def database_reachable(engine: AsyncEngine, *, logged: bool = True) -> bool:
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_S), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception:
        if logged:
            log.exception("health check: database unreachable")
        return False
    return True


async def watch_database(engine: AsyncEngine, report: HealthReport) -> asyncio.Task[None]:
    """Check once now (a server is not healthy before it has seen its database), then every
    ``DATABASE_EVERY_S`` in a task (the caller cancels it at shutdown)."""
    report.database_ok = await database_reachable(engine)

    async def keep_watching() -> None:
        while True:
            await asyncio.sleep(DATABASE_EVERY_S)
            # Logged when it changes, not once a second for as long as the database is away.
            was = report.database_ok
            report.database_ok = await database_reachable(engine, logged=was is True)
            if report.database_ok and not was:
                log.warning("health check: database reachable again")

    return asyncio.create_task(keep_watching(), name="health-database-watch")


_installed: list[HealthReport] = []
"""The process's report, if an app is running (one app per server process)."""


def install(report: HealthReport | None) -> None:
    """Make ``report`` the one the front door answers from (the app does at start-up; None at stop)."""
    _installed[:] = [report] if report is not None else []


def installed() -> HealthReport | None:
    return _installed[0] if _installed else None
