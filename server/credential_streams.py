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

A connection open with an OIDC token ends the same way when the token expires (its
``exp`` plus the verifier's leeway; the reason ``credential expired``): a timer, as nothing
else would read the token again. API keys do not expire (``dsa110.auth.keys`` has no
expiry), so for them revocation is the only end there is.

Every WebSocket gets a guard (its key may only be known at ``connection_init``, which
``bind`` then registers); an HTTP request only when it is an event stream run as a key or
a token. Anonymous connections and other keys' are not touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dsa110.auth.identity import Identity, identity_in
from dsa110.auth.open_streams import OpenStreams
from server.event_streams import EventStreamPaths
from server.ws_protocol import DIRECT_SEND

REVOKED_CLOSE: Final = 4403
"""graphql-transport-ws's Forbidden: the close of a WebSocket whose credential ended (revoked, expired)."""
REVOKED_REASON: Final = "credential revoked"
EXPIRED_REASON: Final = "credential expired"
GUARD_SCOPE_KEY: Final = "dsa110.stream_guard"
"""Where a WebSocket's ``StreamGuard`` is in its scope, for ``server.ws_auth`` to bind."""
LEGACY_GRAPHQL_WS: Final = "graphql-ws"


def ended_error(reason: str) -> dict[str, object]:
    """The error a client is told its connection ended with (graphql-ws, an unstarted stream)."""
    return {"message": reason, "extensions": {"code": "UNAUTHENTICATED"}}


class StreamGuard:
    """One open connection's place in the registry, and how to end it."""

    def __init__(self, streams: OpenStreams) -> None:
        self.streams = streams
        self.prefix: str | None = None
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reason = REVOKED_REASON
        self._expiry: asyncio.TimerHandle | None = None

    def bind(self, identity: Identity) -> None:
        """The connection runs as ``identity`` from now on (registered under its key, if any;
        ended when its token expires, if it has one)."""
        self.release()
        self.prefix = identity.key_prefix
        if self.prefix is not None:
            self.streams.add(self.prefix, self)  # ends it at once if the key was revoked already
        if identity.expires_at is not None:
            # Wall-clock time to the token's expiry, run on the loop's clock from now.
            delay = max(0.0, identity.expires_at - time.time())
            self._expiry = asyncio.get_running_loop().call_later(delay, self.end, EXPIRED_REASON)

    def release(self) -> None:
        if self.prefix is not None:
            self.streams.discard(self.prefix, self)
            self.prefix = None
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def end(self, reason: str = REVOKED_REASON) -> None:
        if not self.ended.done():
            self.reason = reason
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
        elif scope["type"] == "http" and _may_end(identity := identity_in(scope)):
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
            # The socket may be gone already, or closing: then there is nothing to tell.
            with contextlib.suppress(Exception):
                if accepted[0] and subprotocol[0] == LEGACY_GRAPHQL_WS:
                    text = json.dumps({"type": "connection_error", "payload": ended_error(guard.reason)})
                    await send({"type": "websocket.send", "text": text})
                await send({"type": "websocket.close", "code": REVOKED_CLOSE, "reason": guard.reason})

        # The task waiting in ``receive`` now, if any, and whether the guard interrupted it.
        reader: list[asyncio.Task[object] | None] = [None]
        interrupted = [False]

        def interrupt(_: object) -> None:
            if (task := reader[0]) is not None:
                interrupted[0] = True
                task.cancel()

        def disconnected() -> Message:
            return {"type": "websocket.disconnect", "code": REVOKED_CLOSE, "reason": guard.reason}

        async def guarded_receive() -> Message:
            # What the client sends, or a disconnect once the credential ends: the application
            # then ends the connection as if the client had left. A read under way is cut
            # short by cancelling its task and catching that here, at the very await: no
            # task or loop turn per message, so the order of the client's messages and the
            # application's answers stays what it is without the guard.
            if guard.is_ended:
                return disconnected()
            task = asyncio.current_task()
            # Cancellations the task carried before this read are not the guard's: compared
            # against after ``uncancel`` (a swallowed one left the count above zero).
            before = task.cancelling() if task is not None else 0
            reader[0] = task
            try:
                return await receive()
            except asyncio.CancelledError:
                if not interrupted[0] or task is None:
                    raise
                interrupted[0] = False
                if task.uncancel() > before:
                    raise  # cancelled by someone else as well
                return disconnected()
            finally:
                reader[0] = None

        async def guarded_send(message: Message) -> None:
            if guard.is_ended:
                return  # closed for its key (or closing): nothing more goes out
            if message["type"] == "websocket.accept":
                accepted[0] = True
                subprotocol[0] = message.get("subprotocol")
            await send(message)

        # The close is sent by a task of its own, made when the guard ends (not one waiting per
        # open socket): the application may be busy anywhere, or waiting on the client.
        closing: list[asyncio.Task[None]] = []

        def start_closing(_: object = None) -> None:
            if not closing:
                closing.append(asyncio.create_task(close(), name="ws-credential-close"))

        guard.ended.add_done_callback(interrupt)
        guard.ended.add_done_callback(start_closing)
        # The shared producers write frames past ASGI ``send`` (server.ws_protocol's direct
        # send): those stop with the guard too, not only what goes through guarded_send.
        extensions = scope.get("extensions") or {}
        direct: Callable[[bytes], bool] | None = extensions.get(DIRECT_SEND)
        if direct is not None:
            extensions[DIRECT_SEND] = lambda frame: not guard.is_ended and direct(frame)
        guard.bind(identity_in(scope))  # the upgrade's credential; connection_init may rebind
        try:
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            guard.release()
            if guard.is_ended:
                start_closing()  # its callback may not have run yet
                with contextlib.suppress(Exception):
                    await closing[0]  # the close frame goes out before the application's end

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

        async def run() -> None:
            await self.app(scope, receive, guarded_send)

        stream = asyncio.create_task(run(), name="sse-credential-guard")
        guard.ended.add_done_callback(lambda _: stream.cancel())
        guard.bind(identity)
        try:
            await stream
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not guard.is_ended or (current is not None and current.cancelling()):
                raise  # the request itself was cancelled (the client left, the server stops)
            if not started:
                await _refuse(send, guard.reason)
            elif not complete:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            guard.release()


def _may_end(identity: Identity) -> bool:
    """Can ``identity`` stop counting while its connection is open (a key, or a token)?"""
    return identity.key_prefix is not None or identity.expires_at is not None


async def _refuse(send: Send, reason: str) -> None:
    """The answer of a stream ended before it started: 401, as the credential's next request gets."""
    body = json.dumps({"errors": [ended_error(reason)]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
