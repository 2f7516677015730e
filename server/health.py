"""What ``/healthz`` says, and the state it is said from.

Two answerers give the same body. The app's ``/healthz`` route (under any ASGI server,
and for in-process clients) checks the database there and then. The front door
(``server.front_door``, how ``dsa110-graph serve`` runs) answers probes on a thread of
its own, without the event loop: a health check that waits behind 50 busy clients and a
connection flood says nothing a load balancer can use (issue 15: ``/healthz`` unanswered
for minutes). It cannot run SQL there, so the database is watched from the event loop
(``watch_database``, one ``SELECT 1`` a second) and the front door reads the last result.

A database check that times out is not always the database's fault. Under load the event
loop itself runs late (50 clients' resolvers between each of the check's round trips), and
a ``SELECT 1`` that would take a millisecond misses its 5 s. So each check also measures how
late the loop ran while it waited (a ticker's summed lateness): a check that timed out
while the loop was late for at least ``LATE_SHARE`` of the timeout, or that found every
pooled connection in use (refused by the pool, or timed out still queued for one), says
the database is ``slow``, not ``unreachable``. A refused or failed connection, or a
timeout on a loop that was on time with a connection free, stays ``unreachable``.

``slow`` is answered ``200`` with ``status: degraded``: the server is overloaded but
working, and a load balancer that pulled it out for that would move its load onto the
other processes and overload them in turn (a cascade), while its own clients lose their
connections. What is really dead still answers ``503``: the database refusing or not
answering while the loop is on time (``unreachable``), and a loop that does not run at all
(``event_loop: stalled``, below). The one case this cannot tell apart, a database that
stopped answering while the loop is also overloaded, reads ``slow`` until the load eases.

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
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

log = logging.getLogger("dsa110.server.health")

DATABASE_EVERY_S: Final = 1.0
DATABASE_TIMEOUT_S: Final = 5.0
"""A ``SELECT 1`` that has not answered by then counts as the database unreachable (or
slow, when the event loop was late meanwhile)."""
TICK_S: Final = 0.05
"""The loop-lag ticker's period during a check."""
LATE_SHARE: Final = 0.25
"""A timed-out check whose loop ran late for at least this share of the timeout is ``slow``."""

OK: Final = "ok"
SLOW: Final = "slow"
UNREACHABLE: Final = "unreachable"

Answer = tuple[int, dict[str, Any]]


class HealthReport:
    """One process's health: its parts, the database as last checked, and the answer built from them."""

    def __init__(self, parts: Callable[[], dict[str, Any]], stall_s: float) -> None:
        self.parts = parts
        self.stall_s = stall_s
        self.database: str | None = None
        """The last check's result, ``ok``, ``slow`` or ``unreachable`` (None: not checked
        yet, which is not healthy)."""

    def answer(self, database: str | None, extra: dict[str, Any] | None = None) -> Answer:
        """(status, body): 200 with every part when the database answers (``degraded`` when
        it is slow to), else 503."""
        if database not in (OK, SLOW):
            return 503, {"status": "unavailable", "database": UNREACHABLE, "pid": os.getpid()}
        status = "ok" if database == OK else "degraded"
        body: dict[str, Any] = {"status": status, "database": database, **self.parts(), "pid": os.getpid()}
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
        return self.answer(self.database, {"event_loop_silent_s": round(loop_silent_s, 3)})


class LoopLag:
    """How late the event loop ran a ticker while this is entered: seconds, summed."""

    def __init__(self) -> None:
        self._late_s = 0.0
        self._due: float | None = None  # when the pending tick should run
        self._ticker: asyncio.Task[None] | None = None

    @property
    def late_s(self) -> float:
        """Lateness so far, the pending tick's included (it may not have run yet)."""
        pending = 0.0 if self._due is None else asyncio.get_running_loop().time() - self._due
        return self._late_s + max(0.0, pending)

    async def __aenter__(self) -> LoopLag:
        self._ticker = asyncio.create_task(self._tick(), name="health-loop-lag")
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._due = due = loop.time() + TICK_S
            await asyncio.sleep(TICK_S)
            self._due = None
            self._late_s += max(0.0, loop.time() - due)


async def database_state(
    engine: AsyncEngine, *, logged: bool = True, timeout_s: float = DATABASE_TIMEOUT_S
) -> str:
    """``ok``, ``slow`` (timed out while the loop was late, or the pool is full) or ``unreachable``."""
    async with LoopLag() as lag:
        connected = False
        try:
            async with asyncio.timeout(timeout_s), engine.connect() as conn:
                connected = True
                await conn.execute(text("SELECT 1"))
        except TimeoutError:
            if not connected and _pool_full(engine):
                # Timed out queued for a connection (the pool's own wait, 30 s by default,
                # is longer than ours): the database is answering the clients holding them.
                if logged:
                    log.warning("health check: database slow (every pooled connection in use)")
                return SLOW
            if lag.late_s >= LATE_SHARE * timeout_s:
                if logged:
                    log.warning(
                        "health check: database slow (no answer in %g s; the event loop ran %.1f s late)",
                        timeout_s,
                        lag.late_s,
                    )
                return SLOW
            if logged:
                log.error("health check: database unreachable (no answer in %g s)", timeout_s)
            return UNREACHABLE
        except PoolTimeout:  # every connection in use: the database is working, for others
            if logged:
                log.warning("health check: database slow (every pooled connection in use)")
            return SLOW
        except Exception:
            if logged:
                log.exception("health check: database unreachable")
            return UNREACHABLE
    return OK


def _pool_full(engine: AsyncEngine) -> bool:
    """Every connection the pool may open is checked out, so a checkout waits its turn."""
    pool = engine.sync_engine.pool
    if not isinstance(pool, QueuePool):
        return False
    most = getattr(pool, "_max_overflow", -1)  # -1: no limit (SQLAlchemy's own attribute)
    return most >= 0 and pool.checkedout() >= pool.size() + most


async def watch_database(engine: AsyncEngine, report: HealthReport) -> asyncio.Task[None]:
    """Check once now (a server is not healthy before it has seen its database), then every
    ``DATABASE_EVERY_S`` in a task (the caller cancels it at shutdown)."""
    report.database = await database_state(engine)

    async def keep_watching() -> None:
        while True:
            await asyncio.sleep(DATABASE_EVERY_S)
            # Logged when it changes, not once a second for as long as the database is away.
            was = report.database
            report.database = await database_state(engine, logged=was == OK)
            if report.database == OK and was != OK:
                log.warning("health check: database answering again")

    return asyncio.create_task(keep_watching(), name="health-database-watch")


_installed: list[HealthReport] = []
"""The process's report, if an app is running (one app per server process)."""


def install(report: HealthReport | None) -> None:
    """Make ``report`` the one the front door answers from (the app does at start-up; None at stop)."""
    _installed[:] = [report] if report is not None else []


def installed() -> HealthReport | None:
    return _installed[0] if _installed else None
