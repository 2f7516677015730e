"""The health check's database state: overload is ``slow``, a database that is gone is ``unreachable``.

A check that times out while the event loop runs late (a busy server) must not report the
database unreachable: ``/healthz`` would answer 503 and a load balancer would pull a
working server out. A refused connection, or a database that does not answer while the
loop is on time, stays ``unreachable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

from dsa110.db.engine import create_engine
from server.health import SLOW, UNREACHABLE, database_state


@contextlib.asynccontextmanager
async def loop_kept_busy(block_s: float) -> AsyncIterator[None]:
    """The event loop blocked ``block_s`` at a time, as by many clients' synchronous work."""

    async def hog() -> None:
        while True:
            time.sleep(block_s)  # noqa: ASYNC251 (the point: a loop that runs late)
            await asyncio.sleep(0)

    task = asyncio.create_task(hog())
    await asyncio.sleep(0)
    try:
        yield
    finally:
        task.cancel()


async def test_a_check_timed_out_by_a_late_event_loop_says_slow(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}")
    try:
        async with loop_kept_busy(1.0):
            # Each of the check's round trips waits a whole blocked second: past its timeout.
            assert await database_state(engine, timeout_s=0.5) == SLOW
    finally:
        await engine.dispose()


async def test_a_full_connection_pool_says_slow(tmp_path: Path) -> None:
    engine = create_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'h.db'}", pool_size=1, max_overflow=0, pool_timeout=0.2
    )
    try:
        async with engine.connect():
            assert await database_state(engine) == SLOW
    finally:
        await engine.dispose()


async def test_a_check_that_waits_its_5_s_for_a_pooled_connection_says_slow(tmp_path: Path) -> None:
    # The pool's own wait (30 s by default) outlasts the check's timeout: under load the check
    # queues behind the clients holding every connection and times out waiting for one, on a
    # loop that is on time (it is waiting, not computing). The database answers them all:
    # overload, not a dead database (soak test: /healthz 503 `unreachable` at 256 clients).
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'h.db'}", pool_size=1, max_overflow=0)
    try:
        async with engine.connect():
            assert await database_state(engine, timeout_s=0.3) == SLOW
    finally:
        await engine.dispose()


async def test_a_database_that_does_not_answer_on_an_idle_loop_is_unreachable() -> None:
    # Accepts connections (the kernel does) and never says a word.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres")
        try:
            assert await database_state(engine, logged=False, timeout_s=0.5) == UNREACHABLE
        finally:
            await engine.dispose()


async def test_a_refused_connection_is_unreachable_even_on_a_busy_loop() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres")
    try:
        async with loop_kept_busy(0.2):
            assert await database_state(engine, logged=False) == UNREACHABLE
    finally:
        await engine.dispose()
