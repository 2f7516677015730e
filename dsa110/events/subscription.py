"""A local subscriber: a bounded queue fed by the bus's per-process fan-out.

Overflow policy: when a subscriber falls ``maxsize`` events behind, the oldest queued event
is dropped and counted (``dropped``), so a slow client costs bounded memory and always sees
the newest state. Consumers for which a gap matters (log tails) compare ``dropped`` before
and after reading and reload when it grew, as they do on a ``resync`` event.

A subscription owns no task: the bus pushes into the queue synchronously, and the consumer
awaits an ``asyncio.Event``. Leaving the ``async with`` block (or ``aclose()``) detaches it
from the bus; the bus stops listening on a channel when its last local subscriber leaves.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING

from dsa110.events.envelope import Event

if TYPE_CHECKING:
    from dsa110.events.bus import EventBus


class Subscription:
    """Async context manager and async iterator of ``Event`` on one or more channels.

    ``async with bus.subscribe(GROUP_STATE, JOB_STATE) as events:
          async for event in events: ...``

    Iteration ends when the subscription is closed or the bus closes (after the events
    already queued have been delivered).
    """

    def __init__(self, bus: EventBus, channels: tuple[str, ...], maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("subscription queue size must be at least 1")
        self.channels = channels
        self.maxsize = maxsize
        self.dropped = 0
        self._bus = bus
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self._entered = False
        self._closed = False

    @property
    def pending(self) -> int:
        """Events queued and not yet read."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> Subscription:
        if self._entered:
            raise RuntimeError("a subscription can be entered only once")
        self._entered = True
        await self._bus._attach(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Detach from the bus; idempotent."""
        if self._closed:
            return
        self._end()
        await self._bus._detach(self)

    def __aiter__(self) -> Subscription:
        if not self._entered:
            raise RuntimeError("use `async with bus.subscribe(...) as events:` before iterating")
        return self

    async def __anext__(self) -> Event:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def _push(self, event: Event) -> bool:
        """Queue ``event``; return False when the oldest event had to be dropped."""
        if self._closed:
            return True
        kept = True
        if len(self._queue) >= self.maxsize:
            self._queue.popleft()
            self.dropped += 1
            kept = False
        self._queue.append(event)
        self._ready.set()
        return kept

    def _end(self) -> None:
        self._closed = True
        self._ready.set()


async def next_within(stream: AsyncIterator[Event], seconds: float) -> Event:
    """The next event of ``stream`` if one comes within ``seconds``, else ``TimeoutError``."""
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
    # that races with the item arriving, and a cancelled producer must stop.
    async with asyncio.timeout(seconds):
        return await anext(stream)
