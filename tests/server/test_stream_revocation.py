"""A revoked key's open WebSockets and event streams end: in the process that revoked it
(its own ``announce``) and in another server process on the same Redis bus (its listener).
So do those open with an OIDC token, when the token expires.

Two real server processes (uvicorn, as ``serve`` runs them, so the direct-send WebSocket
protocol too) share one database and one Redis namespace. The key cache is set far longer
than any test waits, and the connections are opened before the revocation: only the
revocation reaching the open connection can end them. Waits are hang guards, never
thresholds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from dsa110.auth.identity import Role
from dsa110.auth.oidc import LEEWAY_S
from server.credential_streams import EXPIRED_REASON, REVOKED_CLOSE, REVOKED_REASON
from tests.auth.issuer import AUDIENCE, ISSUER, Issuer
from tests.credentials import key_headers
from tests.databases import REDIS_URL, scratch_database
from tests.live.conftest import WAIT_S
from tests.live.servers import next_ws_message, server_process

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="DSA110_TEST_REDIS_URL not set")

STATUS = "subscription { pipelineStatus { queue { total } } }"
"""Answers at once with the current status, then stays open (no event needed)."""
REVOKE = "mutation($name: String!) { revokeApiKey(name: $name) { revokedAt } }"
PROTOCOLS = [
    pytest.param("graphql-transport-ws", id="graphql-transport-ws"),
    pytest.param("graphql-ws", id="graphql-ws"),
]
START = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}
DATA = {"graphql-transport-ws": "next", "graphql-ws": "data"}


class Servers:
    def __init__(self, database_url: str, first: str, second: str, issuer: Issuer) -> None:
        self.database_url = database_url
        self.issuer = issuer
        self.first = first  # where keys are revoked
        self.second = second  # hears of it on the bus

    async def key(self, role: Role = Role.VIEWER) -> tuple[str, dict[str, str]]:
        name = f"k{uuid.uuid4().hex[:10]}"
        return name, await key_headers(self.database_url, role, name)

    async def revoke(self, name: str) -> None:
        _, admin = await self.key(Role.ADMIN)
        async with httpx.AsyncClient(base_url=self.first, timeout=WAIT_S) as http:
            answer = await http.post(
                "/graphql", json={"query": REVOKE, "variables": {"name": name}}, headers=admin
            )
        assert answer.json()["data"]["revokeApiKey"]["revokedAt"], answer.text


@pytest.fixture(scope="module")
async def servers(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Servers]:
    assert REDIS_URL is not None
    root: Path = tmp_path_factory.mktemp("stream-revocation")
    namespace = f"t{uuid.uuid4().hex[:10]}"
    issuer = Issuer(root)
    env = {
        "DSA110_API_KEY_CACHE_S": "600",
        "DSA110_OIDC_ISSUER": ISSUER,
        "DSA110_OIDC_AUDIENCE": AUDIENCE,
        "DSA110_OIDC_JWKS": str(issuer.jwks_file),
    }
    async with (
        scratch_database("sqlite", root) as url,
        server_process(url, REDIS_URL, root, namespace=namespace, extra_env=env) as (first, _),
        server_process(url, REDIS_URL, root, namespace=namespace, extra_env=env) as (second, _),
    ):
        yield Servers(url, first, second, issuer)


def _ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/graphql"


async def _receive(ws: ClientConnection) -> dict[str, Any]:
    return await next_ws_message(ws, WAIT_S)


@contextlib.asynccontextmanager
async def _subscribed(
    base: str, protocol: str, headers: dict[str, str] | None, payload: dict[str, str] | None
) -> AsyncIterator[ClientConnection]:
    """A socket with ``STATUS`` running on it (its first answer read), credentials sent with
    the upgrade (``headers``) or in ``connection_init`` (``payload``)."""
    async with connect(
        _ws_url(base),
        subprotocols=[protocol],  # type: ignore[list-item]
        additional_headers=headers,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", **({"payload": payload} if payload else {})}))
        assert (await _receive(ws))["type"] == "connection_ack"
        await _subscribe(ws, protocol, "s")
        yield ws


async def _subscribe(ws: ClientConnection, protocol: str, op_id: str) -> None:
    await ws.send(json.dumps({"type": START[protocol], "id": op_id, "payload": {"query": STATUS}}))
    answer = await _receive(ws)
    assert (answer["type"], answer["id"]) == (DATA[protocol], op_id), answer
    assert "errors" not in answer["payload"], answer


async def _closed_for_revocation(ws: ClientConnection, protocol: str, reason: str = REVOKED_REASON) -> None:
    """The socket is closed with 4403; on graphql-ws after a ``connection_error`` (hang guard)."""
    messages: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(WAIT_S):
            while True:
                messages.append(await _receive(ws))
    assert closed.value.rcvd is not None, "closed without a close frame"
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (REVOKED_CLOSE, reason)
    if protocol == "graphql-ws":
        assert messages and messages[-1]["type"] == "connection_error", messages
        assert messages[-1]["payload"]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("sent_in", ["headers", "connection_init"])
async def test_a_revoked_keys_subscription_sockets_are_closed_with_4403_in_every_process(
    servers: Servers, protocol: str, sent_in: str
) -> None:
    doomed_name, doomed = await servers.key()
    _, survivor = await servers.key()

    def credentials(headers: dict[str, str]) -> tuple[dict[str, str] | None, dict[str, str] | None]:
        return (headers, None) if sent_in == "headers" else (None, headers)

    async with (
        _subscribed(servers.first, protocol, *credentials(doomed)) as revoking_process,
        _subscribed(servers.second, protocol, *credentials(doomed)) as other_process,
        _subscribed(servers.second, protocol, *credentials(survivor)) as other_key,
        _subscribed(servers.second, protocol, None, None) as anonymous,
    ):
        await servers.revoke(doomed_name)
        await _closed_for_revocation(revoking_process, protocol)
        await _closed_for_revocation(other_process, protocol)
        # The second process has acted on the revocation by now; the others' sockets go on.
        for ws in (other_key, anonymous):
            await _subscribe(ws, protocol, "after")


async def test_a_socket_opened_with_a_revoked_key_is_refused(servers: Servers) -> None:
    name, doomed = await servers.key()
    await servers.revoke(name)
    for base in (servers.first, servers.second):
        async with connect(_ws_url(base), subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": doomed}))
            with pytest.raises(ConnectionClosed) as closed:
                await _receive(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def _sse_data(lines: AsyncIterator[str]) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_S):
        async for line in lines:
            if line.startswith("data: "):
                return json.loads(line[len("data: ") :])  # type: ignore[no-any-return]
    raise AssertionError("stream ended")


async def _ends(lines: AsyncIterator[str]) -> None:
    """The stream ends (cleanly: a broken chunked body would raise) - hang guard only."""
    async with asyncio.timeout(WAIT_S):
        async for _ in lines:
            pass


@pytest.mark.parametrize("where", ["revoking process", "other process"])
async def test_a_revoked_keys_event_streams_and_status_socket_end(servers: Servers, where: str) -> None:
    base = servers.first if where == "revoking process" else servers.second
    doomed_name, doomed = await servers.key()
    _, survivor = await servers.key()
    graph = {"query": STATUS}
    sse = {"Accept": "text/event-stream"}
    legacy_ws = base.replace("http://", "ws://") + "/api/ws/status"
    async with (
        connect(legacy_ws, additional_headers=doomed) as doomed_legacy_ws,
        httpx.AsyncClient(base_url=base, timeout=WAIT_S) as http,
        http.stream("POST", "/graphql", json=graph, headers={**sse, **doomed}) as doomed_graph,
        http.stream("GET", "/api/sse/status", headers=doomed) as doomed_status,
        http.stream("POST", "/graphql", json=graph, headers={**sse, **survivor}) as kept_graph,
    ):
        streams = [r.aiter_lines() for r in (doomed_graph, doomed_status, kept_graph)]
        for response, lines in zip((doomed_graph, doomed_status, kept_graph), streams, strict=True):
            assert response.status_code == 200
            await _sse_data(lines)  # open, and answering
        assert (await _receive(doomed_legacy_ws))["type"] == "status_update"
        await servers.revoke(doomed_name)
        await _ends(streams[0])
        await _ends(streams[1])
        with pytest.raises(ConnectionClosed) as closed:  # the legacy status WebSocket too
            async with asyncio.timeout(WAIT_S):
                while True:
                    await doomed_legacy_ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == REVOKED_CLOSE
        # The other key's stream is still open: reading it waits (nothing has happened).
        reading = asyncio.ensure_future(_next_data_or_end(streams[2]))
        await asyncio.sleep(0.2)
        assert not reading.done(), "the other key's stream ended too"
        reading.cancel()


async def _next_data_or_end(lines: AsyncIterator[str]) -> str | None:
    async for line in lines:
        if line.startswith("data: "):
            return line
    return None


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_socket_and_a_stream_open_with_a_token_end_when_it_expires(
    servers: Servers, protocol: str
) -> None:
    # Valid for a few seconds more: its `exp` is in the past by a little less than the leeway.
    token = {"Authorization": f"Bearer {servers.issuer.token(role='viewer', lifetime_s=4 - LEEWAY_S)}"}
    _, key = await servers.key()
    sse = {"Accept": "text/event-stream", **token}
    async with (
        _subscribed(servers.second, protocol, None, token) as expiring,
        _subscribed(servers.second, protocol, None, key) as kept,
        httpx.AsyncClient(base_url=servers.second, timeout=WAIT_S) as http,
        http.stream("POST", "/graphql", json={"query": STATUS}, headers=sse) as stream,
    ):
        lines = stream.aiter_lines()
        await _sse_data(lines)
        await _closed_for_revocation(expiring, protocol, EXPIRED_REASON)
        await _ends(lines)
        await _subscribe(kept, protocol, "after")
