"""``redis://host:port/db``: Redis pub/sub through ``redis.asyncio``.

One pub/sub connection per process carries every channel this process listens to, read by
one task. SUBSCRIBE returns only after Redis confirmed it, so an event published after
``subscribe`` returned is received. When the connection drops, redis-py reconnects and
re-subscribes; the confirmation of an already-confirmed channel is how this module notices
a reconnect, and it then sends every local subscriber a resync event, since Redis pub/sub
does not replay what was published meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dsa110.events.bus import (
    DEFAULT_NAMESPACE,
    DEFAULT_QUEUE_SIZE,
    EventBus,
    EventBusUnavailable,
    cancel_and_wait,
)

logger = logging.getLogger(__name__)


class RedisEventBus(EventBus):
    scheme = "redis"

    def __init__(
        self,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        origin: str | None = None,
        confirm_timeout_s: float = 10.0,
        max_backoff_s: float = 10.0,
    ) -> None:
        super().__init__(namespace=namespace, queue_size=queue_size, origin=origin)
        self.url = url
        self.confirm_timeout_s = confirm_timeout_s
        self.max_backoff_s = max_backoff_s
        self._client: aioredis.Redis | None = None
        self._pubsub: aioredis.client.PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._confirmed: set[str] = set()

    @property
    def client_name(self) -> str:
        """The CLIENT SETNAME of this bus's connections (visible in CLIENT LIST)."""
        return "dsa110-events-" + "".join(c if c.isalnum() else "-" for c in self.origin)

    async def _start_transport(self) -> None:
        # Keepalive: a pub/sub connection only reads, so a silently dead peer is noticed by
        # TCP keepalive rather than never.
        client = aioredis.from_url(self.url, client_name=self.client_name, socket_keepalive=True)
        try:
            await client.ping()
            pubsub = client.pubsub()
            await pubsub.connect()
            assert pubsub.connection is not None
            # Registered after the first connect, so it fires on reconnects only.
            pubsub.connection.register_connect_callback(self._on_connection_made)
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise EventBusUnavailable(f"cannot reach Redis at {self.url}: {exc}") from exc
        self._client, self._pubsub = client, pubsub
        self._reader = asyncio.create_task(
            self._read_loop(pubsub), name=f"event-bus-redis-reader:{self.origin}"
        )

    async def _close_transport(self) -> None:
        await cancel_and_wait(self._reader)
        self._reader = None
        for waiter in self._pending.values():
            waiter.cancel()
        self._pending.clear()
        if self._pubsub is not None:
            if self._pubsub.connection is not None:
                self._pubsub.connection.deregister_connect_callback(self._on_connection_made)
            await self._pubsub.aclose()
        if self._client is not None:
            await self._client.aclose()
        self._pubsub = self._client = None

    async def _send(self, wire_channel: str, data: str) -> None:
        assert self._client is not None
        try:
            await self._client.publish(wire_channel, data)
        except (RedisError, OSError) as exc:
            raise EventBusUnavailable(f"Redis PUBLISH on {wire_channel} failed: {exc}") from exc

    async def _listen(self, wire_channel: str) -> None:
        assert self._pubsub is not None
        confirmed = asyncio.get_running_loop().create_future()
        self._pending[wire_channel] = confirmed
        try:
            await self._pubsub.subscribe(wire_channel)
            await asyncio.wait_for(confirmed, self.confirm_timeout_s)
        except (RedisError, OSError, TimeoutError) as exc:
            raise EventBusUnavailable(f"Redis SUBSCRIBE {wire_channel} failed: {exc!r}") from exc
        finally:
            self._pending.pop(wire_channel, None)

    async def _unlisten(self, wire_channel: str) -> None:
        assert self._pubsub is not None
        self._confirmed.discard(wire_channel)
        await self._pubsub.unsubscribe(wire_channel)

    async def _read_loop(self, pubsub: aioredis.client.PubSub) -> None:
        backoff = 0.1
        while True:
            try:
                message = await pubsub.get_message(timeout=None)
            except (RedisError, OSError) as exc:
                # redis-py's own retries are exhausted; it reconnects (and re-subscribes) on
                # the next read, which the subscribe confirmations below will reveal.
                logger.warning("event bus: Redis read failed (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            backoff = 0.1
            if message is None:
                continue
            try:
                self._handle(message)
            except Exception:
                # One bad message must never stop fan-out for the whole process.
                logger.exception("event bus: failed to handle a Redis message")

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        raw_channel = message.get("channel")
        channel = raw_channel.decode("utf-8", "replace") if isinstance(raw_channel, bytes) else raw_channel
        if not isinstance(channel, str):
            return
        if kind == "message":
            self._deliver_raw(channel, message.get("data") or b"")
        elif kind == "subscribe":
            waiter = self._pending.get(channel)
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(None)
                self._confirmed.add(channel)
            elif channel in self._confirmed:
                # A confirmation for a channel we already had: redis-py re-subscribed it
                # after a reconnect. Only now is the channel live again, so only now is a
                # resync useful (a reload done earlier could miss events still in flight).
                self._deliver_resync(channel)

    def _on_connection_made(self, _connection: object) -> None:
        """redis-py calls this after every (re)connect of the pub/sub connection."""
        self.stats.reconnects += 1
        logger.warning("event bus: Redis pub/sub connection re-established")
