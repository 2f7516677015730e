"""The legacy real-time channels: WebSocket ``/api/ws/status`` and SSE ``/api/sse/status``.

Messages (legacy-pipeline-facts §5, dashboard_backend_api "Real-Time Updates"), JSON with
a ``type``, a UTC ``timestamp`` and ``data``:

* ``status_update``: ``{pipeline_status, metrics, ese_candidates}`` - on connect, after
  group changes (coalesced) and at least every ``heartbeat_s`` (10 s) in any case;
* ``metrics_update``: the ``metrics`` part alone, on each stored system-metrics sample;
* ``ese_update``: the ``ese_candidates`` part alone, when a candidate appears or changes.

Each part is the REST answer of the path it mirrors (``/api/status``,
``/api/metrics/system``, ``/api/ese/candidates``), built by ``compat_rest.live_status`` from
the same documents and shaping functions; the metrics part also carries the legacy
WebSocket's own names (``memory_percent``, ``load_avg_1min``, ``timestamp``). A text
``ping`` gets the text ``pong``. The SSE stream starts with ``{"type":"connected"}`` and sends
``{"type":"heartbeat"}`` every 30 s, as the legacy one did, besides the messages above.

They are a compatibility surface, like the rest of this layer, but not request/response
routes: ``server/app.py`` mounts ``routes(hub)`` itself, before the REST layer.

One hub per process turns bus events into these messages: each message is computed and
encoded once, whatever the number of clients, and each client has a bounded queue (a
client too slow to keep up is disconnected, it reconnects and gets a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from compat_rest.live_status import LegacyStatusParts
from dsa110.events import ESE_CANDIDATE, GROUP_STATE, METRICS_SAMPLE, Event, EventBus
from dsa110.events.envelope import format_utc
from dsa110.events.mailbox import Mailbox
from dsa110.events.subscription import next_within as _next_within

logger = logging.getLogger("dsa110.live.legacy")

WS_PATH: Final = "/api/ws/status"
SSE_PATH: Final = "/api/sse/status"
HEARTBEAT_S: Final = 10.0
SSE_HEARTBEAT_S: Final = 30.0
COALESCE_S: Final = 0.25
CLIENT_QUEUE_SIZE: Final = 64
MAX_CLIENT_MESSAGE_CHARS: Final = 4096
SSE_HEADERS: Final = {"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"}


def event_stream(request: Request, events: Callable[[], AsyncIterator[str]]) -> Response:
    """A Server-Sent Events answer of ``events()``; to a HEAD, its headers alone: the stream
    is not opened (it would never end, and a HEAD has no body to send it in)."""
    if request.method == "HEAD":
        return Response(media_type="text/event-stream", headers=SSE_HEADERS)
    return StreamingResponse(events(), media_type="text/event-stream", headers=SSE_HEADERS)


def encode_message(kind: str, data: Any) -> str:
    return json.dumps(
        {"type": kind, "timestamp": format_utc(datetime.now(UTC)), "data": data},
        separators=(",", ":"),
        allow_nan=False,
    )


# -- the hub ----------------------------------------------------------------------------


class _Client(Mailbox[str]):
    """A legacy client's queue of encoded messages; a client too slow is dropped and reconnects."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(CLIENT_QUEUE_SIZE)


class LegacyStatusHub:
    """One producer per process for every legacy status client; runs while any is connected."""

    def __init__(
        self,
        parts: LegacyStatusParts,
        bus: EventBus,
        *,
        heartbeat_s: float = HEARTBEAT_S,
        coalesce_s: float = COALESCE_S,
    ) -> None:
        self.parts = parts
        self.bus = bus
        self.heartbeat_s = heartbeat_s
        self.coalesce_s = coalesce_s
        self.clients: set[_Client] = set()
        self._joining: dict[_Client, list[str]] = {}
        self.messages_built = 0
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def join(self) -> _Client:
        """A new client, already queued a fresh ``status_update`` as its first message.

        Broadcasts made while its snapshot is being built are held and queued after it: the
        legacy dashboard expects the snapshot first, and nothing in between is missed.
        """
        client = _Client()
        held: list[str] = []
        self._joining[client] = held
        try:
            if not self.running:
                self._listening = asyncio.Event()
                self._task = asyncio.create_task(self._run(), name="legacy-status-hub")
            # Listen first, then snapshot: nothing committed in between is missed.
            await self._listening.wait()
            client.push(await self.status_message())
        finally:
            del self._joining[client]
        for text in held:
            client.push(text)
        self.clients.add(client)
        if not self.running:  # the hub failed while this client joined: it reconnects
            client.end()
        return client

    async def leave(self, client: _Client) -> None:
        client.end()
        self.clients.discard(client)
        if not self.clients and not self._joining:
            await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _broadcast(self, text: str) -> None:
        for client in list(self.clients):
            client.push(text)
        for held in self._joining.values():
            held.append(text)

    async def status_message(self) -> str:
        data = await self.parts.status()
        self.messages_built += 1
        return encode_message("status_update", data)

    async def _run(self) -> None:
        try:
            async with self.bus.subscribe(GROUP_STATE, METRICS_SAMPLE, ESE_CANDIDATE) as events:
                self._listening.set()
                await self._serve(events)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("legacy status hub failed; disconnecting its clients")
        finally:
            self._listening.set()
            for client in list(self.clients):
                client.end()

    async def _serve(self, events: Any) -> None:
        loop = asyncio.get_running_loop()
        stream = aiter(events)
        next_status = loop.time() + self.heartbeat_s
        while True:
            first: Event | None
            try:
                first = await _next_within(stream, max(0.0, next_status - loop.time()))
            except TimeoutError:
                first = None
            except StopAsyncIteration:
                return
            channels = set()
            if first is not None:
                channels.add("resync" if first.resync else first.channel)
                # A burst of writes becomes one message of each kind.
                deadline = loop.time() + self.coalesce_s
                while (remaining := deadline - loop.time()) > 0:
                    try:
                        more = await _next_within(stream, remaining)
                    except TimeoutError:
                        break
                    except StopAsyncIteration:
                        return
                    channels.add("resync" if more.resync else more.channel)
            if first is None or channels & {GROUP_STATE, "resync"}:
                self._broadcast(await self.status_message())
                next_status = loop.time() + self.heartbeat_s
                continue
            if METRICS_SAMPLE in channels:
                self._broadcast(encode_message("metrics_update", await self.parts.metrics()))
            if ESE_CANDIDATE in channels:
                self._broadcast(encode_message("ese_update", await self.parts.ese_candidates()))
            self.messages_built += len(channels)


# -- endpoints --------------------------------------------------------------------------


def routes(hub: LegacyStatusHub) -> list[Route | WebSocketRoute]:
    """The two legacy channels; mount them before the REST compatibility layer."""

    async def ws_status(websocket: WebSocket) -> None:
        await websocket.accept()
        client = await hub.join()

        async def read() -> None:
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    text = message.get("text")
                    if text is None or len(text) > MAX_CLIENT_MESSAGE_CHARS:
                        continue  # the legacy channel only understands "ping"
                    if text.strip() == "ping":
                        client.push("pong")
            finally:
                client.end()

        reader = asyncio.create_task(read(), name="legacy-ws-reader")
        try:
            async for text in client.items():
                await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away mid-send
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            await hub.leave(client)
            with contextlib.suppress(Exception):
                await websocket.close()

    async def sse_status(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            yield _sse(encode_event("connected"))
            client = await hub.join()
            heartbeat = asyncio.create_task(_heartbeats(client), name="legacy-sse-heartbeat")
            try:
                async for text in client.items():
                    yield _sse(text)
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
                await hub.leave(client)

        return event_stream(request, stream)

    return [WebSocketRoute(WS_PATH, ws_status), Route(SSE_PATH, sse_status, methods=["GET"])]


def encode_event(kind: str) -> str:
    return json.dumps({"type": kind, "timestamp": format_utc(datetime.now(UTC))}, separators=(",", ":"))


def _sse(text: str) -> str:
    return f"data: {text}\n\n"


async def _heartbeats(client: _Client) -> None:
    while True:
        await asyncio.sleep(SSE_HEARTBEAT_S)
        client.push(encode_event("heartbeat"))
