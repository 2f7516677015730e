"""The event-bus interface and the per-process fan-out shared by every backend.

A backend only moves strings between processes: ``_send`` one encoded event, ``_listen`` /
``_unlisten`` a wire channel, and call ``_deliver_raw`` for every message it receives.
Everything else lives here, once: channel and payload validation, the envelope, one
backend subscription per channel per process however many local subscribers it has, the
bounded per-subscriber queues, malformed-message accounting, resync after reconnects, and
a lifecycle that leaves no task behind.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Literal

from dsa110.events.channels import validate_channel, validate_namespace
from dsa110.events.envelope import (
    MAX_ORIGIN_LENGTH,
    Event,
    MalformedEvent,
    decode_event,
    encode_event,
)
from dsa110.events.subscription import Subscription
from dsa110.ops.breakers import EVENT_BUS

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE: Final = "dsa110"
DEFAULT_QUEUE_SIZE: Final = 256


class EventBusError(RuntimeError):
    """The bus cannot do what was asked (not started, closed, or its server is unreachable)."""


class EventBusUnavailable(EventBusError):
    """Redis or PostgreSQL could not be reached or dropped the request."""


@dataclass
class BusStats:
    """Counters for health pages and tests; they only grow."""

    published: int = 0
    """Events this process published."""
    received: int = 0
    """Valid events that arrived for a channel with local subscribers."""
    delivered: int = 0
    """Events queued to local subscribers (one per subscriber per event)."""
    dropped: int = 0
    """Queued events discarded because a subscriber's queue was full (drop oldest)."""
    malformed: int = 0
    """Wire messages that were not valid envelopes (dropped, logged)."""
    reconnects: int = 0
    """Times the backend connection was re-established (each sends resync events)."""


def default_origin() -> str:
    """``host:pid:token``: the process, plus a token so two buses in one process differ."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"[-MAX_ORIGIN_LENGTH:]


class EventBus(abc.ABC):
    """Publish small JSON events on named channels; subscribe from any process.

    Delivery is at-most-once, in publication order per publisher and channel; a process
    receives its own events too. After a backend reconnect every local subscriber gets a
    ``resync`` event, because events published meanwhile are lost.
    """

    scheme: str = ""

    def __init__(
        self,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        origin: str | None = None,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self.namespace = validate_namespace(namespace)
        self.queue_size = queue_size
        self.origin = origin or default_origin()
        if len(self.origin) > MAX_ORIGIN_LENGTH:
            raise ValueError(f"origin longer than {MAX_ORIGIN_LENGTH} characters")
        self.stats = BusStats()
        self._state: Literal["new", "running", "closed"] = "new"
        self._subscribers: dict[str, set[Subscription]] = {}
        # Attach/detach transitions are serialised so a second subscriber to a channel waits
        # until the first one's backend subscription is confirmed.
        self._membership = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._state == "running"

    async def start(self) -> None:
        """Connect to the backend; raise ``EventBusUnavailable`` if it cannot be reached."""
        if self._state == "running":
            return
        if self._state == "closed":
            raise EventBusError("a closed event bus cannot be restarted; create a new one")
        await self._start_transport()
        self._state = "running"

    async def close(self) -> None:
        """End every subscription, stop background tasks, close connections. Idempotent."""
        if self._state == "closed":
            return
        was_running = self._state == "running"
        self._state = "closed"
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription._end()
        self._subscribers.clear()
        if was_running:
            await self._close_transport()

    async def __aenter__(self) -> EventBus:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- public API --------------------------------------------------------------------

    async def publish(self, channel: str, payload: dict[str, Any]) -> Event:
        """Publish ``payload`` (a JSON object) on ``channel`` and return the event sent.

        Raises ``ValueError`` for a bad channel, ``InvalidEvent``/``EventTooLarge`` for a bad
        payload, ``EventBusError`` when not running, ``EventBusUnavailable`` when the backend
        refused or could not be reached (the event is then lost).
        """
        validate_channel(channel)
        event = Event(channel=channel, payload=payload, published_at=datetime.now(UTC), origin=self.origin)
        data = encode_event(event)
        self._require_running()
        try:
            await self._send(self.wire_channel(channel), data)
        except EventBusUnavailable as error:
            EVENT_BUS.failure(error)  # a watching breaker: the dashboard's view of the bus's health
            raise
        EVENT_BUS.success()
        self.stats.published += 1
        return event

    def subscribe(self, *channels: str, queue_size: int | None = None) -> Subscription:
        """A subscription to ``channels``; enter it with ``async with`` to start receiving."""
        if not channels:
            raise ValueError("subscribe needs at least one channel")
        unique = tuple(dict.fromkeys(validate_channel(c) for c in channels))
        return Subscription(self, unique, queue_size or self.queue_size)

    def wire_channel(self, channel: str) -> str:
        """The Redis channel / PostgreSQL NOTIFY channel that carries ``channel``."""
        return f"{self.namespace}:{channel}"

    def subscriber_count(self, channel: str) -> int:
        return len(self._subscribers.get(channel, ()))

    # -- called by Subscription --------------------------------------------------------

    async def _attach(self, subscription: Subscription) -> None:
        async with self._membership:
            self._require_running()
            added: list[str] = []
            try:
                for channel in subscription.channels:
                    subscribers = self._subscribers.get(channel)
                    if subscribers is None:
                        await self._listen(self.wire_channel(channel))
                        subscribers = self._subscribers[channel] = set()
                    subscribers.add(subscription)
                    added.append(channel)
            except BaseException:
                subscription._end()
                await self._remove(subscription, added)
                raise

    async def _detach(self, subscription: Subscription) -> None:
        async with self._membership:
            await self._remove(subscription, subscription.channels)

    async def _remove(self, subscription: Subscription, channels: tuple[str, ...] | list[str]) -> None:
        for channel in channels:
            subscribers = self._subscribers.get(channel)
            if subscribers is None:
                continue
            subscribers.discard(subscription)
            if subscribers:
                continue
            del self._subscribers[channel]
            if self._state != "running":
                continue
            try:
                await self._unlisten(self.wire_channel(channel))
            except Exception:
                # The backend connection is gone; the channel is simply not re-subscribed
                # when it comes back, which is what leaving means.
                logger.warning("event bus: unsubscribing %s failed", channel, exc_info=True)

    # -- called by backends ------------------------------------------------------------

    def _deliver_raw(self, wire_channel: str, data: str | bytes) -> None:
        """Decode one wire message and queue it to every local subscriber of its channel."""
        prefix = f"{self.namespace}:"
        channel = wire_channel[len(prefix) :] if wire_channel.startswith(prefix) else wire_channel
        subscribers = self._subscribers.get(channel)
        if not subscribers:
            return
        try:
            event = decode_event(data, channel)
        except MalformedEvent as exc:
            self.stats.malformed += 1
            logger.warning("event bus: dropped a malformed message on %s: %s", wire_channel, exc)
            return
        self.stats.received += 1
        self._fan_out(channel, event, subscribers)

    def _deliver_resync(self, wire_channel: str | None = None) -> None:
        """Tell local subscribers that events may have been lost (after a reconnect).

        ``wire_channel`` limits the resync to one channel; ``None`` means every channel.
        """
        now = datetime.now(UTC)
        for channel, subscribers in list(self._subscribers.items()):
            if wire_channel is not None and self.wire_channel(channel) != wire_channel:
                continue
            marker = Event(channel=channel, payload={}, published_at=now, origin=self.origin, resync=True)
            self._fan_out(channel, marker, subscribers)

    def _fan_out(self, channel: str, event: Event, subscribers: set[Subscription]) -> None:
        for subscription in subscribers:
            if not subscription._push(event):
                self.stats.dropped += 1
            self.stats.delivered += 1

    def _require_running(self) -> None:
        if self._state != "running":
            raise EventBusError(f"the event bus is {self._state}; call `await bus.start()` first")

    # -- backend hooks -----------------------------------------------------------------

    @abc.abstractmethod
    async def _start_transport(self) -> None: ...

    @abc.abstractmethod
    async def _close_transport(self) -> None: ...

    @abc.abstractmethod
    async def _send(self, wire_channel: str, data: str) -> None: ...

    @abc.abstractmethod
    async def _listen(self, wire_channel: str) -> None:
        """Start receiving ``wire_channel``; return once the server has confirmed it."""

    @abc.abstractmethod
    async def _unlisten(self, wire_channel: str) -> None: ...


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel a background task and wait until it has really finished."""
    if task is None or task.done():
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
