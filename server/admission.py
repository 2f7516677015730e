"""Requests executing at once in this process, all clients together: load shedding.

Without a bound, every request a crowd sends is started: each then waits its turn for the
event loop and the database's connections, and under a crowd (256 clients) every answer
is late (p99 11 s) while nobody is refused. So at most ``Settings.max_in_flight`` HTTP
requests execute at once (by default as many as the database pool has connections:
more would only queue inside the pool); the rest wait in line, first come first served,
for at most ``Settings.max_queue_wait_s``. One that gets no slot by then is answered at
once with 503 ``SERVER_BUSY`` and ``Retry-After``, having done nothing: its body was read,
no SQL ran, nothing was written, and its per-minute budget was not charged (the budget is
charged inside this, ``server.budget``).

What is not counted, since it must keep answering under load or is bounded otherwise:

* the health checks (``/healthz``, ``/api/health``), ``/metrics`` and static files;
* event streams (SSE: ``server.event_streams``), meant to last: a slot held for a stream's
  life would be taken from ordinary requests for hours;
* WebSockets, the handshake included: a connection lasts (the same reason), refusing a
  handshake under load makes a dashboard reconnect in a loop, and what runs on an open
  socket has bounds of its own (the work in flight, ``schema.in_flight``; the
  subscription budget; connections per client, ``server.connections``).

A request's body is read before it waits for a slot: a client trickling its body holds no
slot, only its connection (and gets the deadline's 408, ``server.deadline``, which runs
outside this and so also bounds the wait). The count is per process: each uvicorn worker
has its own slots.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Collection
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dsa110.db.writes import retry_after_s
from server.event_streams import EventStreamPaths
from server.limits import REST_PREFIX, refuse

SERVER_BUSY: Final = "SERVER_BUSY"
STATUS: Final = 503
UNBOUNDED_POOL_SLOTS: Final = 32
"""Slots when the pool sets no bound of its own (a ``NullPool``: one connection per checkout)."""


def pool_slots(engine: AsyncEngine) -> int:
    """The default of ``max_in_flight``: the connections the pool may open at once (its size
    and overflow). A request mostly needs one at a time; more requests than connections
    only wait inside the pool, where no bound on the wait short of the deadline applies."""
    pool = engine.sync_engine.pool
    if isinstance(pool, QueuePool):
        overflow = getattr(pool, "_max_overflow", -1)  # SQLAlchemy's own attribute; -1: unbounded
        if overflow >= 0:
            return max(1, pool.size() + overflow)
    return UNBOUNDED_POOL_SLOTS


class Slots:
    """``limit`` slots and a first-come-first-served line of waiters (one event loop: no lock).

    A freed slot is handed to the first waiter directly, so a newcomer cannot take it past
    the line.
    """

    def __init__(self, limit: int, wait_s: float) -> None:
        self.limit = limit
        self.wait_s = wait_s
        self.in_use = 0
        self.shed = 0
        """Requests refused since start (read by ``/healthz``)."""
        self._line: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def waiting(self) -> int:
        return len(self._line)

    async def acquire(self) -> bool:
        """True with a slot held (``release`` it); False when none came within ``wait_s``."""
        if self.in_use < self.limit and not self._line:
            self.in_use += 1
            return True
        if self.wait_s <= 0:
            self.shed += 1
            return False
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._line.append(turn)
        try:
            # asyncio.wait does not cancel ``turn`` when the time runs out: whether the slot
            # came is read from it below, with no await in between (no race with release).
            await asyncio.wait((turn,), timeout=self.wait_s)
        except asyncio.CancelledError:  # the client went away, or the deadline passed
            self._leave(turn)
            raise
        if turn.done():
            return True
        self._leave(turn)
        self.shed += 1
        return False

    def release(self) -> None:
        while self._line:
            turn = self._line.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes on: in_use stays
                return
        self.in_use -= 1

    def stats(self) -> dict[str, int | float]:
        return {"limit": self.limit, "in_use": self.in_use, "waiting": self.waiting, "shed": self.shed}

    def _leave(self, turn: asyncio.Future[None]) -> None:
        if turn.done() and not turn.cancelled():
            self.release()  # handed a slot it will not use: the next in line gets it
            return
        turn.cancel()
        self._line.remove(turn)  # not handed a slot: still in the line


class AdmissionMiddleware:
    """Holds each counted HTTP request to a slot of ``slots`` (module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        slots: Slots,
        exempt_paths: Collection[str] = (),
        exempt_prefixes: tuple[str, ...] = (),
        streams: EventStreamPaths | None = None,
    ) -> None:
        self.app = app
        self.slots = slots
        self.exempt_paths = frozenset(exempt_paths)
        self.exempt_prefixes = exempt_prefixes
        self.streams = streams or EventStreamPaths()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.slots.limit <= 0 or self._exempt(scope):
            await self.app(scope, receive, send)
            return
        replay = await _read_body(receive)
        if replay is None:
            return  # the client went away before its body was in: nobody to answer
        if not await self.slots.acquire():
            await _shed(scope, send, self.slots.wait_s)
            return
        try:
            await self.app(scope, replay, send)
        finally:
            self.slots.release()

    def _exempt(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if path in self.exempt_paths or path.startswith(self.exempt_prefixes):
            return True
        return self.streams.match(scope)


async def _read_body(receive: Receive) -> Receive | None:
    """Read the request's body now (before a slot is taken); the app's ``receive`` gives the
    same messages again, then the real channel's (a disconnect). None: the client left first."""
    held: list[Message] = []
    while True:
        message = await receive()
        held.append(message)
        if message["type"] != "http.request":
            return None
        if not message.get("more_body", False):
            break
    pending = collections.deque(held)

    async def replay() -> Message:
        return pending.popleft() if pending else await receive()

    return replay


async def _shed(scope: Scope, send: Send, wait_s: float) -> None:
    wait = retry_after_s(wait_s)  # the line stood that long: sooner would likely find it so
    message = (
        f"the server is busy: no request slot came free within {wait_s:g} s; "
        f"nothing was done, retry in {wait} s"
    )
    details: dict[str, object] = {"retry_after_s": wait}
    retry = [(b"retry-after", str(wait).encode())]
    await refuse(scope, send, REST_PREFIX, STATUS, message, SERVER_BUSY, details, retry)
