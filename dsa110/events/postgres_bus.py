"""``postgresql://...`` (or ``postgresql+asyncpg://``): LISTEN/NOTIFY through asyncpg.

No extra service, but three rules from the field (graphql-servers.md §3.4):
- LISTEN is per connection, so it runs on one dedicated, non-pooled connection;
- NOTIFY payloads must stay under 8000 bytes (enforced for every backend by the envelope);
- a dropped LISTEN connection silently loses every later NOTIFY, so a supervisor task
  notices the drop (asyncpg's termination callback, plus a periodic ``SELECT 1`` for
  drops the socket does not report), reconnects with capped exponential backoff,
  re-LISTENs every channel and sends local subscribers a resync event.
NOTIFY goes through a small pool of other connections; each runs in autocommit, so the
event is delivered as soon as it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from dsa110.events.bus import (
    DEFAULT_NAMESPACE,
    DEFAULT_QUEUE_SIZE,
    EventBus,
    EventBusUnavailable,
    cancel_and_wait,
)

logger = logging.getLogger(__name__)

_CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def asyncpg_dsn(url: str) -> str:
    """``postgresql+asyncpg://`` (SQLAlchemy style) -> ``postgresql://`` (asyncpg style)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


class PostgresEventBus(EventBus):
    scheme = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        origin: str | None = None,
        health_check_interval_s: float = 15.0,
        connect_timeout_s: float = 10.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        super().__init__(namespace=namespace, queue_size=queue_size, origin=origin)
        self.dsn = asyncpg_dsn(url)
        self.health_check_interval_s = health_check_interval_s
        self.connect_timeout_s = connect_timeout_s
        self.max_backoff_s = max_backoff_s
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._listening: set[str] = set()
        self._wanted: set[str] = set()
        # One operation at a time on the listener connection (asyncpg refuses overlap).
        self._listener_lock = asyncio.Lock()
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def listener_backend_pid(self) -> int | None:
        """The server process id of the LISTEN connection (for pg_stat_activity)."""
        listener = self._listener
        return None if listener is None or listener.is_closed() else listener.get_server_pid()

    # -- lifecycle ---------------------------------------------------------------------

    async def _start_transport(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=4, timeout=self.connect_timeout_s
            )
            await self._connect_listener()
        except _CONNECTION_ERRORS as exc:
            await self._close_connections()
            raise EventBusUnavailable(f"cannot reach PostgreSQL for events: {exc}") from exc
        self._supervisor = asyncio.create_task(self._supervise(), name=f"event-bus-pg-listener:{self.origin}")

    async def _close_transport(self) -> None:
        await cancel_and_wait(self._supervisor)
        self._supervisor = None
        await self._close_connections()

    async def _close_connections(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.terminate()
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await asyncio.wait_for(pool.close(), self.connect_timeout_s)
            pool.terminate()

    # -- backend hooks -----------------------------------------------------------------

    async def _send(self, wire_channel: str, data: str) -> None:
        assert self._pool is not None
        try:
            await self._pool.execute("SELECT pg_notify($1, $2)", wire_channel, data)
        except _CONNECTION_ERRORS as exc:
            raise EventBusUnavailable(f"PostgreSQL NOTIFY on {wire_channel} failed: {exc}") from exc

    async def _listen(self, wire_channel: str) -> None:
        self._wanted.add(wire_channel)
        async with self._listener_lock:
            listener = self._listener
            if listener is None or listener.is_closed() or wire_channel in self._listening:
                return  # the supervisor LISTENs on every wanted channel when it reconnects
            try:
                await listener.add_listener(wire_channel, self._on_notification)
            except _CONNECTION_ERRORS as exc:
                # Almost always the connection dropping under us (asyncpg may report that as
                # an internal protocol-state error before it marks the connection closed).
                # Drop the connection: the supervisor reconnects, LISTENs on every wanted
                # channel, this one included, and sends the subscriber a resync.
                logger.warning("event bus: LISTEN %s failed (%s); reconnecting", wire_channel, exc)
                listener.terminate()
                self._lost.set()
                return
            self._listening.add(wire_channel)

    async def _unlisten(self, wire_channel: str) -> None:
        self._wanted.discard(wire_channel)
        async with self._listener_lock:
            listener = self._listener
            if wire_channel not in self._listening or listener is None:
                return
            self._listening.discard(wire_channel)
            if not listener.is_closed():
                await listener.remove_listener(wire_channel, self._on_notification)

    def _on_notification(self, _connection: object, _pid: int, channel: str, payload: str) -> None:
        self._deliver_raw(channel, payload)

    # -- the reconnecting listener -----------------------------------------------------

    async def _connect_listener(self) -> None:
        """Open a fresh LISTEN connection and LISTEN on every wanted channel."""
        listener = await asyncpg.connect(
            self.dsn,
            timeout=self.connect_timeout_s,
            server_settings={"application_name": "dsa110-events-listener"},
        )
        async with self._listener_lock:
            try:
                self._lost.clear()
                listening: set[str] = set()
                for wire_channel in sorted(self._wanted):
                    await listener.add_listener(wire_channel, self._on_notification)
                    listening.add(wire_channel)
            except BaseException:
                listener.terminate()
                raise
            listener.add_termination_listener(self._on_listener_terminated)
            self._listener, self._listening = listener, listening
            if listener.is_closed():  # dropped before the callback was registered
                self._lost.set()

    def _on_listener_terminated(self, connection: object) -> None:
        if connection is self._listener:
            self._lost.set()

    async def _supervise(self) -> None:
        while True:
            await self._wait_until_lost()
            logger.warning("event bus: PostgreSQL LISTEN connection lost; reconnecting")
            old, self._listener = self._listener, None
            if old is not None:
                old.terminate()
            backoff = 0.1
            while True:
                try:
                    await self._connect_listener()
                    break
                except _CONNECTION_ERRORS as exc:
                    logger.warning(
                        "event bus: PostgreSQL reconnect failed (%s); retry in %.1f s", exc, backoff
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff_s)
            self.stats.reconnects += 1
            self._deliver_resync()

    async def _wait_until_lost(self) -> None:
        """Return when the LISTEN connection is closed or stops answering."""
        while True:
            # asyncio.timeout rather than wait_for: no helper task per health-check period.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.health_check_interval_s):
                    await self._lost.wait()
                return
            listener = self._listener
            if listener is None or listener.is_closed():
                return
            try:
                async with self._listener_lock:
                    await listener.fetchval("SELECT 1", timeout=self.connect_timeout_s)
            except _CONNECTION_ERRORS:
                return
