"""Cost analysis against a real server: the issue's costly queries are refused, and fast.

    .venv/bin/python -m bench.cost [--backends sqlite,postgresql] [--rounds 20]

On a demo of 500 sources, for each backend, a uvicorn server process is sent:

* the reproduction of issue 15 (depth 11, ``first: 500`` at four levels) and thirty
  aliases of it, ``--rounds`` times each: every answer must be ``QUERY_TOO_COSTLY``;
  prints ``cost_refused backend=.. query=.. cost=.. refused=n/n p50_ms=.. max_ms=..``;
* the same thirty-alias query from 10 clients at once while one client polls
  ``/healthz``: prints ``cost_flood backend=.. refused=.. healthz_p50_ms=.. healthz_max_ms=..``;
* the most a query may ask for today under the default limit in one nested list
  (500 sources x 500 measurements each): prints ``cost_allowed ... cost=.. ms=..``,
  what the limit lets one request cost in time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from graphql import parse

from bench.common import add_backend_arguments, line, p50
from dsa110.demo.build import build_demo
from dsa110.settings import Settings
from schema.cost import operation_cost
from schema.schema import build_schema
from tests.live.servers import server_process

DEEP = (
    "measurements(first: 500) { nodes { image { measurements(first: 500) { nodes { source {"
    " measurements(first: 500) { nodes { peakFluxJy } } } } } } } }"
)
ISSUE = f"{{ sources(first: 500) {{ nodes {{ {DEEP} }} }} }}"
THIRTY = "{ " + " ".join(f"a{i}: sources(first: 500) {{ nodes {{ {DEEP} }} }}" for i in range(30)) + " }"
ALLOWED = (
    "{ sources(first: 500) { nodes { sourceId measurements(first: 500) { nodes { mjd peakFluxJy } } } } }"
)
FLOOD_CLIENTS = 10


async def _refusals(http: httpx.AsyncClient, query: str, rounds: int) -> tuple[int, int, list[float]]:
    refused, cost, took = 0, 0, []
    for _ in range(rounds):
        start = time.perf_counter()
        response = await http.post("/graphql", json={"query": query})
        took.append((time.perf_counter() - start) * 1000.0)
        errors = response.json().get("errors") or [{}]
        extensions = errors[0].get("extensions", {})
        if extensions.get("code") == "QUERY_TOO_COSTLY":
            refused += 1
            cost = int(extensions["cost"])
    return refused, cost, took


async def _flood(base: str, rounds: int) -> tuple[int, list[float]]:
    done = asyncio.Event()
    health: list[float] = []

    async def poll() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            while not done.is_set():
                start = time.perf_counter()
                await http.get("/healthz")
                health.append((time.perf_counter() - start) * 1000.0)

    async def attacker() -> int:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            return (await _refusals(http, THIRTY, rounds))[0]

    poller = asyncio.create_task(poll())
    refused = sum(await asyncio.gather(*(attacker() for _ in range(FLOOD_CLIENTS))))
    done.set()
    await poller
    return refused, health


async def scenario(url: str, root: Path, backend: str, rounds: int) -> None:
    namespace = f"cost{uuid.uuid4().hex[:8]}"
    async with (
        server_process(url, "memory://", root, namespace=namespace) as (base, _),
        httpx.AsyncClient(base_url=base, timeout=120) as http,
    ):
        for name, query in (("depth-11", ISSUE), ("30-aliases", THIRTY)):
            refused, cost, took = await _refusals(http, query, rounds)
            print(
                line(
                    "cost_refused",
                    backend=backend,
                    query=name,
                    cost=cost,
                    refused=f"{refused}/{rounds}",
                    p50_ms=p50(took),
                    max_ms=max(took),
                ),
                flush=True,
            )
        refused, health = await _flood(base, rounds)
        print(
            line(
                "cost_flood",
                backend=backend,
                clients=FLOOD_CLIENTS,
                refused=f"{refused}/{FLOOD_CLIENTS * rounds}",
                healthz_p50_ms=p50(health),
                healthz_max_ms=max(health),
            ),
            flush=True,
        )
        start = time.perf_counter()
        allowed = await http.post("/graphql", json={"query": ALLOWED})
        allowed_ms = (time.perf_counter() - start) * 1000.0
        rows = sum(len(n["measurements"]["nodes"]) for n in allowed.json()["data"]["sources"]["nodes"])
        cost = operation_cost(build_schema(Settings())._schema, parse(ALLOWED))
        print(line("cost_allowed", backend=backend, cost=cost, rows=rows, ms=allowed_ms), flush=True)


async def run(args: argparse.Namespace) -> None:
    os.environ.setdefault("DSA110_TEST_POSTGRES_URL", args.postgres_url)
    from tests.databases import scratch_database

    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        for backend in [b for b in args.backends.split(",") if b]:
            root = Path(tmp) / backend
            root.mkdir()
            async with scratch_database(backend, root, migrate=False) as url:
                await build_demo(url, root, sources=500, days=args.days, images=False)
                await scenario(url, root, backend, args.rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_backend_arguments(parser)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--days", type=float, default=3.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
