"""Stopping a request's database work: the statements running for it, and any to come.

Cancelling the task that serves a request is not enough to stop its SQL:

* DataLoader batches run in tasks of their own (created under the request's context),
  which nobody cancels;
* on SQLite, aiosqlite runs each statement in its connection's thread: cancelling the
  awaiting task leaves the statement running (and the connection busy) until it ends.

So each request runs inside a ``Work`` (a context variable, inherited by every task the
request creates). The engine's pool events record, per ``Work``, the connections it
has checked out and the tasks that checked them out (each pool entry also records
its current owner, so a connection returned and reused is never interrupted). ``Work.stop()``:

* interrupts the SQLite statements on those connections (``sqlite3_interrupt``: the
  statement fails with "interrupted" at its next instruction; the rollback or close that
  the cancelled tasks queue after it ends the transaction), again and again until the
  calls the work had queued on the connection's thread have all run: an interrupt reaches
  only a statement running at that moment, and one queued but not yet started would
  otherwise run to its end, holding the write lock;
* on PostgreSQL, asks the server to cancel the statement (``pg_cancel_backend``, from
  a connection of its own) and retires the connection;
* cancels those tasks;
* refuses any statement the work would still start (``WorkStopped``).

Outside a ``Work`` (background loops, jobs, the CLI) nothing is tracked.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import sqlite3
import threading
from collections.abc import Coroutine, Iterator
from contextvars import ContextVar
from functools import partial
from typing import Any, Final

import aiosqlite
import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.writes import lock_budget_s
from dsa110.errors import PublicError

log = logging.getLogger("dsa110.db.work")

_CURRENT: ContextVar[Work | None] = ContextVar("dsa110_db_work", default=None)
_TRACKED = "dsa110_work_tracked"
_OWNER = "dsa110_work"  # key in a pool entry's ``info``: the Work it is checked out for
_CANCEL = "dsa110_cancel"  # ... and how to cancel its statement from outside (PostgreSQL)
CANCEL_TIMEOUT_S = 5.0
REINTERRUPT_S = 0.01  # how often a stopped SQLite connection is interrupted again
INTERRUPT_MARGIN_S = 30.0
"""... and for how long at most: the engine's write-lock budget (``writes.lock_budget_s``)
and this much more. An interrupt does not end SQLite's wait for another writer's lock,
which the budget bounds; nothing else queued before the stop outlives an interruption."""
_INTERRUPT_FOR = "dsa110_interrupt_for_s"  # key in a pool entry's ``info``: that bound
DEADLINE_EXCEEDED: Final = "DEADLINE_EXCEEDED"
CANCELLED: Final = "CANCELLED"


class WorkStopped(PublicError):
    """The request's work was stopped (deadline passed, client gone): no more SQL for it."""

    code = DEADLINE_EXCEEDED


class Work:
    """The database work of one request (see the module docstring)."""

    def __init__(self, reason: str = "the request's work was stopped") -> None:
        self.reason = reason
        self.stopped = False
        self.code: str | None = None  # why it was stopped: DEADLINE_EXCEEDED or CANCELLED (its client)
        self.finished = False
        self._records: list[Any] = []  # pool entries checked out for this work
        self._tasks: dict[int, asyncio.Task[Any]] = {}

    @property
    def active(self) -> bool:
        return not self.finished and not self.stopped

    def checked_out(self, record: Any) -> None:
        if self.stopped:
            raise WorkStopped(self.reason)
        if self.finished:
            return
        record.info[_OWNER] = self
        self._records.append(record)
        task = _current_task()
        if task is not None:
            self._tasks[id(task)] = task

    def stop(self, reason: str | None = None, code: str = DEADLINE_EXCEEDED) -> Coroutine[Any, Any, None]:
        """Refuse new statements, cancel the work's tasks, and end its running statements.

        What must happen at once happens in this call (before a cancelled task can hand
        its connection back); the returned coroutine does the rest (interrupting, and
        asking PostgreSQL to cancel) and must be awaited or scheduled. ``code`` says why
        (``DEADLINE_EXCEEDED``, or ``CANCELLED`` when its client ended it): what the
        audit log records as the outcome of a mutation stopped half-way.
        """
        if self.stopped or self.finished:
            return _nothing()
        self.stopped = True
        self.code = code
        if reason:
            self.reason = reason
        # Only connections still checked out for this work: a pool entry returned since
        # may be serving another request now.
        records = dict.fromkeys(self._records)  # once each: an entry may be checked out again
        ends = [end for r in records if r.info.get(_OWNER) is self if (end := _safe_ender(r)) is not None]
        self._records.clear()
        current = _current_task()
        for task in list(self._tasks.values()):
            if task is not current and not task.done():
                task.cancel()
        self._tasks.clear()
        return _run_all(ends)

    def finish(self) -> None:
        """The request is over: stop tracking (tasks it started may outlive it)."""
        self.finished = True
        self._records.clear()
        self._tasks.clear()


def _safe_ender(record: Any) -> Coroutine[Any, Any, None] | None:
    """:func:`_ender`, logged and skipped when it fails: one pool entry that cannot be ended
    (being invalidated as the stop lands) must not keep the stop from the others and from
    the work's tasks."""
    try:
        return _ender(record)
    except Exception:
        log.warning("could not end a stopped request's statement", exc_info=True)
        return None


def _ender(record: Any) -> Coroutine[Any, Any, None] | None:
    """How to end the statement running on this pool entry's connection, if any."""
    driver = record.driver_connection
    ending: Coroutine[Any, Any, None]
    if isinstance(driver, aiosqlite.Connection):
        return _interrupt_queued(driver, record.info.get(_INTERRUPT_FOR, INTERRUPT_MARGIN_S))
    cancel = record.info.get(_CANCEL)
    if hasattr(driver, "get_server_pid") and cancel is not None:
        # asyncpg cancels a statement when its waiting task is cancelled, but SQLAlchemy
        # then closes the connection, racing the cancel request (and a backend waiting on
        # a lock never notices a closed socket). Ask the server itself, from a connection
        # of our own; the entry is never handed out again, so the pid stays ours.
        record.invalidate(soft=True)
        ending = cancel(driver.get_server_pid())
        return ending
    return None


def _interrupt_queued(driver: aiosqlite.Connection, interrupt_for_s: float) -> Coroutine[Any, Any, None]:
    """End the statements queued on an aiosqlite connection's thread so far, running or not.

    ``sqlite3_interrupt`` reaches only the statement running at that moment: SQLite clears
    the flag when the connection's next statement starts. A statement the work queued that
    the thread has not started yet (busy, or not yet scheduled: under CPU load a window of
    milliseconds) would then run to its end, holding the write lock all along, however
    long it takes. So a marker is queued behind the work's calls now, before any task of
    the work is cancelled (their rollback or close comes after it), and the connection is
    interrupted until the thread reaches the marker (for ``interrupt_for_s`` at most). A lock
    makes each interrupt land before the marker runs, so none reaches what is queued after
    it: SQLite clears the flag when a statement starts with no other one active, which holds
    here as the adapter fetches every row of a cursor (this project keeps no server-side
    cursor open across calls). Uses aiosqlite's call queue (``_tx``), as SQLAlchemy's own
    adapter does to set the isolation level.
    """
    lock = threading.Lock()
    reached = False
    # The sqlite3 connection itself, taken now: aiosqlite forgets it as soon as a close is
    # asked for, even one that has not reached the thread; interrupting it directly works
    # until it is really closed (then ProgrammingError).
    connection = driver._connection
    if connection is None:
        return _nothing()

    def marker() -> None:  # runs on the connection's thread
        nonlocal reached
        with lock:
            reached = True

    driver._tx.put_nowait((None, marker))

    async def interrupt_until_reached() -> None:
        give_up = asyncio.get_running_loop().time() + interrupt_for_s
        while asyncio.get_running_loop().time() < give_up:
            with lock:
                if reached or not driver._thread.is_alive():
                    return
                try:
                    connection.interrupt()  # sqlite3_interrupt: safe from any thread
                except sqlite3.ProgrammingError:
                    return  # closed: its transaction ended with it
            await asyncio.sleep(REINTERRUPT_S)
        log.warning("a stopped request's SQLite connection did not reach its stop in %.0f s", interrupt_for_s)

    return interrupt_until_reached()


async def _run_all(ends: list[Coroutine[Any, Any, None]]) -> None:
    # Together: one connection's statement may take a while to end (SQLite's comes to an
    # end only once its thread reaches it), and must not hold up the others' interrupts.
    results = await asyncio.gather(*ends, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            log.warning("could not end a stopped request's statement", exc_info=result)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):
            raise result


async def _nothing() -> None:
    return None


async def _cancel_backend(url: URL, pid: int) -> None:
    ssl = url.query.get("ssl")
    conn = await asyncpg.connect(
        **url.translate_connect_args(username="user"), ssl=ssl, timeout=CANCEL_TIMEOUT_S
    )
    try:
        await conn.execute("SELECT pg_cancel_backend($1)", pid, timeout=CANCEL_TIMEOUT_S)
    finally:
        await conn.close(timeout=CANCEL_TIMEOUT_S)


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def current_work() -> Work | None:
    return _CURRENT.get()


def outside_work() -> contextvars.Context:
    """A copy of the current context that belongs to no ``Work``: for a task that must finish
    what a request began even if the request is stopped (a write that cannot be left half
    done, such as a product's files moving while its row says ``publishing``)."""
    context = contextvars.copy_context()
    context.run(_CURRENT.set, None)
    return context


@contextlib.contextmanager
def running(work: Work) -> Iterator[Work]:
    """Run the enclosed code (and every task it creates) as part of ``work``."""
    token = _CURRENT.set(work)
    try:
        yield work
    finally:
        _CURRENT.reset(token)
        work.finish()


async def run_within(
    limit_s: float | None,
    operation: Coroutine[Any, Any, None],
    reason: str,
    *,
    ended: str = "the work was ended by its caller",
) -> tuple[asyncio.Task[None], bool]:
    """Run ``operation`` as a ``Work`` of its own, stopped once ``limit_s`` passes (None: never).

    Returns its task, done, and whether the limit stopped it (its SQL interrupted or
    cancelled with ``reason``, its task cancelled and awaited); the caller reads the task's
    outcome. The operation runs in a task of its own, so that the limit never cancels the
    caller's, and in its own ``Work``, so that stopping it reaches none of the caller's SQL
    (nor stopping the caller's, this one's). A cancellation of the caller's stops the work
    too (``CANCELLED``, with ``ended``) and is passed on.
    """
    work = Work(reason)
    task = asyncio.create_task(_as_work(work, operation))
    try:
        await asyncio.wait({task}, timeout=limit_s)
        if task.done():
            return task, False
        # Before the cancel: no busy connection goes back to the pool. Shielded, held: a
        # cancellation of the caller while it waits must not cut the interrupts short.
        stopping = _held(work.stop(reason))
        task.cancel()
        await asyncio.shield(stopping)
        await asyncio.wait({task})
        return task, True
    except asyncio.CancelledError:
        _held(work.stop(ended, CANCELLED))
        task.cancel()
        raise


_ending: set[asyncio.Future[None]] = set()


def _held(stopping: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
    """``stopping`` scheduled, and held until done (a pending task is only weakly referenced)."""
    ending = asyncio.ensure_future(stopping)
    _ending.add(ending)
    ending.add_done_callback(_ending.discard)
    return ending


async def _as_work(work: Work, operation: Coroutine[Any, Any, None]) -> None:
    with running(work):
        await operation


def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info[_OWNER] = None


def _before_execute(*_args: Any) -> None:
    work = _CURRENT.get()
    if work is not None and work.stopped:
        raise WorkStopped(work.reason)


def track_work(engine: AsyncEngine) -> AsyncEngine:
    """Let ``Work.stop`` reach the statements this engine runs (idempotent)."""
    sync_engine = engine.sync_engine
    if getattr(sync_engine, _TRACKED, False):
        return engine
    cancel = partial(_cancel_backend, engine.url) if engine.dialect.name == "postgresql" else None
    interrupt_for_s = lock_budget_s(engine) + INTERRUPT_MARGIN_S

    def on_checkout(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        record.info[_OWNER] = None
        work = _CURRENT.get()
        if work is not None:
            record.info[_CANCEL] = cancel
            record.info[_INTERRUPT_FOR] = interrupt_for_s
            work.checked_out(record)

    event.listen(sync_engine, "checkout", on_checkout)
    event.listen(sync_engine, "checkin", _on_checkin)
    event.listen(sync_engine, "before_cursor_execute", _before_execute)
    setattr(sync_engine, _TRACKED, True)
    return engine
