"""Open WebSockets and event streams end when the API key they run as is revoked.

A connection that lasts is authenticated once: the upgrade's or the request's headers
(``server.trust``), or a GraphQL WebSocket's ``connection_init`` payload
(``server.ws_auth``). Nothing asks again, so a revoked key's subscriptions streamed on
after the key was refused everywhere else. This middleware, just inside the trust check,
registers each such connection under its key's prefix (``dsa110.auth.open_streams``);
a revocation known to this process (the revoking request's own ``announce``, or the bus
event every process hears) ends it:

* **WebSocket** (``/graphql`` on both protocols, ``/api/ws/status``): closed with 4403
  and the reason ``credential revoked`` - graphql-transport-ws's code for Forbidden. The
  legacy graphql-ws protocol has no close codes of its own, so its client first gets a
  ``connection_error`` (code ``UNAUTHENTICATED``), as for a refused ``connection_init``.
  The application then reads a disconnect, as if the client had left, and ends its
  operations the usual way; anything it still sends is dropped.
* **Event stream** (GraphQL over SSE, ``/api/sse/status``, a job's live log): the stream
  is stopped and its body ended (a clean end of the chunked response, no error).

Every WebSocket gets a guard (its key may only be known at ``connection_init``, which
``bind`` then registers); an HTTP request only when it is an event stream run as a key.
Anonymous connections and other keys' are not touched. Keys do not expire
(``dsa110.auth.keys`` has no expiry), so revocation is the only end there is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dsa110.auth.identity import Identity, identity_in
from dsa110.auth.open_streams import OpenStreams
from server.event_streams import EventStreamPaths

REVOKED_CLOSE: Final = 4403
"""graphql-transport-ws's Forbidden; used for every WebSocket ended by a revocation."""
REVOKED_REASON: Final = "credential revoked"
GUARD_SCOPE_KEY: Final = "dsa110.stream_guard"
"""Where a WebSocket's ``StreamGuard`` is in its scope, for ``server.ws_auth`` to bind."""
LEGACY_GRAPHQL_WS: Final = "graphql-ws"
REVOKED_ERROR: Final = {"message": "the API key was revoked", "extensions": {"code": "UNAUTHENTICATED"}}


class StreamGuard:
    """One open connection's place in the registry, and how to end it."""

    def __init__(self, streams: OpenStreams) -> None:
        self.streams = streams
        self.prefix: str | None = None
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def bind(self, identity: Identity) -> None:
        """The connection runs as ``identity`` from now on (registered under its key, if any)."""
        if self.prefix is not None:
            self.streams.discard(self.prefix, self)
        self.prefix = identity.key_prefix
        if self.prefix is not None:
            self.streams.add(self.prefix, self)  # ends it at once if the key was revoked already

    def release(self) -> None:
        if self.prefix is not None:
            self.streams.discard(self.prefix, self)
            self.prefix = None

    def end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)

    @property
    def is_ended(self) -> bool:
        return self.ended.done()


class CredentialStreams:
    """ASGI middleware; ``streams``: the registry (the ``Authenticator``'s), ``event_streams``:
    which HTTP requests are streams (the same rule as the deadline's)."""

    def __init__(self, app: ASGIApp, *, streams: OpenStreams, event_streams: EventStreamPaths) -> None:
        self.app = app
        self.streams = streams
        self.event_streams = event_streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http" and (identity := identity_in(scope)).key_prefix is not None:
            if self.event_streams.match(scope):
                await self._event_stream(identity, scope, receive, send)
            else:
                await self.app(scope, receive, send)  # a request ends by itself
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        guard = StreamGuard(self.streams)
        scope[GUARD_SCOPE_KEY] = guard
        subprotocol: list[str | None] = [None]
        accepted = [False]

        async def close() -> None:
            await guard.ended
            # The socket may be gone already, or closing: then there is nothing to tell.
            with contextlib.suppress(Exception):
                if accepted[0] and subprotocol[0] == LEGACY_GRAPHQL_WS:
                    text = json.dumps({"type": "connection_error", "payload": REVOKED_ERROR})
                    await send({"type": "websocket.send", "text": text})
                await send({"type": "websocket.close", "code": REVOKED_CLOSE, "reason": REVOKED_REASON})

        async def guarded_receive() -> Message:
            # What the client sends, or a disconnect once the key is revoked: the application
            # then ends the connection as if the client had left.
            if not guard.is_ended:
                received = asyncio.ensure_future(receive())
                try:
                    await asyncio.wait((received, guard.ended), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not received.done():
                        received.cancel()
                if not guard.is_ended:
                    return received.result()
            return {"type": "websocket.disconnect", "code": REVOKED_CLOSE, "reason": REVOKED_REASON}

        async def guarded_send(message: Message) -> None:
            if guard.is_ended:
                return  # closed for its key (or closing): nothing more goes out
            if message["type"] == "websocket.accept":
                accepted[0] = True
                subprotocol[0] = message.get("subprotocol")
            await send(message)

        closing = asyncio.create_task(close(), name="ws-credential-guard")
        guard.bind(identity_in(scope))  # the upgrade's credential; connection_init may rebind
        try:
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            guard.release()
            if guard.is_ended:
                with contextlib.suppress(Exception):
                    await closing  # the close frame goes out before the application's end
            else:
                closing.cancel()

    async def _event_stream(self, identity: Identity, scope: Scope, receive: Receive, send: Send) -> None:
        # The stream runs as a task of its own, cancelled when the key is revoked: a stream
        # need not be reading ``receive`` (starlette's stops listening for disconnects under
        # ASGI 2.4), so a cancellation is the one way to stop every kind.
        guard = StreamGuard(self.streams)
        started = complete = False

        async def guarded_send(message: Message) -> None:
            nonlocal started, complete
            if guard.is_ended:
                return
            started = started or message["type"] == "http.response.start"
            complete = message["type"] == "http.response.body" and not message.get("more_body", False)
            await send(message)

        stream = asyncio.create_task(self.app(scope, receive, guarded_send), name="sse-credential-guard")
        guard.ended.add_done_callback(lambda _: stream.cancel())
        guard.bind(identity)
        try:
            await stream
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not guard.is_ended or (current is not None and current.cancelling()):
                raise  # the request itself was cancelled (the client left, the server stops)
            if not started:
                await _refuse(send)
            elif not complete:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            guard.release()


async def _refuse(send: Send) -> None:
    """The answer of a stream revoked before it started: 401, as the key's next request gets."""
    body = json.dumps({"errors": [REVOKED_ERROR]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
