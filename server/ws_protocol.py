"""uvicorn's sans-I/O WebSocket protocol plus one ASGI extension: write a frame *now*.

Fan-out is the one place where the ASGI ``send`` path costs more than the work itself.
Delivering a shared subscription result to 1,000 clients through ASGI means, per client,
waking that client's operation task and awaiting ``send`` through strawberry, starlette's
middleware wrappers and uvicorn - about 20 µs of Python around a write syscall that
costs 9 µs. With this extension a shared producer writes each client's frame inline in
one loop (``server.live_transport``), and only a client that cannot take it right away (its
socket paused for back-pressure, the handshake not done, closing) goes through ASGI.

The extension is ``scope["extensions"][DIRECT_SEND]``: a callable ``(frame) -> bool``
that writes an already serialised, unmasked text frame and returns True, or writes
nothing and returns False. ``text_frame`` serialises one. Frames are only shareable when
the connection negotiated no extension (permessage-deflate would compress per client;
the server runs with it off), so the callable refuses otherwise.

Used by ``dsa110-graph serve`` (``--ws server.ws_protocol:DirectSendWebSocketProtocol``
for plain uvicorn). Under any other server the extension is absent and everything takes
the ASGI path, unchanged.
"""

from __future__ import annotations

from typing import Any, Final

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State

from server.connections import existing_process_slots

DIRECT_SEND: Final = "dsa110.websocket.direct_send"
"""The scope extension's key."""
_OPEN: Final = State.OPEN


def text_frame(text: str) -> bytes:
    """One complete WebSocket text frame (FIN set, unmasked: server to client) carrying ``text``."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


class DirectSendWebSocketProtocol(WebSocketsSansIOProtocol):
    """``WebSocketsSansIOProtocol`` that offers ``DIRECT_SEND`` in every WebSocket scope.

    It also gives back the connection's slot (``server.connections``) when the socket
    closes: after an upgrade the HTTP protocol that took the slot hears nothing more.
    """

    releases_connection_slot: Final = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.write_paused = False
        """The transport's buffer is over its high-water mark (uvicorn's ``writable`` Event
        cleared), as a plain attribute: it is read once per client per event."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The handshake has negotiated extensions by now; a frame serialised once is only
        # valid for connections without any. The ASGI task is created but has not run
        # yet, so its scope can still be extended.
        scope = getattr(self, "scope", None)
        if scope is not None and not self.conn.extensions:
            scope["extensions"][DIRECT_SEND] = self.send_frame_now

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        # A denial response (``websocket.http.response.*``) ends the handshake as a close
        # before accept does, but uvicorn's sans-I/O protocol does not mark it so; its task
        # then logs "ASGI callable returned without completing handshake." at ERROR for
        # every refused handshake (an Origin not allowed, an unknown path), which any
        # client could then write at will. uvicorn's wsproto protocol marks it.
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True

    def connection_lost(self, exc: Exception | None) -> None:
        if (slots := existing_process_slots()) is not None:
            slots.release(self.transport)
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        self.write_paused = True
        super().pause_writing()

    def resume_writing(self) -> None:
        self.write_paused = False
        super().resume_writing()

    def send_frame_now(self, frame: bytes) -> bool:
        """Write ``frame`` at once if the connection is open and not applying back-pressure.

        Where uvicorn's ``send`` would wait (the transport paused writing) this refuses
        instead. Three checks cover ``send``'s preconditions: the sans-I/O connection is
        OPEN only between the accepted handshake and the first close frame either way
        (uvicorn's ``close_sent`` and a rejected handshake both leave it otherwise), and
        ``disconnected`` is the TCP connection lost without a close. Runs once per client
        per event at fan-out, hence so few.
        """
        if self.conn.state is _OPEN and not self.disconnected and not self.write_paused:
            self.transport.write(frame)
            return True
        return False
