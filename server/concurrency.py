"""Requests in flight per client: one client cannot take every worker of the process.

The key is the caller's identity (an API key, a token's subject), or for anonymous
callers their address, as for the rate limits (``dsa110.auth.ratelimit``). Past
``Settings.max_concurrent_requests_per_client`` requests at once, more get 429
``TOO_MANY_CONCURRENT_REQUESTS`` with ``Retry-After`` until one finishes. Event streams
(SSE) are not requests in this sense (they stay open by design) and are not counted
(``server.event_streams``: an ``Accept: text/event-stream`` header makes a stream only on a
path that serves one, so it cannot take an ordinary request out of the count);
nor are the health check, metrics and static files. The count is per process: with
several worker processes a client may have that many in each.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from dsa110.auth.identity import identity_in
from server.event_streams import EventStreamPaths
from server.trust import refusal_body

TOO_MANY: Final = "TOO_MANY_CONCURRENT_REQUESTS"
RETRY_AFTER_S: Final = 1


class InFlight:
    """Requests in flight per client key (one event loop: no lock needed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts: dict[str, int] = {}  # only clients with requests in flight

    def enter(self, key: str) -> bool:
        held = self.counts.get(key, 0)
        if held >= self.limit:
            return False
        self.counts[key] = held + 1
        return True

    def leave(self, key: str) -> None:
        left = self.counts[key] - 1
        if left:
            self.counts[key] = left
        else:
            del self.counts[key]


class ConcurrencyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        in_flight: InFlight,
        exempt_paths: Collection[str] = (),
        exempt_prefixes: tuple[str, ...] = (),
        streams: EventStreamPaths | None = None,
    ) -> None:
        self.app = app
        self.in_flight = in_flight
        self.exempt_paths = frozenset(exempt_paths)
        self.exempt_prefixes = exempt_prefixes
        self.streams = streams or EventStreamPaths()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        in_flight = self.in_flight
        if scope["type"] != "http" or in_flight.limit <= 0 or self._exempt(scope):
            await self.app(scope, receive, send)
            return
        key = identity_in(scope).rate_key
        if not in_flight.enter(key):
            await _refuse(scope, send, in_flight.limit)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            in_flight.leave(key)

    def _exempt(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if path in self.exempt_paths or path.startswith(self.exempt_prefixes):
            return True
        return self.streams.match(scope)


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    message = f"more than {limit} requests at once from this client; retry when one has finished"
    body = refusal_body(scope["path"], TOO_MANY, message)
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
