"""Throughput under load: 50 clients of mixed reads against 1 and N server processes, both backends.

Each scenario starts ``dsa110-graph serve --workers W`` (the real supervisor and workers)
on a demo database (500 sources, SQLite in a temp dir, or a fresh PostgreSQL database
on ``--postgres-url``), with its event bus on Redis (``--events-url``) so that 1 and N
workers differ only in N. Rate limits are off for the run: 50 clients from one address
would otherwise spend the anonymous budget of one client.

``clients`` concurrent clients, each with its own keep-alive connection, send requests
back to back for ``--seconds`` after a warm-up: a mix of what the dashboard and scripts
read (GraphQL list and detail queries with nested pages, the pipeline status, REST
paths). Latency is from send to the whole body read. The load generator runs in this
process, on the same cores as the server (the machine has few): its own CPU is part of
what limits the figures, the same for every scenario.

Prints per scenario ``load backend=.. workers=.. clients=.. rps=.. p50_ms=.. p99_ms=.. errors=..``
and per backend ``load_scaling backend=.. workers=N rps_ratio=..`` (N workers over 1).

    .venv/bin/python -m bench.load [--workers 2] [--clients 50] [--seconds 20]

``--base-url`` measures a server already running (``make run``, its settings as they are)
instead: the same mix, the clients spread over ``--addresses`` loopback addresses
(127.0.1.1 up; default one each) so that per-client limits see as many clients, and
answers counted by status: one line
``load_target label=.. clients=.. addresses=.. rps=.. ok_rps=.. p50_ms=.. p95_ms=.. p99_ms=..
max_ms=.. shed_share=.. s2xx=.. s429=.. s503=.. s504=.. other=..``, the percentiles those of
the 2xx answers, ``max_ms`` the longest answer of any status, ``shed_share`` the share
answered 503 (the server too busy to take the request: no pooled connection came free). A
client sends its next request as soon as it has an answer, refusals included (no back-off:
the offered load stays the same whatever the server answers).

    .venv/bin/python -m bench.load --base-url http://127.0.0.1:8622 --clients 256 --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import random
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import add_backend_arguments, line, p50, percentile, request_mix
from dsa110.demo.build import build_demo
from tests.live.servers import server_process

DEMO_SOURCES = 500
DEMO_DAYS = 3.0
WARMUP_S = 3.0
NO_LIMITS = {
    "DSA110_RATE_LIMIT_PER_MINUTE": "0",
    "DSA110_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "0",
    "DSA110_MAX_CONCURRENT_REQUESTS_PER_CLIENT": "0",  # 50 clients, one address
}

SOURCES = """query Sources($after: String) {
  sources(first: 20, after: $after, orderBy: ETA, direction: DESC) {
    totalCount pageInfo { endCursor }
    nodes { sourceId raDeg decDeg meanFluxJy v eta measurements(last: 5) { nodes { mjd peakFluxJy } } }
  }
}"""
SOURCE = """query Source($id: String!) {
  source(sourceId: $id) { sourceId nEpochs chi2Nu measurements(first: 50) { totalCount
    nodes { mjd peakFluxJy peakFluxErrJy image { imageId group { groupId } } } } }
}"""
STATUS = "{ pipelineStatus { queue { total pending inProgress failed completed } } }"
IMAGES = (
    "{ images(first: 20, orderBy: CREATED_AT, direction: DESC) { nodes { imageId path midMjd noiseJy } } }"
)


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0


def requests_for(source_ids: list[str]) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, JSON body) of the read mix; a client walks it from a random start."""
    graph = "/graphql"
    mix: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", graph, {"query": SOURCES}),
        ("POST", graph, {"query": STATUS}),
        ("POST", graph, {"query": IMAGES}),
        ("GET", "/api/status", None),
        ("GET", "/api/ese/candidates?limit=20", None),
        ("POST", "/api/sources/search", {"limit": 20}),
        ("GET", "/api/images?limit=20", None),
    ]
    mix += [("POST", graph, {"query": SOURCE, "variables": {"id": name}}) for name in source_ids[:5]]
    return mix


async def client(base: str, mix: list[Any], start: float, stop: float, tally: Tally, seed: int) -> None:
    order = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=httpx.Limits(max_connections=1)) as http:
        while (now := time.perf_counter()) < stop:
            method, path, body = mix[order.randrange(len(mix))]
            try:
                response = await http.request(method, path, json=body)
                failed = response.status_code != 200 or (
                    path == "/graphql" and b'"errors"' in response.content
                )
            except httpx.HTTPError:
                failed = True
            if now >= start:
                tally.latencies_ms.append((time.perf_counter() - now) * 1000.0)
                tally.errors += failed


async def source_ids(base: str) -> list[str]:
    async with httpx.AsyncClient(base_url=base) as http:
        body = (
            await http.post("/graphql", json={"query": "{ sources(first: 5) { nodes { sourceId } } }"})
        ).json()
    return [node["sourceId"] for node in body["data"]["sources"]["nodes"]]


async def scenario(
    url: str, root: Path, events_url: str, backend: str, workers: int, clients: int, seconds: float
) -> float:
    namespace = f"load{uuid.uuid4().hex[:8]}"
    async with server_process(
        url, events_url, root, workers=workers, namespace=namespace, extra_env=NO_LIMITS
    ) as (
        base,
        _,
    ):
        mix = requests_for(await source_ids(base))
        tally = Tally()
        start = time.perf_counter() + WARMUP_S
        stop = start + seconds
        await asyncio.gather(*(client(base, mix, start, stop, tally, seed=i) for i in range(clients)))
    rps = len(tally.latencies_ms) / seconds
    print(
        line(
            "load",
            backend=backend,
            workers=workers,
            clients=clients,
            rps=rps,
            p50_ms=p50(tally.latencies_ms),
            p99_ms=percentile(tally.latencies_ms, 99),
            errors=tally.errors,
        ),
        flush=True,
    )
    return rps


@dataclass
class Answers:
    """A run against a running server: 2xx latencies, every latency, counts by outcome."""

    ok_ms: list[float] = field(default_factory=list)
    all_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)

    def count(self, elapsed_ms: float, response: httpx.Response | None) -> None:
        self.all_ms.append(elapsed_ms)
        if response is None:
            outcome = "other"
        elif 200 <= response.status_code < 300:
            outcome = "s2xx"
            self.ok_ms.append(elapsed_ms)
        elif response.status_code in (429, 503, 504):
            outcome = f"s{response.status_code}"
        else:
            outcome = "other"
        self.statuses[outcome] = self.statuses.get(outcome, 0) + 1


FIRST_ADDRESS = ipaddress.IPv4Address("127.0.1.1")


async def target_client(
    base: str, address: str, mix: list[Any], seed: int, start: float, stop: float, answers: Answers
) -> None:
    def going() -> bool:
        return time.perf_counter() < stop

    async for elapsed_ms, response in request_mix(base, address, mix, seed, going):
        if time.perf_counter() - elapsed_ms / 1000.0 >= start:  # sent after the warm-up
            answers.count(elapsed_ms, response)


async def target(args: argparse.Namespace) -> None:
    """The mix against ``--base-url`` from ``--clients`` clients on ``--addresses`` addresses."""
    base = args.base_url.rstrip("/")
    addresses = args.addresses or args.clients
    mix = requests_for(await source_ids(base))
    answers = Answers()
    start = time.perf_counter() + WARMUP_S
    stop = start + args.seconds
    await asyncio.gather(
        *(
            target_client(base, str(FIRST_ADDRESS + i % addresses), mix, i, start, stop, answers)
            for i in range(args.clients)
        )
    )
    done = len(answers.all_ms)
    ok = answers.ok_ms or [float("nan")]
    figures = {name: answers.statuses.get(name, 0) for name in ("s2xx", "s429", "s503", "s504", "other")}
    print(
        line(
            "load_target",
            label=args.label,
            clients=args.clients,
            addresses=addresses,
            seconds=args.seconds,
            rps=done / args.seconds,
            ok_rps=len(answers.ok_ms) / args.seconds,
            p50_ms=p50(ok),
            p95_ms=percentile(ok, 95),
            p99_ms=percentile(ok, 99),
            max_ms=max(answers.all_ms, default=float("nan")),
            shed_share=figures["s503"] / done if done else float("nan"),
            **figures,
        ),
        flush=True,
    )


async def run(args: argparse.Namespace) -> None:
    if args.base_url:
        await target(args)
        return
    # tests.databases reads the PostgreSQL server's URL from the environment when imported.
    os.environ.setdefault("DSA110_TEST_POSTGRES_URL", args.postgres_url)
    from tests.databases import scratch_database

    backends = [b for b in args.backends.split(",") if b]
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        for backend in backends:
            root = Path(tmp) / backend
            root.mkdir()
            async with scratch_database(backend, root, migrate=False) as url:
                await build_demo(url, root, sources=args.sources, days=args.days, images=False)
                rates = {}
                for workers in sorted({1, args.workers}):
                    rates[workers] = await scenario(
                        url, root, args.events_url, backend, workers, args.clients, args.seconds
                    )
                if args.workers > 1:
                    ratio = rates[args.workers] / rates[1]
                    print(
                        line("load_scaling", backend=backend, workers=args.workers, rps_ratio=ratio),
                        flush=True,
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="N (default: the cores)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--sources", type=int, default=DEMO_SOURCES)
    parser.add_argument("--days", type=float, default=DEMO_DAYS)
    parser.add_argument("--base-url", help="measure this running server (e.g. `make run`) instead")
    parser.add_argument("--addresses", type=int, default=0, help="with --base-url: client addresses")
    parser.add_argument("--label", default="-", help="with --base-url: a name for the line")
    add_backend_arguments(parser)
    parser.add_argument(
        "--events-url", default=os.environ.get("DSA110_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
