"""Shared bench helpers: timing loops and the ``name key=value`` output format."""

from __future__ import annotations

import argparse
import functools
import os
import random
import ssl
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx


async def time_async(func: Callable[[], Awaitable[Any]], repeat: int, warmup: int = 2) -> list[float]:
    """Wall-clock milliseconds of ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        await func()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await func()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[index]


def line(name: str, **figures: Any) -> str:
    """One parseable result line: ``name key=value ...`` (floats to 3 significant places)."""
    parts = [name]
    for key, value in figures.items():
        parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by every thread of process ``pid``.

    From the scheduler's nanosecond run time (``/proc/<pid>/task/*/schedstat``): the
    usual tick-based figure (``/proc/<pid>/stat``, psutil) moves in 10 ms steps, as
    coarse as a whole small event. Falls back to psutil where there is no procfs.
    """
    tasks = Path(f"/proc/{pid}/task")
    if tasks.is_dir():
        total_ns = 0
        for task in tasks.iterdir():
            try:
                total_ns += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # a thread that ended between listing and reading
        return total_ns / 1e9
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def ensure_demo(data_dir: Path, database_url: str | None) -> None:
    """Build the demo data in ``data_dir`` (``dsa110-graph demo``) unless a database URL is
    given or the directory already holds one: what the HTTP benches measure against."""
    import subprocess
    import sys

    if database_url is None and not (data_dir / "dsa110.sqlite3").exists():
        cli = Path(sys.executable).with_name("dsa110-graph")
        subprocess.run([str(cli), "demo", "--data-dir", str(data_dir)], check=True)


DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backends`` (both by default) and ``--postgres-url`` (the tests' database, as
    ``DSA110_TEST_POSTGRES_URL`` names it, else the local one)."""
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("DSA110_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


async def request_mix(
    base: str, address: str, mix: list[Any], seed: int, going: Callable[[], bool]
) -> AsyncIterator[tuple[float, httpx.Response | None]]:
    """One ordinary client: requests drawn from ``mix`` (``(method, path, json body)``) one
    after another from ``address`` while ``going()``; yields each one's milliseconds and
    its response (None when the request failed at the transport)."""
    order = random.Random(seed)
    # One TLS context for every client: httpx builds one per client otherwise (the CA bundle
    # loaded each time, ~40 ms on a busy machine), and 256 clients stalled the load
    # generator's loop for ~11 s at start, inside the measured window.
    transport = httpx.AsyncHTTPTransport(local_address=address, verify=_tls_context())
    async with httpx.AsyncClient(base_url=base, transport=transport, timeout=60.0) as http:
        while going():
            method, path, body = mix[order.randrange(len(mix))]
            start = time.perf_counter()
            try:
                response: httpx.Response | None = await http.request(method, path, json=body)
            except httpx.HTTPError:
                response = None
            yield (time.perf_counter() - start) * 1000.0, response
