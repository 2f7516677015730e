"""REST compat layer cost: each /api path against the same GraphQL document over HTTP, same run.

Both sides go through the whole ASGI app over HTTP (httpx ASGI transport, no network):
the compat request (parameter validation, in-process GraphQL execution, reshaping, JSON)
and a direct ``POST /graphql`` with the document and variables the compat route uses.
Requests alternate so both see the same cache and database state.

Prints one line per path: ``<path> p50_ms=<x> graphql_p50_ms=<y> ratio=<x/y>`` (target
ratio <= 1.3). Uses ``--data-dir data`` (built with the demo command if missing) or
``--database-url``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import ensure_demo, line, p50
from compat_rest import core, ese, images, sources
from compat_rest.params import parse_object
from compat_rest.routing import RestRoute
from dsa110.settings import Settings
from server.app import create_app


def _defaults(route: RestRoute) -> dict[str, Any]:
    """The validated arguments of a request that gives no parameters (documented defaults)."""
    args = {p.name: p.default for p in route.params}
    args.update(parse_object(route.body, {}))
    return args


def _route(routes: list[RestRoute], path: str, method: str) -> RestRoute:
    return next(r for r in routes if r.path == path and r.method == method)


def scenarios(settings: Settings) -> list[tuple[str, str, Any, str, dict[str, Any]]]:
    """(path, method, json body, graphql document, graphql variables) per benchmarked path."""
    search = _route(sources.routes(settings), "/sources/search", "POST")
    listing = _route(images.routes(settings), "/images", "GET")
    candidates = _route(ese.routes(settings), "/ese/candidates", "GET")
    return [
        ("/api/status", "GET", None, core.STATUS, {}),
        (
            "/api/ese/candidates",
            "GET",
            None,
            ese.CANDIDATES,
            ese.candidate_variables(settings.ese_operating_point)(_defaults(candidates)),
        ),
        ("/api/sources/search", "POST", {}, sources.SEARCH, sources.search_variables(_defaults(search))),
        ("/api/images", "GET", None, images.LIST, images.list_variables(_defaults(listing))),
    ]


async def run(settings: Settings, repeat: int) -> None:
    app = create_app(settings, migrate=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        for path, method, body, document, variables in scenarios(settings):
            compat_ms: list[float] = []
            graph_ms: list[float] = []
            payload = {"query": document, "variables": variables}
            for i in range(repeat + 5):
                start = time.perf_counter()
                response = await http.request(method, path, json=body)
                middle = time.perf_counter()
                direct = await http.post("/graphql", json=payload)
                end = time.perf_counter()
                if response.status_code != 200 or direct.status_code != 200 or "errors" in direct.json():
                    raise SystemExit(
                        f"{path}: {response.status_code} {response.text[:200]} / {direct.text[:200]}"
                    )
                if i >= 5:  # warm-up: parser and validation caches, connection pool
                    compat_ms.append((middle - start) * 1000.0)
                    graph_ms.append((end - middle) * 1000.0)
            compat, graph = p50(compat_ms), p50(graph_ms)
            print(line(path, p50_ms=compat, graphql_p50_ms=graph, ratio=compat / graph), flush=True)
    await app.state.engine.dispose()


def bench_settings(data_dir: Path, database_url: str | None) -> Settings:
    """The app's settings for a run, per-client rate limits off: a run is one anonymous client
    making ``2 x (repeat + 5)`` requests per path (1,640 in all by default), past the default 1,200
    a minute, and a refused request would end the run. The bench times execution, not the
    limiter (as ``bench.rest_floor``)."""
    return Settings.from_env(
        data_dir=data_dir,
        database_url=database_url,
        rate_limit_per_minute=0,
        anonymous_rate_limit_per_minute=0,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    data_dir = Path(args.data_dir).resolve()
    settings = bench_settings(data_dir, args.database_url)
    ensure_demo(data_dir, args.database_url)
    asyncio.run(run(settings, args.repeat))


if __name__ == "__main__":
    main()
