"""The direct-send WebSocket extension (server/ws_protocol.py) and the fan-out that uses it.

First the extension on its own: a real uvicorn server in this process running
``DirectSendWebSocketProtocol`` under a minimal ASGI app, and a real websockets client.
Then the whole path in a real ``serve``-like server process: shared results reach
clients of both protocols through the direct route, and a client's ``complete`` stops
them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from dsa110.auth.identity import Role
from server.ws_protocol import DIRECT_SEND, DirectSendWebSocketProtocol, text_frame
from tests.credentials import key_headers
from tests.databases import scratch_database
from tests.live.conftest import WAIT_S
from tests.live.servers import server_process
from tests.waiting import eventually

SendFrame = Callable[[bytes], bool]


class ExtensionApp:
    """Accepts every WebSocket and hands its scope's direct-send callable to the test."""

    def __init__(self) -> None:
        self.senders: asyncio.Queue[SendFrame | None] = asyncio.Queue()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert scope["type"] == "websocket"
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        self.senders.put_nowait(scope["extensions"].get(DIRECT_SEND))
        while (await receive())["type"] != "websocket.disconnect":
            pass


@contextlib.asynccontextmanager
async def extension_server(per_message_deflate: bool = False) -> AsyncIterator[tuple[str, ExtensionApp]]:
    app = ExtensionApp()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        ws=DirectSendWebSocketProtocol,
        ws_per_message_deflate=per_message_deflate,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/", app
    finally:
        server.should_exit = True
        await task


async def next_sender(app: ExtensionApp) -> SendFrame | None:
    async with asyncio.timeout(WAIT_S):
        return await app.senders.get()


async def test_a_frame_written_directly_is_the_text_message_the_client_reads() -> None:
    async with extension_server() as (url, app), connect(url, compression=None) as ws:
        send_frame = await next_sender(app)
        assert send_frame is not None
        assert send_frame(text_frame('{"id":"é","type":"next"}'))
        assert send_frame(text_frame("second"))
        async with asyncio.timeout(WAIT_S):
            assert await ws.recv() == '{"id":"é","type":"next"}'
            assert await ws.recv() == "second"


async def test_direct_send_refuses_under_back_pressure_and_after_close() -> None:
    async with extension_server() as (url, app):
        async with connect(url, compression=None) as ws:
            send_frame = await next_sender(app)
            assert send_frame is not None
            protocol = send_frame.__self__  # type: ignore[attr-defined]
            protocol.pause_writing()  # what the transport does when its buffer is full
            assert not send_frame(text_frame("held back"))
            protocol.resume_writing()
            assert send_frame(text_frame("flows again"))
            async with asyncio.timeout(WAIT_S):
                assert await ws.recv() == "flows again"
        # Refused once the server has seen the close (a frame or two may go before).
        await eventually(lambda: not send_frame(text_frame("after close")))


async def test_no_direct_send_when_frames_are_compressed_per_client() -> None:
    async with extension_server(per_message_deflate=True) as (url, app), connect(url) as ws:
        assert ws.protocol.extensions  # permessage-deflate was negotiated
        assert await next_sender(app) is None


# -- the whole path, in a server process ---------------------------------------------

JOBS = "subscription { jobUpdates { type state } }"
CREATE_JOB = (
    'mutation { createMosaicJob(startTime: "2025-10-24T00:00:00Z", endTime: "2025-10-24T06:00:00Z") { id } }'
)


SUBSCRIBE_TYPE = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}


async def _subscribed(url: str, op_id: str, protocol: str = "graphql-transport-ws") -> ClientConnection:
    ws = await connect(url, subprotocols=[protocol])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": op_id, "type": SUBSCRIBE_TYPE[protocol], "payload": {"query": JOBS}}))
    return ws


async def _message(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_S):
        while True:
            message: dict[str, Any] = json.loads(await ws.recv())
            if message["type"] not in ("ka", "ping", "pong"):
                return message


async def _live(http: httpx.AsyncClient, subscribers: int) -> dict[str, int]:
    async with asyncio.timeout(WAIT_S):
        while True:
            live: dict[str, int] = (await http.get("/healthz")).json()["live"]
            if live["subscribers"] == subscribers:
                return live
            await asyncio.sleep(0.05)


async def test_shared_results_go_out_directly_to_both_protocols_and_stop_at_complete(tmp_path: Path) -> None:
    async with (
        scratch_database("sqlite", tmp_path) as db_url,
        server_process(db_url, "memory://", tmp_path) as (base, _),
        httpx.AsyncClient(
            base_url=base, timeout=WAIT_S, headers=await key_headers(db_url, Role.OPERATOR)
        ) as http,
    ):
        url = base.replace("http://", "ws://") + "/graphql"
        # Two clients with the same operation id (they share one encoded frame), one
        # with another id, and one on the legacy protocol.
        same_a, same_b, other = [await _subscribed(url, op) for op in ("1", "1", "x")]
        legacy = await _subscribed(url, "old", protocol="graphql-ws")
        clients = [same_a, same_b, other, legacy]
        try:
            await _live(http, subscribers=4)
            for _ in range(3):
                assert "errors" not in (await http.post("/graphql", json={"query": CREATE_JOB})).json()
                expected = {"data": {"jobUpdates": {"type": "MOSAIC", "state": "PENDING"}}}
                assert await _message(same_a) == {"id": "1", "type": "next", "payload": expected}
                assert await _message(same_b) == {"id": "1", "type": "next", "payload": expected}
                assert await _message(other) == {"id": "x", "type": "next", "payload": expected}
                assert await _message(legacy) == {"type": "data", "id": "old", "payload": expected}
            live = await _live(http, subscribers=4)
            assert live["producers"] == 1
            assert live["deliveries_direct"] == 12  # 3 events x 4 clients, none queued
            assert live["deliveries_queued"] == 0

            # `complete`, then a ping round trip: the server has handled the complete.
            await other.send(json.dumps({"id": "x", "type": "complete"}))
            await other.send(json.dumps({"type": "ping"}))
            async with asyncio.timeout(WAIT_S):
                assert json.loads(await other.recv())["type"] == "pong"
            assert "errors" not in (await http.post("/graphql", json={"query": CREATE_JOB})).json()
            assert (await _message(same_a))["id"] == "1"
            assert (await _message(legacy))["id"] == "old"
            await other.send(json.dumps({"type": "ping"}))
            async with asyncio.timeout(WAIT_S):
                assert json.loads(await other.recv())["type"] == "pong"  # and no `next` before it
        finally:
            await asyncio.gather(*(ws.close() for ws in clients))
