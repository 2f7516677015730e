"""A bounded, single-reader mailbox: how one slow client is kept from holding others back."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """Items pushed by a producer, read in order by one consumer.

    When the consumer falls ``capacity`` items behind, the mailbox ends and records
    ``overflowed`` instead of dropping items silently: a gap (in a log tail, say) must be
    visible, and the client can reconnect to a fresh snapshot.
    """

    __slots__ = ("_queue", "_ready", "capacity", "ended", "idle", "overflowed")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._queue: deque[T] = deque()
        self._ready = asyncio.Event()
        self.ended = False
        self.overflowed = False
        self.idle = True
        """Nothing queued and the consumer is not handling an item: it waits for the next.
        A producer that delivers some items by another route (a direct write) may do so
        only while the mailbox is idle, or it would overtake items still on their way.
        A plain attribute, not a property: fan-out reads it once per client per event."""

    def push(self, item: T) -> None:
        if self.ended:
            return
        if len(self._queue) >= self.capacity:
            self.overflowed = True
            self.end()
            return
        self._queue.append(item)
        self.idle = False
        self._ready.set()

    def end(self) -> None:
        self.ended = True
        self._ready.set()

    async def items(self) -> AsyncIterator[T]:
        while True:
            while self._queue:
                yield self._queue.popleft()
            # Back for more with nothing queued: every item pushed so far has been handled.
            self.idle = True
            if self.ended:
                return
            self._ready.clear()
            await self._ready.wait()
