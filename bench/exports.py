"""Table exports: throughput against paging the same rows as GraphQL JSON, and memory per page.

Every source of a demo catalog is exported through the whole ASGI app (``/exports/sources.<fmt>``,
streamed) and, as the baseline in the same run, fetched as JSON by paging ``sources(first: 500,
after:)`` over ``POST /graphql`` (what a script does without exports). The memory line exports
all rows and a tenth of them under ``tracemalloc``: a streamed export's peak is set by its page,
not its length, so the two peaks should be alike (ratio near 1, not 10).

Prints ``export format=<f> rows=<n> ms=<x> json_paging_ms=<y> ratio=<x/y> mb=<size>`` per format
and ``export_memory format=<f> peak_all_mb=<a> peak_tenth_mb=<b> ratio=<a/b>``. Builds a demo
catalog of ``--sources`` sources (no images) in a temporary directory unless ``--data-dir`` has one.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx

from bench.common import line
from dsa110.settings import Settings
from server.app import create_app

PAGE = """query Page($after: String) { sources(first: 500, after: $after) {
  pageInfo { hasNextPage endCursor }
  nodes { sourceId raDeg decDeg catalogFluxJy nEpochs meanFluxJy minFluxJy maxFluxJy v eta chi2Nu
          sigmaDeviation vsAbsSignificantMax mAbsSignificantMax firstMjd lastMjd maxSnr newSource
          newHighSigma }
} }"""


async def json_paging(http: httpx.AsyncClient) -> int:
    rows, after = 0, None
    while True:
        page = (await http.post("/graphql", json={"query": PAGE, "variables": {"after": after}})).json()
        connection = page["data"]["sources"]
        rows += len(connection["nodes"])
        if not connection["pageInfo"]["hasNextPage"]:
            return rows
        after = connection["pageInfo"]["endCursor"]


async def export(app: Any, fmt: str, limit: int | None = None) -> int:
    """Call the ASGI app directly and drop each body chunk as it is sent (a client writing to disk).

    httpx's ASGI transport would collect the whole body before returning it, which is the
    client's memory, not the server's.
    """
    query = f"limit={limit}".encode() if limit else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/exports/sources.{fmt}",
        "raw_path": f"/exports/sources.{fmt}".encode(),
        "root_path": "",
        "query_string": query,
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }
    size, status = 0, 0
    asked = False
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if asked:  # the client stays connected: wait (a streamed response listens for disconnects)
            await never.wait()
        asked = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal size, status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))

    await app(scope, receive, send)
    if status != 200:
        raise SystemExit(f"export {fmt}: HTTP {status}")
    return size


async def run(settings: Settings) -> None:
    app = create_app(settings, migrate=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600
    ) as http:
        await export(app, "csv", 10)  # warm-up: imports, caches, connections
        for fmt in ("csv", "ecsv", "votable", "fits"):
            start = time.perf_counter()
            rows = await json_paging(http)
            middle = time.perf_counter()
            size = await export(app, fmt)
            end = time.perf_counter()
            ms, baseline = (end - middle) * 1000, (middle - start) * 1000
            print(
                line(
                    "export",
                    format=fmt,
                    rows=rows,
                    ms=ms,
                    json_paging_ms=baseline,
                    ratio=ms / baseline,
                    mb=size / 1e6,
                ),
                flush=True,
            )
            peaks = []
            for limit in (None, max(1, rows // 10)):
                tracemalloc.start()
                await export(app, fmt, limit)
                peaks.append(tracemalloc.get_traced_memory()[1] / 1e6)
                tracemalloc.stop()
            print(
                line(
                    "export_memory",
                    format=fmt,
                    peak_all_mb=peaks[0],
                    peak_tenth_mb=peaks[1],
                    ratio=peaks[0] / peaks[1],
                ),
                flush=True,
            )
    await app.state.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--sources", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(args.data_dir or scratch).resolve()
        if not (data_dir / "dsa110.sqlite3").exists():
            cli = Path(sys.executable).with_name("dsa110-graph")
            demo = [
                "demo",
                "--data-dir",
                str(data_dir),
                "--sources",
                str(args.sources),
                "--days",
                "1",
                "--no-images",
            ]
            subprocess.run([str(cli), *demo], check=True, stdout=subprocess.DEVNULL)
        settings = Settings(data_dir=data_dir, metrics_interval_s=0, webhook_poll_s=0)
        asyncio.run(run(settings))


if __name__ == "__main__":
    main()
