"""The front door (``server.front_door``): health answers without the event loop, heads read in front.

The door on an event loop of its own running in a thread, serving a small protocol that
echoes what it receives; the test blocks that loop on purpose (a synchronous stall, as
a CPU-bound request or a blocking call would) and speaks to the door with plain sockets
from here. The server as ``dsa110-graph serve`` runs it is tested through the door too:
``test_connections`` (caps, 408, WebSocket slots), ``test_workers`` (N processes) and
the end-to-end cases at the bottom of this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from server import health
from server.connections import ConnectionSlots
from server.front_door import FrontDoor, FrontDoorSelectorLoop
from server.health import HealthReport
from tests.databases import scratch_database
from tests.live.conftest import WAIT_S
from tests.live.servers import server_process
from tests.waiting import eventually

HEADER_TIMEOUT_S = 1.0
STALL_S = 1.0
PROBE = b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


class Echo(asyncio.Protocol):
    """Answers once it has a whole head (and the body it announces) with everything it received."""

    def __init__(self) -> None:
        self.received = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received += data
        head, found, body = self.received.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        if found and len(body) >= length and self.transport is not None:
            reply = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(self.received)
            self.transport.write(reply + self.received)
            self.transport.close()


class Door:
    def __init__(self, loop: asyncio.AbstractEventLoop, door: FrontDoor) -> None:
        self.loop = loop
        self.door = door
        self.port: int = door.sockets[0].getsockname()[1]

    def stall(self, seconds: float) -> None:
        """Block the event loop for ``seconds`` (from now, as soon as it runs its next callback)."""
        started = threading.Event()

        def block() -> None:
            started.set()
            time.sleep(seconds)

        self.loop.call_soon_threadsafe(block)
        assert started.wait(WAIT_S)

    def exchange(self, payload: bytes, source: str = "127.0.0.1") -> bytes:
        """Send ``payload`` and read until the server closes the connection."""
        with socket.create_connection(
            ("127.0.0.1", self.port), timeout=WAIT_S, source_address=(source, 0)
        ) as sock:
            sock.sendall(payload)
            return _read_all(sock)


def _read_all(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def _status_and_body(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


@pytest.fixture
def door() -> Iterator[Door]:
    loop = FrontDoorSelectorLoop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    slots = ConnectionSlots(total=64, per_client=4, header_timeout_s=HEADER_TIMEOUT_S)
    report = HealthReport(lambda: {"live": {"subscribers": 0}}, stall_s=STALL_S)
    report.database = "ok"
    health.install(report)

    async def open_door() -> FrontDoor:
        listener = socket.create_server(("127.0.0.1", 0))
        front = FrontDoor(asyncio.get_running_loop(), [listener], Echo, slots)
        front.start()
        return front

    front = asyncio.run_coroutine_threadsafe(open_door(), loop).result(WAIT_S)
    try:
        yield Door(loop, front)
    finally:
        health.install(None)
        loop.call_soon_threadsafe(front.close)
        front.thread.join(WAIT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT_S)
        loop.close()


def test_healthz_is_answered_while_the_event_loop_is_blocked(door: Door) -> None:
    door.stall(STALL_S / 2)
    status, body = _status_and_body(door.exchange(PROBE))
    assert status == 200
    assert body["status"] == "ok"
    assert body["live"] == {"subscribers": 0}


def test_healthz_says_unavailable_when_the_event_loop_is_stuck(door: Door) -> None:
    door.stall(3 * STALL_S)
    time.sleep(1.5 * STALL_S)  # the loop has been silent past stall_s now (a functional wait, not a bound)
    status, body = _status_and_body(door.exchange(PROBE))
    assert status == 503
    assert body["event_loop"] == "stalled"


def test_healthz_says_unavailable_when_the_database_is_not_reachable(door: Door) -> None:
    report = health.installed()
    assert report is not None
    report.database = "unreachable"
    status, body = _status_and_body(door.exchange(PROBE))
    assert (status, body["database"]) == (503, "unreachable")


def test_healthz_keeps_a_server_whose_database_is_only_slow_in_service(door: Door) -> None:
    # Overloaded, not dead: a load balancer must not pull it out (server.health).
    report = health.installed()
    assert report is not None
    report.database = "slow"
    status, body = _status_and_body(door.exchange(PROBE))
    assert (status, body["status"], body["database"]) == (200, "degraded", "slow")


def test_probes_on_a_kept_alive_connection_are_answered_in_turn(door: Door) -> None:
    keep_alive = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
    with socket.create_connection(("127.0.0.1", door.port), timeout=WAIT_S) as sock:
        sock.sendall(keep_alive + keep_alive + PROBE)  # pipelined: three answers, then close
        raw = _read_all(sock)
    assert raw.count(b"HTTP/1.1 200 OK") == 3


def test_a_browsers_cross_origin_probe_is_left_to_the_app_and_its_cors_policy(door: Door) -> None:
    raw = door.exchange(
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nOrigin: http://dash\r\nConnection: close\r\n\r\n"
    )
    assert raw.endswith(
        b"Origin: http://dash\r\nConnection: close\r\n\r\n"
    )  # the echo: the loop's protocol had it


def test_other_requests_reach_the_loop_with_every_byte_in_order(door: Door) -> None:
    head = b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n"
    with socket.create_connection(("127.0.0.1", door.port), timeout=WAIT_S) as sock:
        sock.sendall(head[:10])
        time.sleep(0.05)  # the front door has the start of the head, the rest comes later
        sock.sendall(head[10:] + b"he")
        time.sleep(0.05)  # handed off by now, most likely: the body's end goes to the loop's transport
        sock.sendall(b"llo")
        raw = _read_all(sock)
    assert raw.endswith(head + b"hello")


def test_a_request_that_arrives_while_the_loop_is_blocked_is_served_after(door: Door) -> None:
    door.stall(STALL_S / 2)
    raw = door.exchange(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK")


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="nothing-sent"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ", id="headers-never-finished"),
        pytest.param(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHo", id="second-request"),
    ],
)
def test_unfinished_heads_are_answered_408_by_the_front_door(door: Door, payload: bytes) -> None:
    raw = door.exchange(payload)
    last = raw[raw.rfind(b"HTTP/1.1 ") :]
    status, body = _status_and_body(last)
    assert (status, body["errors"][0]["extensions"]["code"]) == (408, "REQUEST_TIMEOUT")
    assert door.door.slots.stats()["open"] == 0


def test_a_client_over_its_cap_is_refused_at_the_door_and_its_slots_come_back(door: Door) -> None:
    held = [
        socket.create_connection(("127.0.0.1", door.port), timeout=WAIT_S, source_address=("127.0.0.7", 0))
        for _ in range(door.door.slots.per_client)
    ]
    try:
        status, body = _status_and_body(door.exchange(b"GET /x HTTP/1.1\r\n", source="127.0.0.7"))
        assert (status, body["errors"][0]["extensions"]["code"]) == (503, "TOO_MANY_CONNECTIONS")
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + WAIT_S
    while door.door.slots.stats()["open"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert door.door.slots.stats()["open"] == 0


def test_a_closed_door_closes_the_connections_it_was_reading(door: Door) -> None:
    with socket.create_connection(("127.0.0.1", door.port), timeout=WAIT_S) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\n")  # a head still being read
        deadline = time.monotonic() + WAIT_S
        while door.door.slots.stats()["open"] != 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        door.loop.call_soon_threadsafe(door.door.close)
        door.door.thread.join(WAIT_S)
        with contextlib.suppress(ConnectionResetError):  # closed with our bytes unread: reset
            assert sock.recv(100) == b""
    assert door.door.slots.stats()["open"] == 0


# -- end to end: the server as `dsa110-graph serve` runs it --------------------------------


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root: Path = tmp_path_factory.mktemp("front-door")
    async with (
        scratch_database("sqlite", root) as url,
        server_process(url, "memory://", root, workers=1) as (base, _),
    ):
        yield base


async def test_the_served_healthz_comes_from_the_front_door_with_the_full_report(served: str) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=WAIT_S) as http:
        body = (await http.get("/healthz")).json()
    assert body["status"] == "ok"
    assert "event_loop_silent_s" in body  # answered in front of the loop
    assert {"live", "metrics_sampler", "job_pool", "connections", "pid"} <= set(body)


async def test_queries_and_websockets_are_served_through_the_handoff(served: str) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=WAIT_S) as http:
        for _ in range(3):  # kept alive: later requests go straight to the loop's protocol
            answer = await http.post("/graphql", json={"query": "{ __typename }"})
            assert answer.json() == {"data": {"__typename": "Query"}}
    url = served.replace("http://", "ws://") + "/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init"}))
        async with asyncio.timeout(WAIT_S):
            assert json.loads(await ws.recv())["type"] == "connection_ack"


async def test_a_handed_off_connection_gives_its_slot_back_when_it_closes(served: str) -> None:
    async with httpx.AsyncClient(base_url=served, timeout=WAIT_S) as http:
        await http.post("/graphql", json={"query": "{ __typename }"})

    async def only_the_probe_counted() -> bool:
        async with httpx.AsyncClient(base_url=served, timeout=WAIT_S) as http:
            return bool((await http.get("/healthz")).json()["connections"]["open"] == 1)

    await eventually(only_the_probe_counted, WAIT_S)
