"""GraphQL WebSocket limits on a real server, both protocols: the init deadline, the operation cap.

graphql-transport-ws closes a socket without ``connection_init`` with 4408 (its
PROTOCOL.md); the legacy graphql-ws protocol defines no deadline, and a client that never
sent ``connection_init`` held its socket indefinitely: it now gets a ``connection_error``
with code ``CONNECTION_INIT_TIMEOUT`` and the same close code. An operation over the
per-connection cap is refused with code ``TOO_MANY_SUBSCRIPTIONS``, on both protocols,
and the connection stays usable.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.graphql_view import MAX_OPERATIONS_PER_CONNECTION
from tests.databases import scratch_database
from tests.live.conftest import WAIT_S
from tests.live.servers import next_ws_message, server_process

INIT_TIMEOUT_S = 1.0
GROUPS = "subscription { groupUpdates { groupId } }"
STATUS = "subscription { pipelineStatus { queue { total } } }"
"""Answers at once with the current status (no event needed)."""
EMPTY_QUEUE = {"pipelineStatus": {"queue": {"total": 0}}}


@pytest.fixture(scope="module")
async def ws_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    root: Path = tmp_path_factory.mktemp("ws-limits")
    env = {"DSA110_WS_INIT_TIMEOUT_S": str(INIT_TIMEOUT_S)}
    async with (
        scratch_database("sqlite", root) as url,
        server_process(url, "memory://", root, extra_env=env) as (base, _),
    ):
        yield base.replace("http://", "ws://") + "/graphql"


async def _receive(ws: ClientConnection) -> dict[str, Any]:
    return await next_ws_message(ws, WAIT_S)


async def _close_code(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(10):
            await _receive(ws)
    return closed.value.rcvd.code if closed.value.rcvd else None


async def test_legacy_client_without_connection_init_gets_a_coded_error_and_4408(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        message = await _receive(ws)
        assert message["type"] == "connection_error"
        assert message["payload"]["extensions"]["code"] == "CONNECTION_INIT_TIMEOUT"
        assert await _close_code(ws) == 4408


async def test_transport_ws_client_without_connection_init_is_closed_with_4408(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        assert await _close_code(ws) == 4408


async def test_legacy_client_that_initialised_in_time_stays_open(ws_url: str) -> None:
    async with connect(ws_url, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init"}))
        assert (await _receive(ws))["type"] == "connection_ack"
        await asyncio.sleep(2 * INIT_TIMEOUT_S)
        await ws.send(json.dumps({"type": "start", "id": "q", "payload": {"query": STATUS}}))
        answer = await _receive(ws)
        assert answer["payload"].get("data") == EMPTY_QUEUE, answer


@pytest.mark.parametrize(
    ("protocol", "start"),
    [
        pytest.param("graphql-transport-ws", "subscribe", id="graphql-transport-ws"),
        pytest.param("graphql-ws", "start", id="graphql-ws"),
    ],
)
async def test_an_operation_over_the_connection_cap_is_refused_with_a_code(
    ws_url: str, protocol: str, start: str
) -> None:
    async with connect(ws_url, subprotocols=[protocol]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init"}))
        assert (await _receive(ws))["type"] == "connection_ack"
        for i in range(MAX_OPERATIONS_PER_CONNECTION):
            await ws.send(json.dumps({"type": start, "id": f"op{i}", "payload": {"query": GROUPS}}))
        await ws.send(json.dumps({"type": start, "id": "extra", "payload": {"query": GROUPS}}))
        message = await _receive(ws)
        assert (message["type"], message["id"]) == ("error", "extra")
        error = message["payload"][0] if isinstance(message["payload"], list) else message["payload"]
        assert error["extensions"] == {
            "code": "TOO_MANY_SUBSCRIPTIONS",
            "limit": MAX_OPERATIONS_PER_CONNECTION,
        }
        # The connection stays usable: ending one operation makes room for another.
        stop = {"graphql-transport-ws": "complete", "graphql-ws": "stop"}[protocol]
        await ws.send(json.dumps({"type": stop, "id": "op0"}))
        await ws.send(json.dumps({"type": start, "id": "q", "payload": {"query": STATUS}}))
        answer = await _receive(ws)
        while answer.get("id") != "q" or answer["type"] not in ("next", "data"):
            answer = await _receive(ws)
        assert answer["payload"]["data"] == EMPTY_QUEUE
