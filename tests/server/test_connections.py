"""Connections against a real server process: header deadline, caps per client and in total.

One ``uvicorn`` process as ``dsa110-graph serve`` runs it (``server.http_protocol``),
with small limits so that the caps are reached with a few sockets. Each test speaks from
loopback addresses of its own (127.0.0.x: every one of them is this host on Linux), so
the per-client counts of different tests do not mix. Connections are held open with
SSE streams or the legacy status WebSocket (complete requests, which the header
deadline leaves alone) or with half-sent requests (which it closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from dsa110.settings import Settings
from server.connections import DEFAULT_BACKLOG, ConnectionSlots, connection_budget, listen_backlog
from tests.databases import scratch_database
from tests.live.conftest import WAIT_S
from tests.live.servers import server_process
from tests.waiting import eventually

PER_CLIENT = 8
TOTAL = 24
HEADER_TIMEOUT_S = 1.0
LIMITS = {
    "DSA110_MAX_CONNECTIONS_PER_CLIENT": str(PER_CLIENT),
    "DSA110_MAX_CONNECTIONS": str(TOTAL),
    "DSA110_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
    "DSA110_RATE_LIMIT_PER_MINUTE": "0",
    "DSA110_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "0",
}
SSE = b"GET /api/sse/status HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n"


@dataclass
class Server:
    base: str
    port: int
    pid: int

    async def health(self) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.base, timeout=WAIT_S) as http:
            response = await http.get("/healthz")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def open_files(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    root: Path = tmp_path_factory.mktemp("connections")
    async with (
        scratch_database("sqlite", root) as url,
        server_process(url, "memory://", root, extra_env=LIMITS) as (base, process),
    ):
        yield Server(base, int(base.rsplit(":", 1)[1]), process.pid)


async def _open(server: Server, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port, local_addr=(source, 0))


async def _exchange(server: Server, source: str, payload: bytes) -> bytes:
    """Send ``payload`` and read until the server closes the connection."""
    reader, writer = await _open(server, source)
    try:
        writer.write(payload)
        await writer.drain()
        async with asyncio.timeout(WAIT_S):
            return await reader.read()
    finally:
        writer.close()


def _coded(raw: bytes) -> tuple[int, dict[str, str], str]:
    """(status, headers, error code) of one raw HTTP response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)["errors"][0]["extensions"]["code"]


@contextlib.asynccontextmanager
async def _held_streams(server: Server, source: str, count: int) -> AsyncIterator[None]:
    """``count`` SSE streams open from ``source`` (each has had its first event)."""
    writers: list[asyncio.StreamWriter] = []
    try:
        for _ in range(count):
            reader, writer = await _open(server, source)
            writers.append(writer)
            writer.write(SSE)
            async with asyncio.timeout(WAIT_S):
                assert (await reader.readline()).startswith(b"HTTP/1.1 200")
                await reader.readuntil(b"data: ")
        yield
    finally:
        for writer in writers:
            writer.close()


# -- the budget ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "files_limit", "budget"),
    [
        pytest.param(0, 1024, 1024 - 128, id="auto-eighth-reserved"),
        pytest.param(0, 20000, 20000 - 2500, id="auto-large"),
        pytest.param(0, 256, 256 - 64, id="auto-reserve-at-least-64"),
        pytest.param(100, 1024, 100, id="set-below-the-limit"),
        pytest.param(5000, 1024, 1024 - 128, id="set-above-what-the-limit-allows"),
    ],
)
def test_the_connection_budget_stays_below_the_open_files_limit(
    setting: int, files_limit: int, budget: int
) -> None:
    assert connection_budget(Settings(max_connections=setting), files_limit) == budget


@pytest.mark.parametrize(
    ("setting", "total", "per_client"),
    [
        pytest.param(20, 100, 20, id="as-set"),
        pytest.param(1024, 100, 50, id="at-most-half-the-total"),
        pytest.param(0, 100, 0, id="off"),
    ],
)
def test_one_client_never_gets_every_slot(setting: int, total: int, per_client: int) -> None:
    settings = Settings(max_connections=total, max_connections_per_client=setting)
    slots = ConnectionSlots.from_settings(settings)
    assert slots.total == total
    assert slots.per_client == per_client


def test_the_accept_queue_is_at_least_uvicorns() -> None:
    assert listen_backlog() >= DEFAULT_BACKLOG


# -- the header deadline -------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="nothing-sent"),
        pytest.param(b"GE", id="half-a-request-line"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ", id="headers-never-finished"),
        pytest.param(
            b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\nGET /healthz HTTP/1.1\r\nHo",
            id="second-request-on-a-kept-alive-connection",
        ),
    ],
)
async def test_unfinished_request_headers_get_a_coded_408_and_the_connection_closes(
    server: Server, payload: bytes
) -> None:
    raw = await _exchange(server, "127.0.0.2", payload)
    last = raw[raw.rfind(b"HTTP/1.1 ") :]  # after the first, answered request of the pipelined case
    status, headers, code = _coded(last)
    assert (status, code) == (408, "REQUEST_TIMEOUT")
    assert headers["connection"] == "close"
    assert (await server.health())["connections"]["header_timeouts"] >= 1


@pytest.mark.parametrize("path", ["/graphql", "/api/sources"])
async def test_a_request_target_too_long_to_parse_gets_a_coded_414(server: Server, path: str) -> None:
    # Before: httptools cannot parse a URL over 64 KiB, and uvicorn answered a plain-text
    # "400 Invalid HTTP request received." (no code) to a long GraphQL GET.
    target = f"{path}?query=%7B__typename%7D&pad={'a' * 70_000}".encode()
    raw = await _exchange(server, "127.0.0.40", b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 414 "), raw[:200]
    assert b"content-type: application/json" in head.lower()
    answer = json.loads(body)
    if path.startswith("/api/"):  # the REST envelope on the REST paths
        assert answer["code"] == "URI_TOO_LONG" and answer["status"] == "error"
    else:
        assert answer["errors"][0]["extensions"]["code"] == "URI_TOO_LONG"
    # Just under the limit is served as before.
    short = f"/graphql?query=%7B__typename%7D&pad={'a' * 60_000}".encode()
    raw = await _exchange(
        server, "127.0.0.40", b"GET " + short + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    assert raw.startswith(b"HTTP/1.1 200 ") and raw.endswith(b'{"data":{"__typename":"Query"}}')


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"GET /graphql HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", id="negative-length"),
        pytest.param(
            b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            id="length-and-chunked",
        ),
        pytest.param(b"GET /graphql HTTP/1.1\r\nBad Header\r\n\r\n", id="header-without-colon"),
    ],
)
async def test_a_request_that_does_not_parse_gets_a_coded_400(server: Server, payload: bytes) -> None:
    status, headers, code = _coded(await _exchange(server, "127.0.0.41", payload))
    assert (status, code) == (400, "BAD_HTTP_REQUEST")
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"


async def test_connections_past_their_headers_are_left_alone(server: Server) -> None:
    async with connect(
        server.base.replace("http://", "ws://") + "/api/ws/status", local_addr=("127.0.0.3", 0)
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "status_update"
        await asyncio.sleep(2 * HEADER_TIMEOUT_S)  # well past the header deadline
        await ws.send("ping")
        assert await _next_text(ws) == "pong"


async def _next_text(ws: ClientConnection) -> str:
    async with asyncio.timeout(WAIT_S):
        while True:
            message = await ws.recv()
            if isinstance(message, str) and not message.startswith("{"):
                return message


# -- caps --------------------------------------------------------------------------------


async def test_a_client_over_its_cap_gets_a_coded_503_and_others_are_served(server: Server) -> None:
    async with _held_streams(server, "127.0.0.4", PER_CLIENT):
        status, headers, code = _coded(await _exchange(server, "127.0.0.4", b"GET /healthz HTTP/1.1\r\n"))
        assert (status, code) == (503, "TOO_MANY_CONNECTIONS")
        assert int(headers["retry-after"]) > 0
        assert headers["connection"] == "close"
        health = await server.health()  # from 127.0.0.1
        assert health["connections"]["per_client_limit"] == PER_CLIENT
        assert health["connections"]["refused"] >= 1

    async def admitted_again() -> bool:
        raw = await _exchange(
            server, "127.0.0.4", b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        return raw.startswith(b"HTTP/1.1 200")

    await eventually(admitted_again, WAIT_S)


async def test_the_total_cap_refuses_everyone_until_connections_close(server: Server) -> None:
    async with contextlib.AsyncExitStack() as stack:
        for i in range(TOTAL // PER_CLIENT):
            await stack.enter_async_context(_held_streams(server, f"127.0.0.{10 + i}", PER_CLIENT))
        _, _, code = _coded(await _exchange(server, "127.0.0.20", b"GET /healthz HTTP/1.1\r\n"))
        assert code == "TOO_MANY_CONNECTIONS"
    health = await _eventually_healthy(server)
    assert health["connections"]["limit"] == TOTAL


async def _eventually_healthy(server: Server) -> dict[str, Any]:
    answer: dict[str, Any] = {}

    async def healthy() -> bool:
        with contextlib.suppress(AssertionError, httpx.HTTPError):
            answer.update(await server.health())
            return True
        return False

    await eventually(healthy, WAIT_S)
    return answer


async def test_websockets_count_against_the_cap_and_give_their_slot_back(server: Server) -> None:
    url = server.base.replace("http://", "ws://") + "/api/ws/status"
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(PER_CLIENT):
            await stack.enter_async_context(connect(url, local_addr=("127.0.0.5", 0)))
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, local_addr=("127.0.0.5", 0)):
                pass
        assert refused.value.response.status_code == 503
        body = json.loads(refused.value.response.body)
        assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_CONNECTIONS"

    async def admitted_again() -> bool:
        try:
            async with connect(url, local_addr=("127.0.0.5", 0)) as ws:
                return json.loads(await ws.recv())["type"] == "status_update"
        except InvalidStatus:
            return False

    await eventually(admitted_again, WAIT_S)


async def test_a_flood_of_half_sent_requests_leaves_healthz_answering_and_files_bounded(
    tmp_path: Path,
) -> None:
    # A server whose header deadline outlasts the test: the flood's connections stay
    # half-sent, and only the caps stand between them and the server's descriptors.
    patient = {**LIMITS, "DSA110_HEADER_TIMEOUT_S": "600"}
    async with (
        scratch_database("sqlite", tmp_path) as url,
        server_process(url, "memory://", tmp_path, extra_env=patient) as (base, process),
    ):
        server = Server(base, int(base.rsplit(":", 1)[1]), process.pid)
        await server.health()
        baseline = server.open_files()
        flood_per_client = 400
        held: list[asyncio.StreamWriter] = []
        try:
            for _ in range(flood_per_client):
                for source in ("127.0.0.30", "127.0.0.31"):
                    with contextlib.suppress(OSError):
                        _, writer = await _open(server, source)
                        writer.write(b"GET /graphql HTTP/1.1\r\nHost: test\r\n")
                        held.append(writer)
            assert len(held) > 4 * PER_CLIENT  # the kernel completed far more than the caps admit
            # While the flood holds its sockets: /healthz answers from a third address, and
            # the server keeps no more than the caps (refused sockets close, at most after
            # a short linger).
            await server.health()
            refused_all = 2 * (flood_per_client - PER_CLIENT)

            async def settled() -> bool:
                refused = (await server.health())["connections"]["refused"]
                return refused >= refused_all and server.open_files() <= baseline + 2 * PER_CLIENT

            await eventually(settled, WAIT_S)
            assert (await server.health())["connections"]["open"] >= 2 * PER_CLIENT  # the flood's share
        finally:
            for writer in held:
                writer.close()
