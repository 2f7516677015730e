"""Limits on one GraphQL WebSocket, answered with codes on both protocols.

* **``connection_init`` deadline.** graphql-transport-ws has one in strawberry (close
  4408); the legacy graphql-ws protocol has none, so a client that never sends
  ``connection_init`` held its socket for as long as it liked. ``LegacyInitDeadline``
  gives it the same deadline: a ``connection_error`` with code
  ``CONNECTION_INIT_TIMEOUT``, then close 4408 (the code graphql-transport-ws uses).
* **Operation ids** of at most ``MAX_OPERATION_ID_CHARS``: a longer one is a malformed
  ``subscribe`` (graphql-transport-ws: close 4400) or ``start`` (graphql-ws: an ``error``
  that does not repeat it).
* **Operations per connection.** strawberry refuses the operation over the cap with a
  bare message; ``subscription_limit_error`` adds the code ``TOO_MANY_SUBSCRIPTIONS`` and
  the limit, so a client can tell it from a failing query.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Final

INIT_TIMEOUT_CLOSE: Final = 4408
INIT_TIMEOUT_REASON: Final = "Connection initialisation timeout"
CONNECTION_INIT_TIMEOUT: Final = "CONNECTION_INIT_TIMEOUT"
TOO_MANY_SUBSCRIPTIONS: Final = "TOO_MANY_SUBSCRIPTIONS"
MAX_OPERATION_ID_CHARS: Final = 256
"""Longest operation id a client may choose: the server repeats it in every message of the
operation (a 100 kB id was echoed on each ``next``). Clients use UUIDs or counters."""


def subscription_limit_error(limit: int) -> dict[str, Any]:
    """The error of an operation refused because its connection runs ``limit`` already."""
    return {
        "message": "Subscription limit reached",
        "extensions": {"code": TOO_MANY_SUBSCRIPTIONS, "limit": limit},
    }


def over_limit(running: int, limit: int | None) -> bool:
    return limit is not None and running >= limit


def init_timeout_error(timeout: timedelta) -> dict[str, Any]:
    return {
        "message": f"no connection_init within {timeout.total_seconds():g} s",
        "extensions": {"code": CONNECTION_INIT_TIMEOUT},
    }


class LegacyInitDeadline:
    """Closes a legacy graphql-ws connection that has not sent ``connection_init`` in time.

    ``send`` and ``close`` are the handler's; ``received()`` is called on the client's
    ``connection_init`` (accepted or not: a refused one closes the socket itself).
    """

    def __init__(
        self,
        timeout: timedelta,
        send: Callable[[dict[str, Any]], Awaitable[None]],
        close: Callable[[int, str], Awaitable[None]],
    ) -> None:
        self.timeout = timeout
        self._send = send
        self._close = close
        self._received = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._expire(), name="graphql-ws-init-deadline")

    def received(self) -> None:
        self._received = True
        self.cancel()

    def cancel(self) -> None:
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    async def _expire(self) -> None:
        await asyncio.sleep(self.timeout.total_seconds())
        if self._received:
            return
        # The socket may be gone already; the handler's own loop then ends the connection.
        with contextlib.suppress(Exception):
            await self._send({"type": "connection_error", "payload": init_timeout_error(self.timeout)})
        with contextlib.suppress(Exception):
            await self._close(INIT_TIMEOUT_CLOSE, INIT_TIMEOUT_REASON)
