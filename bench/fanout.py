"""Subscription fan-out: one server process, 10 then 1,000 WebSocket subscribers to eseCandidates.

The server is a real ``uvicorn`` process on a SQLite file, with its event bus on Redis
(``--events-url``, default ``$DSA110_TEST_REDIS_URL`` or the local Redis). Each event is
a real write: this process inserts an ``ese_candidates`` row and publishes
``ese.candidate`` on the server's bus, as the ingest path does after its commit. Latency
is measured from just before the INSERT to the moment each client has the ``next``
message; server CPU (user + system, every thread, from the scheduler's nanosecond
counters: ``bench.common.process_cpu_s``) is divided by events.

All clients send the identical subscription, so the server executes it once per event
and fans the result out (``server.live_transport.SharedSubscriptions``).

Prints ``fanout_<n> clients=.. events=.. p50_ms=.. p99_ms=.. cpu_s_per_event=..`` per
round and ``fanout_cpu_ratio value=..`` (1,000 over 10). Targets: p99 < 1 s at 1,000
clients; CPU per event at 1,000 within 5x of that at 10.

Also ``fanout_write_floor clients=.. us_per_client=..``: what the kernel alone charges
to send one message of the same size on each of that many loopback TCP connections
(plain ``socket.send``, measured here in the same run). It is the part of the per-client
cost no server code can remove; on loopback it includes the receiver's TCP processing.

    .venv/bin/python -m bench.fanout [--events 100] [--clients 10,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from websockets.asyncio.client import ClientConnection, connect

from bench.common import line, p50, percentile, process_cpu_s
from dsa110.db.engine import create_engine
from dsa110.events import ESE_CANDIDATE, EventBus, create_event_bus
from tests.databases import scratch_database
from tests.live.conftest import insert_candidate, insert_source
from tests.live.servers import server_process

SUBSCRIPTION = "subscription { eseCandidates(minSigma: 5) { candidateId sourceId significance status kind } }"
CONNECT_BATCH = 100
WAIT_S = 30.0


@dataclass
class Client:
    ws: ClientConnection
    received: dict[int, float] = field(default_factory=dict)
    """candidate id -> perf_counter() at receipt."""


async def open_client(url: str) -> Client:
    ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init"}))
    ack = json.loads(await ws.recv())
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"no connection_ack: {ack}")
    await ws.send(json.dumps({"id": "ese", "type": "subscribe", "payload": {"query": SUBSCRIPTION}}))
    return Client(ws)


async def read(client: Client, arrived: asyncio.Queue[int]) -> None:
    async for raw in client.ws:
        message = json.loads(raw)
        if message.get("type") == "next":
            candidate = message["payload"]["data"]["eseCandidates"]["candidateId"]
            client.received[candidate] = time.perf_counter()
            arrived.put_nowait(candidate)


async def seed_source(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        return await insert_source(conn)


async def write_candidate(engine: AsyncEngine, bus: EventBus, source_pk: int, sigma: float) -> int:
    async with engine.begin() as conn:
        pk = await insert_candidate(conn, source_pk, significance=sigma, when=datetime.now(UTC))
    await ESE_CANDIDATE.publish(bus.publish, {"event": "new", "candidate_pk": pk, "source_pk": source_pk})
    return pk


async def wait_all(arrived: asyncio.Queue[int], candidate: int, n_clients: int) -> None:
    got = 0
    async with asyncio.timeout(WAIT_S):
        while got < n_clients:
            if await arrived.get() == candidate:
                got += 1


async def run_round(
    url: str,
    n_clients: int,
    n_events: int,
    engine: AsyncEngine,
    bus: EventBus,
    source_pk: int,
    server_pid: int,
) -> dict[str, float]:
    clients: list[Client] = []
    for start in range(0, n_clients, CONNECT_BATCH):
        batch = min(CONNECT_BATCH, n_clients - start)
        clients += await asyncio.gather(*(open_client(url) for _ in range(batch)))
    arrived: asyncio.Queue[int] = asyncio.Queue()
    readers = [asyncio.create_task(read(c, arrived)) for c in clients]
    try:
        # Warm-up events until every client has one: all subscriptions are live on the server.
        for _ in range(5):
            pk = await write_candidate(engine, bus, source_pk, 6.0)
            try:
                await wait_all(arrived, pk, n_clients)
                break
            except TimeoutError:
                continue
        latencies: list[float] = []
        cpu = 0.0
        for _ in range(n_events):
            await asyncio.sleep(0.05)
            before = process_cpu_s(server_pid)
            started = time.perf_counter()
            pk = await write_candidate(engine, bus, source_pk, 6.0)
            await wait_all(arrived, pk, n_clients)
            cpu += process_cpu_s(server_pid) - before
            latencies += [(c.received[pk] - started) * 1000.0 for c in clients]
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*(c.ws.close() for c in clients), return_exceptions=True)
        await asyncio.gather(*readers, return_exceptions=True)
    return {
        "p50_ms": p50(latencies),
        "p99_ms": percentile(latencies, 99),
        "cpu_s_per_event": cpu / n_events,
    }


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def write_floor_us(n_clients: int, message_bytes: int = 160, repeat: int = 20) -> float:
    """Thread CPU µs per ``socket.send`` of ``message_bytes`` to each of ``n_clients`` loopback peers."""
    with socket.create_server(("127.0.0.1", 0), backlog=n_clients) as listener:
        port = listener.getsockname()[1]
        receivers = [socket.create_connection(("127.0.0.1", port)) for _ in range(n_clients)]
        senders = [listener.accept()[0] for _ in range(n_clients)]
        try:
            for sock in senders:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio sets it
            message = b"x" * message_bytes
            spent = 0.0
            for _ in range(repeat):
                started = time.thread_time()
                for sock in senders:
                    sock.send(message)
                spent += time.thread_time() - started
                for sock in receivers:
                    sock.recv(65536)
            return spent / (repeat * n_clients) * 1e6
        finally:
            for sock in receivers + senders:
                sock.close()


async def main(events_url: str, client_counts: list[int], n_events: int) -> None:
    raise_fd_limit()
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        async with scratch_database("sqlite", root) as db_url:
            engine = create_engine(db_url)
            bus = create_event_bus(events_url, namespace=namespace)
            await bus.start()
            try:
                source_pk = await seed_source(engine)
                async with server_process(db_url, events_url, root, namespace=namespace) as (base, process):
                    ws_url = base.replace("http://", "ws://") + "/graphql"
                    results: dict[int, dict[str, float]] = {}
                    for n in client_counts:
                        results[n] = await run_round(ws_url, n, n_events, engine, bus, source_pk, process.pid)
                        print(line(f"fanout_{n}", clients=n, events=n_events, **results[n]), flush=True)
                    if len(client_counts) >= 2:
                        low, high = results[client_counts[0]], results[client_counts[-1]]
                        ratio = high["cpu_s_per_event"] / max(low["cpu_s_per_event"], 1e-9)
                        print(line("fanout_cpu_ratio", value=ratio), flush=True)
                    floor_clients = client_counts[-1]
                    print(
                        line(
                            "fanout_write_floor",
                            clients=floor_clients,
                            us_per_client=write_floor_us(floor_clients),
                        ),
                        flush=True,
                    )
            finally:
                await bus.close()
                await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events-url",
        default=os.environ.get("DSA110_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0",
        help="the event bus the server and this bench share (redis:// or postgresql://)",
    )
    parser.add_argument("--clients", default="10,1000", help="comma-separated subscriber counts, in order")
    parser.add_argument("--events", type=int, default=100, help="measured events per round")
    args = parser.parse_args()
    asyncio.run(main(args.events_url, [int(n) for n in args.clients.split(",")], args.events))
