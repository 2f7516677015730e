"""/api/observation_timeline: the database's segments against paging every group into Python.

The route used to read every group (``groups(first: 500)`` page after page: 35 pages for
the 60-day demo's 17,280 groups) and split them into segments in Python, about a second
of CPU a request; 16 at once ended in 504s. It now asks the graph's
``observationTimeline``, which the database computes in one statement. Both run in this
process against the same app and database, alternating, so they see the same caches:

* ``timeline_paged``: the former way, the same group pages through ``POST /graphql`` and
  the legacy rule in Python (``tests.compat.test_observation_timeline.legacy_timeline``);
* ``timeline_sql``: ``GET /api/observation_timeline`` as a client sends it.

The two answers are checked equal first (``same=yes``). Prints, per gap threshold, one line
each with ``p50_ms`` and ``cpu_ms`` (the process's CPU per request, median) and the
``ratio`` (paged / sql), then ``timeline_concurrent`` for ``--concurrent`` requests at once
(wall time until all are answered, and their statuses). The threshold 0 splits at every
group: one segment per group, the most a timeline returns.

    .venv/bin/python -m bench.timeline [--data-dir /tmp/tl-demo] [--database-url URL] [--repeat 10]

The demo is built in ``--data-dir`` if missing (``dsa110-graph demo``: 60 days).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench.common import ensure_demo, line, p50, process_cpu_s
from dsa110.auth.identity import Role
from dsa110.settings import Settings
from server.app import create_app
from tests.compat.test_observation_timeline import legacy_timeline
from tests.credentials import key_headers

PAGE = """
query($after: String) {
  groups(first: 500, after: $after, orderBy: GROUP_ID, direction: ASC) {
    pageInfo { hasNextPage endCursor }
    nodes { groupId midMjd presentSubbands }
  }
}
"""


async def paged(http: httpx.AsyncClient, hours: float) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        response = await http.post("/graphql", json={"query": PAGE, "variables": {"after": after}})
        connection = response.json()["data"]["groups"]
        nodes.extend(connection["nodes"])
        if not connection["pageInfo"]["hasNextPage"]:
            return legacy_timeline(nodes, hours)
        after = connection["pageInfo"]["endCursor"]


async def sql(http: httpx.AsyncClient, hours: float) -> dict[str, Any]:
    response = await http.get("/api/observation_timeline", params={"gap_threshold_hours": hours})
    if response.status_code != 200:
        raise SystemExit(f"/api/observation_timeline: {response.status_code} {response.text[:300]}")
    return response.json()  # type: ignore[no-any-return]


async def _timed(
    fetch: Callable[[httpx.AsyncClient, float], Awaitable[Any]], http: httpx.AsyncClient, hours: float
) -> tuple[float, float]:
    pid = os.getpid()
    cpu, start = process_cpu_s(pid), time.perf_counter()
    await fetch(http, hours)
    return (time.perf_counter() - start) * 1000.0, (process_cpu_s(pid) - cpu) * 1000.0


async def run(settings: Settings, repeat: int, concurrent: int) -> None:
    app = create_app(settings, migrate=False)
    headers = await key_headers(settings.resolved_database_url, Role.VIEWER)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench", headers=headers, timeout=120
    ) as http:
        for hours in (1.0, 0.0):
            old, new = await paged(http, hours), await sql(http, hours)
            same = "yes" if old == new else "no"
            took: dict[str, list[tuple[float, float]]] = {"paged": [], "sql": []}
            for _ in range(repeat):  # alternating: both see the same caches and load
                took["paged"].append(await _timed(paged, http, hours))
                took["sql"].append(await _timed(sql, http, hours))
            ms = {k: p50([t[0] for t in v]) for k, v in took.items()}
            cpu = {k: p50([t[1] for t in v]) for k, v in took.items()}
            segments = len(new["observations"])
            for kind in ("paged", "sql"):
                print(
                    line(
                        f"timeline_{kind}",
                        gap_hours=hours,
                        groups=new["unique_timestamps"],
                        segments=segments,
                        p50_ms=ms[kind],
                        cpu_ms=cpu[kind],
                        same=same,
                    ),
                    flush=True,
                )
            print(
                line("timeline_ratio", gap_hours=hours, ms_ratio=ms["paged"] / ms["sql"]),
                flush=True,
            )
        for kind, fetch in (("paged", paged), ("sql", sql)):
            start = time.perf_counter()
            answers = await asyncio.gather(
                *(fetch(http, 1.0) for _ in range(concurrent)), return_exceptions=True
            )
            wall = (time.perf_counter() - start) * 1000.0
            outcomes = Counter("ok" if isinstance(a, dict) else type(a).__name__ for a in answers)
            print(
                line(
                    "timeline_concurrent",
                    kind=kind,
                    requests=concurrent,
                    wall_ms=wall,
                    per_request_ms=wall / concurrent,
                    ok=outcomes.get("ok", 0),
                    failed=concurrent - outcomes.get("ok", 0),
                ),
                flush=True,
            )
    await app.state.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=16)
    args = parser.parse_args()
    data_dir = Path(args.data_dir).resolve()
    settings = Settings.from_env(data_dir=data_dir, database_url=args.database_url)
    ensure_demo(data_dir, args.database_url)
    asyncio.run(run(settings, args.repeat, args.concurrent))


if __name__ == "__main__":
    main()
