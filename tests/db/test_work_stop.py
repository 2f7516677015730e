"""A stopped request's SQLite write gives the write lock back at once, wherever the stop lands.

aiosqlite runs a connection's statements on a thread of its own, from a queue. A stop
(``dsa110.db.work``: the client ended the operation, or its deadline passed) interrupts
the connection's statement; but ``sqlite3_interrupt`` reaches only a statement running
at that moment. One the work had queued that the thread had not started yet (busy, or
not yet scheduled under CPU load) ran to its end after the stop, holding the write lock
all along: every other writer waited, and past the lock budget was refused as ``BUSY``.

Here the write crawls (a progress handler), for as long as the test lets it, so that
only an interrupt ends it; where the stop lands is set up deterministically: while the
statement waits in the thread's queue (the thread held by the test), while it runs, or
between two statements of the transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.engine import create_engine
from dsa110.db.work import run_within, track_work
from dsa110.db.writes import write_transaction
from tests.databases import crawl_when
from tests.waiting import eventually

WAIT_S = 10.0
DEADLINE_S = 2.0
# Far more rows than a crawl lets through in WAIT_S (5 ms every 100 instructions), few
# enough to be written in a moment once the crawl ends.
MANY_ROWS = (
    "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) "
    "SELECT x FROM c"
)
ONE_ROW = "INSERT INTO t VALUES (0)"


class Crawl:
    """The engine's connections crawl through their statements while ``on`` is set."""

    def __init__(self) -> None:
        self.on = threading.Event()
        self.crawling = threading.Event()  # a statement crawled a step

    def install_on(self, engine: AsyncEngine) -> None:
        crawl_when(engine, self._slow, 0.005, every=100)

    def _slow(self, _conn: Any) -> bool:
        if self.on.is_set():
            self.crawling.set()
            return True
        return False


class HeldThread:
    """Holds a connection's thread as the engine queues a statement to it: the statement
    waits in the queue, not started, until ``release``."""

    def __init__(self, engine: AsyncEngine, statement: str) -> None:
        self.statement = statement
        self.queued = asyncio.Event()
        self._gate = threading.Event()
        self._loop = asyncio.get_running_loop()
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)

    def _before(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement == self.statement and not self.queued.is_set():
            driver = conn.connection.dbapi_connection.driver_connection
            driver._tx.put_nowait((None, self._gate.wait))  # aiosqlite's queue of calls to its thread
            self._loop.call_soon(self.queued.set)

    def release(self) -> None:
        self._gate.set()


def can_write(path: Path) -> bool:
    """Another writer gets the write lock now (no waiting for it)."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "work.db"


@pytest.fixture
def crawl() -> Crawl:
    return Crawl()


@pytest.fixture
async def engine(path: Path, crawl: Crawl) -> AsyncIterator[AsyncEngine]:
    engine = track_work(create_engine(f"sqlite+aiosqlite:///{path}"))
    crawl.install_on(engine)  # before the first connection
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
    yield engine
    crawl.on.clear()  # whatever the outcome: no statement crawls on past the test
    await engine.dispose()


@contextlib.asynccontextmanager
async def operation(
    engine: AsyncEngine, *statements: str, hang: bool = False
) -> AsyncIterator[asyncio.Task[Any]]:
    """A write run as its own work (as a GraphQL operation over a WebSocket is); leaving the
    block cancels it, as its client's ``complete`` does, which stops the work."""

    async def write() -> None:
        async with write_transaction(engine) as conn:
            for statement in statements:
                await conn.execute(text(statement))
            if hang:
                await asyncio.Event().wait()

    caller = asyncio.create_task(run_within(None, write(), "stopped by the test"))
    try:
        yield caller
    finally:
        caller.cancel()
        await asyncio.wait({caller})


async def test_a_stop_while_the_statement_waits_for_the_connections_thread_ends_it(
    engine: AsyncEngine, path: Path, crawl: Crawl
) -> None:
    held = HeldThread(engine, MANY_ROWS)
    crawl.on.set()
    try:
        async with operation(engine, MANY_ROWS) as caller:
            await asyncio.wait_for(held.queued.wait(), WAIT_S)
        assert caller.cancelled()
    finally:
        # The stop has interrupted the connection; only now does its thread start the
        # insert (released whatever the outcome: a held thread would hang the teardown).
        held.release()
    await eventually(lambda: can_write(path), timeout_s=WAIT_S)
    assert crawl.on.is_set()  # the insert was ended, not let through
    assert rows(path) == 0


async def test_a_stop_while_the_statement_runs_ends_it(engine: AsyncEngine, path: Path, crawl: Crawl) -> None:
    crawl.on.set()
    async with operation(engine, MANY_ROWS):
        await eventually(crawl.crawling.is_set, timeout_s=WAIT_S)
    await eventually(lambda: can_write(path), timeout_s=WAIT_S)
    assert rows(path) == 0


async def test_a_stop_between_two_statements_rolls_the_transaction_back(
    engine: AsyncEngine, path: Path, crawl: Crawl
) -> None:
    wrote = asyncio.Event()

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement == ONE_ROW:
            wrote.set()

    event.listen(engine.sync_engine, "after_cursor_execute", after)
    async with operation(engine, ONE_ROW, hang=True):
        await asyncio.wait_for(wrote.wait(), WAIT_S)  # the insert is done; the commit never comes
        assert not can_write(path)
    await eventually(lambda: can_write(path), timeout_s=WAIT_S)
    assert rows(path) == 0


async def test_a_caller_cancelled_while_its_deadline_stops_the_work_still_ends_the_queued_statement(
    engine: AsyncEngine, path: Path, crawl: Crawl
) -> None:
    # The deadline passes while the insert waits in the thread's queue; the stop interrupts
    # until the thread reaches it. The caller is then cancelled (its client went away) while
    # it waits for that stop: the interrupts must go on, or the insert runs to its end.
    held = HeldThread(engine, MANY_ROWS)
    crawl.on.set()

    async def write() -> None:
        async with write_transaction(engine) as conn:
            await conn.execute(text(MANY_ROWS))

    # A deadline the insert is queued well before (a checkout and BEGIN IMMEDIATE first);
    # the sleep ends strictly after it, so the caller is waiting for the stop by then.
    caller = asyncio.create_task(run_within(DEADLINE_S, write(), "past its deadline"))
    try:
        await asyncio.wait_for(held.queued.wait(), WAIT_S)
        await asyncio.sleep(DEADLINE_S + 0.5)
        assert not caller.done()
        caller.cancel()
        await asyncio.wait({caller})
    finally:
        held.release()
    await eventually(lambda: can_write(path), timeout_s=WAIT_S)
    assert crawl.on.is_set()
    assert rows(path) == 0
