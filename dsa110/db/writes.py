"""Write transactions that take the write lock first, with a budget for waiting on it.

Every writer that reads before it writes (running sums, state machines, "exists?" checks)
must hold the lock for the rows it reads, or two writers both read the old value and one
update is lost. On PostgreSQL the row locks (``SELECT ... FOR UPDATE``) do that. On SQLite
they do nothing, and the driver opens no transaction before a ``SELECT``: the reads ran
outside any lock. ``write_transaction`` therefore opens SQLite transactions with
``BEGIN IMMEDIATE`` (the database's one write lock, taken before the first read), so
writers of all processes sharing the file run one after the other.

Waiting for the lock is bounded by the engine's budget (``write_lock_timeout_s``, set by
``dsa110.db.engine.create_engine``): SQLite's busy timeout, PostgreSQL's ``lock_timeout``
for this transaction. A writer that waits longer, or that PostgreSQL picks as a deadlock
victim, raises :class:`dsa110.errors.BusyError` (code ``BUSY``, retry later) and has
written nothing: the transaction rolls back as a whole.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.errors import BusyError
from dsa110.ops.breakers import DATABASE

WRITE_LOCK_OPTION: Final = "dsa110_write_lock_timeout_s"
"""The engine execution option holding the lock budget in seconds."""
DEFAULT_WRITE_LOCK_TIMEOUT_S: Final = 10.0
MAX_RETRY_AFTER_S: Final = 30

_SQLITE_BUSY: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
# lock_not_available (lock_timeout), deadlock_detected, serialization_failure
_POSTGRES_BUSY: Final = frozenset({"55P03", "40P01", "40001"})
# character_not_in_repertoire (NUL in text), untranslatable_character (\u0000 in jsonb)
_POSTGRES_UNSTORABLE_TEXT: Final = frozenset({"22021", "22P05"})


def lock_budget_s(engine: AsyncEngine) -> float:
    """How long a writer of ``engine`` may wait for the write lock."""
    value = engine.get_execution_options().get(WRITE_LOCK_OPTION, DEFAULT_WRITE_LOCK_TIMEOUT_S)
    return float(value)


def retry_after_s(budget_s: float) -> int:
    """Seconds a refused writer should wait: about as long as it already waited."""
    return max(1, min(MAX_RETRY_AFTER_S, math.ceil(budget_s)))


def _sqlstate(orig: BaseException | None) -> str | None:
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state is None and orig is not None:
        state = getattr(orig.__cause__, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_busy(error: BaseException) -> bool:
    """``error`` means the lock was not granted in time (or a deadlock victim), not a defect."""
    if not isinstance(error, DBAPIError):
        return False
    orig = error.orig
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        if code is not None:
            return code & 0xFF in _SQLITE_BUSY  # extended codes (BUSY_SNAPSHOT...) keep the base
        return "database is locked" in str(orig) or "database table is locked" in str(orig)
    return _sqlstate(orig) in _POSTGRES_BUSY


def is_pool_exhausted(error: BaseException) -> bool:
    """``error`` is the connection pool's wait running out (``QueuePool limit ... timed out``):
    every connection is in use, so the database is working, only not for one more caller.
    Like a lock not granted, it is load to retry after, not a defect: answered ``BUSY``."""
    return isinstance(error, PoolTimeout)


def pool_busy_error() -> BusyError:
    wait = retry_after_s(1.0)  # a connection is returned as soon as any statement ends
    return BusyError(f"the database's connections are all in use; retry in {wait} s", retry_after_s=wait)


def is_unstorable_text(error: BaseException) -> bool:
    """``error`` is PostgreSQL refusing a text value it cannot hold: a NUL character, which
    its text types exclude (SQLite keeps it). Such text can only have come from a client
    (a key looked up, a name stored), so it is the client's bad input, not a server fault;
    the statement's transaction has rolled back."""
    return isinstance(error, DBAPIError) and _sqlstate(error.orig) in _POSTGRES_UNSTORABLE_TEXT


def busy_error(budget_s: float) -> BusyError:
    wait = retry_after_s(budget_s)
    return BusyError(
        f"the database is busy with other writers (waited {budget_s:g} s for the write lock); "
        f"nothing was written, retry in {wait} s",
        retry_after_s=wait,
    )


async def _lock_first(conn: AsyncConnection, budget_s: float) -> None:
    if conn.dialect.name == "sqlite":
        # The busy timeout (set per connection by create_engine) bounds this wait.
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(f"SET LOCAL lock_timeout = {max(1, int(budget_s * 1000))}")


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction holding the write lock from its first statement; commits on success.

    Use it for every write. Raises :class:`BusyError` when the lock is not granted within
    the budget; anything else rolls back and propagates unchanged.
    """
    budget = lock_budget_s(engine)
    try:
        async with engine.begin() as conn:
            await _lock_first(conn, budget)
            yield conn
    except DBAPIError as error:
        if is_busy(error) or isinstance(error, OperationalError | InterfaceError):
            DATABASE.failure(error.orig if error.orig is not None else error)  # a watching breaker
        if is_busy(error):
            raise busy_error(budget) from error
        raise
    DATABASE.success()
