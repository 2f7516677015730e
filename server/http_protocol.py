"""uvicorn's httptools protocol, plus two guards uvicorn lacks: connection caps and a header deadline.

* **Admission.** Each accepted connection takes a slot (``server.connections``) before any
  byte is read; over the per-client or total cap it is answered ``503`` with code
  ``TOO_MANY_CONNECTIONS`` and ``Retry-After``, and closed.
* **Malformed requests.** uvicorn answers what httptools cannot parse with a plain-text
  ``400 Invalid HTTP request received.``; here it is ``400`` with code
  ``BAD_HTTP_REQUEST`` in the error body of the path's layer. A request target longer
  than ``MAX_URL_BYTES`` (httptools' URL parser stops at 64 KiB, so a long GraphQL GET
  failed as malformed) is ``414`` with code ``URI_TOO_LONG``: send the operation by POST.
* **Header deadline.** uvicorn times out idle keep-alive connections only after a
  response, and cancels that timer on the first byte of the next request; a connection
  that sends nothing, or a request line and then headers one byte a minute, is held
  forever. Here the headers of every request must be complete ``header_timeout_s`` after
  the connection opened or after the request's first byte; else ``408`` with code
  ``REQUEST_TIMEOUT``, and the connection is closed.

Under the front door (``server.front_door``, how ``dsa110-graph serve`` runs) a
connection is admitted, and its first request head read under the deadline, on the
front door's thread; this protocol then takes over the slot (``admitted_as``) and
guards the connection's later requests. Used by ``dsa110-graph serve`` (one or N
workers) and the test servers; with plain uvicorn: ``--http
server.http_protocol:GuardedHttpToolsProtocol`` (and ``--loop
server.front_door:new_event_loop`` for the front door).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.connections import (
    REQUEST_TIMEOUT,
    RETRY_AFTER_S,
    TOO_MANY_CONNECTIONS,
    ConnectionSlots,
    http_error,
    process_slots,
)

LINGER_S: Final = 1.0
"""How long a refused connection stays half-closed for its 503 to be read."""
MAX_URL_BYTES: Final = 65535
"""Longest request target: the most ``httptools.parse_url`` reads (its offsets are 16-bit)."""
BAD_HTTP_REQUEST: Final = "BAD_HTTP_REQUEST"
URI_TOO_LONG: Final = "URI_TOO_LONG"


class UrlTooLong(Exception):
    """Raised from the parser's URL callback: httptools then stops and reports a parse error."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    admitted_as: object | None = None
    """Set by the front door (``server.front_door``) to the socket it admitted: the slot is
    taken already, and moves to this protocol's transport."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slots: ConnectionSlots = process_slots()
        self.header_timeout_s = self.slots.header_timeout_s
        self.header_timer: asyncio.TimerHandle | None = None
        self.refused = False
        self.linger_timer: asyncio.TimerHandle | None = None
        self.url_too_long = False

    # -- admission ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        admitted_as, self.admitted_as = self.admitted_as, None  # no reference to the socket kept
        if admitted_as is not None and self.slots.rekey(admitted_as, transport):
            self._arm_header_timer()
            return
        client = self.client[0] if self.client else ""  # a Unix socket: one shared key
        reason = self.slots.admit(transport, client)
        if reason is None:
            self._arm_header_timer()
            return
        self.refused = True
        transport.write(http_error(503, TOO_MANY_CONNECTIONS, reason, retry_after_s=RETRY_AFTER_S))
        if not self.slots.linger():
            transport.close()
            return
        self.linger_timer = self.loop.call_later(LINGER_S, transport.close)
        try:
            transport.write_eof()  # the 503, then FIN; input is dropped until the client closes
        except (NotImplementedError, OSError, RuntimeError):  # TLS has no half-close
            transport.close()

    def data_received(self, data: bytes) -> None:
        if not self.refused:
            super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        if self.refused:
            if self.linger_timer is not None:
                self.linger_timer.cancel()
                self.linger_timer = None
                self.slots.lingered()
        else:
            self.slots.release(self.transport)
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        # The socket now belongs to the WebSocket protocol; ours releases the slot when
        # it closes, another one would not: release now rather than leak it.
        if not getattr(self.ws_protocol_class, "releases_connection_slot", False):
            self.slots.release(self.transport)
        super().handle_websocket_upgrade()

    # -- malformed requests ---------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_URL_BYTES:
            self.url_too_long = True
            raise UrlTooLong

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to whatever httptools could not parse, with a code and the path's envelope.
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        if self.url_too_long:
            message = f"the request target is longer than {MAX_URL_BYTES} bytes: send the operation by POST"
            answer = http_error(414, URI_TOO_LONG, message, path=path)
        else:
            answer = http_error(400, BAD_HTTP_REQUEST, f"malformed HTTP request: {msg}", path=path)
        self.transport.write(answer)
        self.transport.close()

    # -- header deadline ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        # Not re-armed while armed: a connection opened and silent, then trickling a
        # request, has one deadline from the moment it opened.
        if self.header_timer is None and self.header_timeout_s > 0:
            self.header_timer = self.loop.call_later(self.header_timeout_s, self._headers_overdue)

    def _disarm_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_overdue(self) -> None:
        self.header_timer = None
        if self.transport.is_closing():
            return
        self.slots.note_timeout()
        if self.cycle is None or self.cycle.response_complete:
            message = f"request headers not complete within {self.header_timeout_s:g} s"
            with contextlib.suppress(RuntimeError, OSError):
                self.transport.write(http_error(408, REQUEST_TIMEOUT, message))
        # else: a pipelined request stalled behind a response still being sent; nothing
        # can be said on this connection now, so it just closes.
        self.transport.close()
