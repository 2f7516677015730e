"""Fan-out: one shared result, delivered to every subscriber of its producer.

A producer (``server.live_transport.shared``) computes a subscription's result once per
event and hands it to ``fan_out``, which writes it to each client directly when the
client's transport offered a ``DirectRoute`` and can take it now, and otherwise queues it
on the client's bounded ``Subscriber`` mailbox for the client's own task to send.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from strawberry.types import ExecutionResult

from dsa110.events.mailbox import Mailbox

logger = logging.getLogger("dsa110.live")

SUBSCRIBER_QUEUE_SIZE: Final = 256
"""Results a subscriber may fall behind before it is cut off (memory stays bounded)."""

Result = ExecutionResult
JsonEncoder = Callable[[object], str | bytes]


@dataclass(eq=False)
class SharedResult(ExecutionResult):
    """A producer's result: the one object every subscriber of that producer receives.

    Its wire payload (``{"data", "errors", "extensions"}``, the same shape in
    graphql-transport-ws ``next``, graphql-ws ``data`` and SSE) is encoded once, on first
    use, and reused for every subscriber - at 1,000 subscribers, re-encoding the same dict
    per client was a large share of the fan-out cost. The transports splice the cached
    text into each operation's message (server/graphql_view.py).
    """

    on_encode: Callable[[], None] | None = field(default=None, repr=False)
    _payload_json: str | None = field(default=None, init=False, repr=False)

    def payload_json(self, encode: JsonEncoder) -> str:
        """The payload as JSON text, encoded by ``encode`` the first time only."""
        if self._payload_json is None:
            payload: dict[str, object] = {"data": self.data}
            if self.errors:
                payload["errors"] = [error.formatted for error in self.errors]
            if self.extensions:
                payload["extensions"] = self.extensions
            encoded = encode(payload)
            self._payload_json = encoded.decode() if isinstance(encoded, bytes) else encoded
            if self.on_encode is not None:
                self.on_encode()
        return self._payload_json


@dataclass(frozen=True, slots=True)
class DirectRoute:
    """How a transport lets a producer write a result to its client without awaiting.

    ``write(frame)`` writes the bytes and returns True, or writes nothing and returns
    False when the client cannot take them now (back-pressure, closing). ``encode(result)``
    makes this client's bytes for a result; clients whose routes share a ``key`` get
    identical bytes, so a producer encodes once per key, not once per client.
    """

    key: str
    encode: Callable[[SharedResult], bytes]
    write: Callable[[bytes], bool]


class Subscriber(Mailbox[Result]):
    """One client's bounded queue of shared results, and optionally a direct route.

    The direct route is the fast path at fan-out: the producer writes the result to the
    client inline, waking no task. It is taken only once the client's snapshot has gone
    out (``live``) and while the queue is idle, so results never overtake each other; a
    client that refuses (back-pressure) gets the result queued and its own task sends it.
    """

    __slots__ = ("direct", "live", "on_leave")

    def __init__(self) -> None:
        super().__init__(SUBSCRIBER_QUEUE_SIZE)
        self.direct: DirectRoute | None = None
        self.live = False
        self.on_leave: list[Callable[[], None]] = []

    def left(self) -> None:
        """The subscription is over: run (once) what was to be run then."""
        callbacks, self.on_leave = self.on_leave, []
        for callback in callbacks:
            callback()


def fan_out(result: SharedResult, subscribers: Iterable[Subscriber]) -> int:
    """Deliver ``result`` to every subscriber: written directly where possible, else queued.

    Returns how many were queued.

    This loop runs once per client per event - at 1,000 clients it is most of the
    server's CPU per event after the socket writes themselves - so the direct path is
    kept to a few attribute reads, one dictionary lookup and one call.
    """
    encoded: dict[str, bytes] = {}
    queued = 0
    for subscriber in subscribers:
        route = subscriber.direct
        if route is not None and subscriber.live and subscriber.idle:
            try:
                frame = encoded.get(route.key)
                if frame is None:
                    frame = encoded[route.key] = route.encode(result)
                if route.write(frame):
                    continue
            except Exception:
                # Not expected (a transport refuses rather than raises); the queued route
                # below then reports whatever is wrong on this client's own task.
                logger.exception("live: direct delivery failed; queueing instead")
        subscriber.push(result)
        queued += 1
    return queued
