"""Connection admission: how many sockets one client, and the whole process, may hold open.

Every open connection costs the server a file descriptor, and a process has a fixed
number of them (``RLIMIT_NOFILE``). Without a cap, two clients holding ~10,000 half-sent
requests each used them all up: ``accept`` failed, ``/healthz`` failed, the metrics
sampler could not open a file. So connections are admitted here, before a byte of the
request is read (``server.http_protocol``):

* at most ``max_connections_per_client`` per client address (the TCP peer), so one client
  cannot take every slot;
* at most ``connection_budget(settings)`` in all, which stays below the open-files limit
  by a reserve for the database, the log, the bus and the process itself.

A connection over either cap is answered at once with ``503`` and a JSON error body
(code ``TOO_MANY_CONNECTIONS``, ``Retry-After``) and closed. Counting is per process:
with ``serve --workers N`` each worker has its own budget (the descriptors are per
process too), and a client may hold up to N times its cap in all.

A connection is counted from ``accept`` until its socket closes, also after an upgrade
to WebSocket (the WebSocket protocol releases it, ``server.ws_protocol``). Under the
front door (``server.front_door``) its thread admits at ``accept`` and the event loop
releases, so the counts are kept under a lock.
"""

from __future__ import annotations

import functools
import resource
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Final

from dsa110.settings import Settings
from server.limits import error_body, is_rest_path, rest_error_body

RESERVED_FILES_MIN: Final = 64
RESERVED_FILES_FRACTION: Final = 8
"""The reserve kept out of the connection budget: an eighth of the open-files limit, at least 64."""
RETRY_AFTER_S: Final = 5
MAX_LINGERING: Final = 64
"""Refused connections kept open briefly so that their 503 arrives (see ``ConnectionSlots.linger``)."""
DEFAULT_BACKLOG: Final = 2048
TOO_MANY_CONNECTIONS: Final = "TOO_MANY_CONNECTIONS"
REQUEST_TIMEOUT: Final = "REQUEST_TIMEOUT"


def open_files_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def listen_backlog() -> int:
    """The longest accept queue the kernel allows (``net.core.somaxconn``; uvicorn asks for 2048).

    Connections wait there, complete, until the event loop accepts them, which it does
    once per loop iteration; while a burst of work holds the loop, a connection flood
    fills the queue, and then the kernel drops everyone's SYNs (a health check's too:
    it retries after 1 s, 3 s, 7 s). A longer queue rides out longer iterations.
    """
    try:
        return max(DEFAULT_BACKLOG, int(Path("/proc/sys/net/core/somaxconn").read_text()))
    except (OSError, ValueError):
        return DEFAULT_BACKLOG


def connection_budget(settings: Settings, files_limit: int | None = None) -> int:
    """Connections this process may hold: the setting, or the open-files limit less a reserve.

    A set ``max_connections`` larger than the limit allows is lowered to it: a budget
    the process cannot honour would fail with ``Too many open files`` instead of a 503.
    """
    limit = open_files_limit() if files_limit is None else files_limit
    reserve = max(RESERVED_FILES_MIN, limit // RESERVED_FILES_FRACTION)
    affordable = max(1, limit - reserve)
    if settings.max_connections > 0:
        return min(settings.max_connections, affordable)
    return affordable


def http_error(
    status: int, code: str, message: str, retry_after_s: int | None = None, *, path: str | None = None
) -> bytes:
    """A complete HTTP/1.1 response with a GraphQL-style error body, closing the connection.

    Written straight to the socket: at admission no request has been read, so there is no
    ASGI cycle to answer through. When the request's ``path`` is known (a request the parser
    refused), one under ``/api`` gets the REST envelope, as the REST layer would answer.
    """
    if path is not None and is_rest_path(path):
        body = rest_error_body(message, code)
    else:
        body = error_body(message, code)
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if retry_after_s is not None:
        head.append(f"retry-after: {retry_after_s}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@dataclass
class ConnectionSlots:
    """Open connections by client address, against a per-client and a total cap.

    Keyed by transport, so ``release`` may be called by whichever protocol sees the
    socket close (the HTTP one, or the WebSocket one after an upgrade) and more than once.
    """

    total: int
    per_client: int
    """0: no per-client cap."""
    header_timeout_s: float = 0.0
    """The request-header deadline (``server.http_protocol``; 0: none)."""
    by_client: dict[str, int] = field(default_factory=dict)
    held: dict[object, str] = field(default_factory=dict)
    refused: int = 0
    timed_out: int = 0
    """Connections closed because their request headers did not arrive in time."""
    lingering: int = 0
    peak: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionSlots:
        """The caps ``settings`` ask for, a client's never more than half the total: with a
        small open-files limit (1024 is common) one client could otherwise take every slot."""
        total = connection_budget(settings)
        per_client = settings.max_connections_per_client
        return cls(
            total=total,
            per_client=min(per_client, max(1, total // 2)) if per_client > 0 else 0,
            header_timeout_s=settings.header_timeout_s,
        )

    @property
    def open(self) -> int:
        return len(self.held)

    def admit(self, transport: object, client: str) -> str | None:
        """Count ``transport`` for ``client``; or, over a cap, the reason it is refused."""
        with self.lock:
            return self._admit(transport, client)

    def _admit(self, transport: object, client: str) -> str | None:
        if len(self.held) >= self.total:
            self.refused += 1
            return f"the server holds its maximum of {self.total} connections; retry later"
        held_by_client = self.by_client.get(client, 0)
        if self.per_client and held_by_client >= self.per_client:
            self.refused += 1
            return f"this client holds its maximum of {self.per_client} connections; retry later"
        self.held[transport] = client
        self.by_client[client] = held_by_client + 1
        self.peak = max(self.peak, len(self.held))
        return None

    def release(self, transport: object) -> None:
        with self.lock:
            client = self.held.pop(transport, None)
            if client is None:
                return
            left = self.by_client[client] - 1
            if left:
                self.by_client[client] = left
            else:
                del self.by_client[client]

    def rekey(self, old: object, new: object) -> bool:
        """Count the connection held as ``old`` (its socket) as ``new`` (its transport) from now on."""
        with self.lock:
            client = self.held.pop(old, None)
            if client is None:
                return False
            self.held[new] = client
            return True

    def note_timeout(self) -> None:
        with self.lock:
            self.timed_out += 1

    def linger(self) -> bool:
        """Whether a refused connection may stay open briefly after its 503.

        Closing a socket whose client has sent bytes we have not read makes the kernel
        reset the connection, and a reset may destroy the 503 before the client reads
        it. So a refused connection half-closes and discards its input for a moment -
        but only ``MAX_LINGERING`` at a time: in a flood, the rest are closed at once.
        """
        with self.lock:
            if self.lingering >= MAX_LINGERING:
                return False
            self.lingering += 1
            return True

    def lingered(self) -> None:
        """A refused connection that lingered has closed."""
        with self.lock:
            self.lingering -= 1

    def stats(self) -> dict[str, int]:
        with self.lock:
            return self._stats()

    def _stats(self) -> dict[str, int]:
        return {
            "open": self.open,
            "peak": self.peak,
            "limit": self.total,
            "per_client_limit": self.per_client,
            "refused": self.refused,
            "header_timeouts": self.timed_out,
        }


@functools.cache
def process_slots() -> ConnectionSlots:
    """This process's slots, from the ``DSA110_*`` environment (the protocol runs below the app)."""
    return ConnectionSlots.from_settings(Settings.from_env())


def existing_process_slots() -> ConnectionSlots | None:
    """The process's slots if the guarded protocol made them (not under a test client)."""
    return process_slots() if process_slots.cache_info().currsize else None
