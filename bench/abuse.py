"""Abuse, all at once: a costly query, a half-sent-header flood and 50 readers against one server.

A real ``dsa110-graph serve`` (one process, default settings) on the demo (500 sources,
30 days: ~40,000 measurements; SQLite in a temp dir, or a fresh PostgreSQL database with
``--postgres URL``). For ``--seconds``, together:

* **the costly query**: 30 aliases of issue 15's depth-11 query, ``sources(first: 500) {
  nodes { measurements(first: 500) { nodes { image { measurements(first: 500) { nodes {
  source { measurements(first: 500) ...`` - legal under every static limit (depth, aliases,
  tokens, page size). Sent once, two seconds in; *refused* when the answer is an error
  with code ``QUERY_TOO_COSTLY`` (cost analysis before execution). Otherwise the client
  gives up after ``--costly-timeout`` and goes away;
* **the flood**: two clients (127.0.2.1 and 127.0.2.2) each keep up to ``--flood``/2
  connections open with half-sent request headers, reopening any the server closes, at
  most ``--flood-rate`` new connections per second each (bounded, loopback only);
* **the readers**: 50 clients, each from its own loopback address (as 50 users would be),
  sending the mixed reads of ``bench.load`` back to back on keep-alive connections;
* **the probe**: a fresh connection to ``/healthz`` every 100 ms from 127.0.0.1, as a
  load balancer would; a probe unanswered after 10 s counts as 10 s.

The probe, the flood and the readers each run in a process of their own, as on three
machines (one busy event loop would otherwise delay another part's timings); they start
together once all are up. This process sends the costly query and samples the server's
open file descriptors from ``/proc/<pid>/fd`` every 50 ms. All share the machine's cores
with the server: ``abuse_detail`` gives the CPU seconds each side used in the run.
Prints ``abuse costly_refused=.. healthz_p99_ms=.. fd_peak=.. errors_5xx=.. backend=..``
(``errors_5xx`` counts every 5xx any client saw, probes included, and probes that got no
answer at all) and ``abuse_detail ...`` with the parts: reads done and their p99, what
became of the flood's connections, the costly query's status and time. Targets (issue
15): the costly query refused before execution, ``/healthz`` p99 <= 500 ms throughout, no 5xx.

    .venv/bin/python -m bench.abuse [--seconds 30] [--postgres postgresql+asyncpg://...] [--data-dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import line, percentile, request_mix
from bench.load import requests_for, source_ids

DEMO_SOURCES = 500
DEMO_DAYS = 30.0
ALIASES = 30
PROBE_EVERY_S = 0.1
PROBE_TIMEOUT_S = 10.0
FD_EVERY_S = 0.05
COSTLY_AFTER_S = 2.0
FLOOD_CONNECTORS = 32
COSTLY_CODE = "QUERY_TOO_COSTLY"
PROBE_ADDRESS = "127.0.0.1"
FLOOD_ADDRESSES = ("127.0.2.1", "127.0.2.2")
COSTLY_ADDRESS = "127.0.3.1"
HALF_SENT = b"GET /graphql HTTP/1.1\r\nHost: bench\r\nUser-Agent: abuse\r\nX-Never-Ends: "


def deep_query(alias: str) -> str:
    """Issue 15's query: depth 11, four nested pages of 500."""
    leaf = "measurements(first: 500) { nodes { peakFluxJy } }"
    inner = f"measurements(first: 500) {{ nodes {{ source {{ {leaf} }} }} }}"
    middle = f"measurements(first: 500) {{ nodes {{ image {{ {inner} }} }} }}"
    return f"{alias}: sources(first: 500) {{ nodes {{ {middle} }} }}"


def costly_document(aliases: int = ALIASES) -> str:
    return "{ " + " ".join(deep_query(f"a{i}") for i in range(aliases)) + " }"


@dataclass
class Tally:
    healthz_ms: list[float] = field(default_factory=list)
    healthz_unanswered: int = 0
    healthz_connect_ms: list[float] = field(default_factory=list)
    """Time to a completed TCP handshake alone: long when the accept queue overflows."""
    fd_samples: list[int] = field(default_factory=list)
    errors_5xx: int = 0
    reads_ms: list[float] = field(default_factory=list)
    read_errors: int = 0
    flood_opened: int = 0
    flood_refused: int = 0
    """Flood connections answered 503 (a connection cap)."""
    flood_timed_out: int = 0
    """Flood connections answered 408 (the header deadline)."""
    flood_closed_silently: int = 0
    flood_connect_failures: int = 0
    costly_refused: int = 0
    costly_status: str = "unsent"
    costly_ms: float = 0.0
    server_cpu_s: float = 0.0
    bench_cpu_s: float = 0.0
    """This process's own CPU (the clients run on the same cores as the server)."""

    def merge(self, other: Tally) -> None:
        """Add ``other``'s counts and samples (a client process's) to these."""
        for name, mine in vars(self).items():
            theirs = getattr(other, name)
            if isinstance(mine, list | int | float) and not isinstance(mine, bool):
                setattr(self, name, mine + theirs)

    def status(self, code: int) -> None:
        if code >= 500:
            self.errors_5xx += 1


# -- the parts ------------------------------------------------------------------------------


async def probe_healthz(port: int, tally: Tally) -> None:
    start = time.perf_counter()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(PROBE_ADDRESS, 0))
            tally.healthz_connect_ms.append((time.perf_counter() - start) * 1000.0)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            answer = await reader.read()
        tally.healthz_ms.append((time.perf_counter() - start) * 1000.0)
        status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 599
        tally.status(status)
    except (TimeoutError, OSError, ValueError):
        tally.healthz_ms.append((time.perf_counter() - start) * 1000.0)
        tally.healthz_unanswered += 1
        tally.errors_5xx += 1  # a health check that gets no answer is the worst outcome
    finally:
        if writer is not None:
            writer.close()


async def probes(port: int, stop: asyncio.Event, tally: Tally) -> None:
    """A probe every ``PROBE_EVERY_S`` whether or not the last has answered."""
    running: set[asyncio.Task[None]] = set()
    while not stop.is_set():
        task = asyncio.create_task(probe_healthz(port, tally))
        running.add(task)
        task.add_done_callback(running.discard)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROBE_EVERY_S)
    await asyncio.gather(*running)  # each ends within its own timeout


async def sample_fds(pid: int, stop: asyncio.Event, tally: Tally) -> None:
    fd_dir = Path(f"/proc/{pid}/fd")
    while not stop.is_set():
        with contextlib.suppress(OSError):
            tally.fd_samples.append(len(os.listdir(fd_dir)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), FD_EVERY_S)


class _HalfSent(asyncio.Protocol):
    """One flood connection: a request line and headers that never end."""

    def __init__(self, on_lost: Callable[[_HalfSent], None]) -> None:
        self.on_lost = on_lost
        self.first = b""
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(HALF_SENT)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.first:
            self.first = data

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_lost(self)


async def flood(port: int, source: str, hold: int, rate: float, stop: asyncio.Event, tally: Tally) -> None:
    """Keep up to ``hold`` half-sent requests open from ``source``, reopening what the server closes.

    ``FLOOD_CONNECTORS`` connects in flight at once (a connect to a stalled server waits
    for SYN retransmits), new connections paced to ``rate`` per second.
    """
    loop = asyncio.get_running_loop()
    room = asyncio.Semaphore(hold)
    live: set[_HalfSent] = set()
    pace = {"next_at": loop.time()}

    def lost(connection: _HalfSent) -> None:
        room.release()
        live.discard(connection)
        if stop.is_set():
            return  # closed by us at the end
        first = connection.first
        if first.startswith(b"HTTP/1.1 503"):
            tally.flood_refused += 1
        elif first.startswith(b"HTTP/1.1 408"):
            tally.flood_timed_out += 1
        else:
            tally.flood_closed_silently += 1

    async def connector() -> None:
        while not stop.is_set():
            await room.acquire()
            pace["next_at"] = max(pace["next_at"] + 1.0 / rate, loop.time())
            await asyncio.sleep(pace["next_at"] - loop.time())
            try:
                _, connection = await loop.create_connection(
                    lambda: _HalfSent(lost), "127.0.0.1", port, local_addr=(source, 0)
                )
            except OSError:
                room.release()
                tally.flood_connect_failures += 1
                await asyncio.sleep(0.01)
                continue
            tally.flood_opened += 1
            if connection.transport is not None and not connection.transport.is_closing():
                live.add(connection)

    connectors = [asyncio.create_task(connector()) for _ in range(FLOOD_CONNECTORS)]
    try:
        await stop.wait()
    finally:
        for task in connectors:
            task.cancel()
        await asyncio.gather(*connectors, return_exceptions=True)
        for held in list(live):
            if held.transport is not None:
                held.transport.close()


async def reader(
    base: str, address: str, mix: list[Any], stop: asyncio.Event, tally: Tally, seed: int
) -> None:
    async for elapsed_ms, response in request_mix(base, address, mix, seed, lambda: not stop.is_set()):
        if response is None:
            tally.read_errors += 1
            continue
        tally.reads_ms.append(elapsed_ms)
        tally.status(response.status_code)
        if response.status_code != 200 or b'"errors"' in response.content:
            tally.read_errors += 1


async def costly(base: str, timeout_s: float, tally: Tally) -> None:
    await asyncio.sleep(COSTLY_AFTER_S)
    transport = httpx.AsyncHTTPTransport(local_address=COSTLY_ADDRESS)
    start = time.perf_counter()
    tally.costly_status = "no-answer"  # until one comes (or the run ends first)
    async with httpx.AsyncClient(base_url=base, transport=transport, timeout=timeout_s) as http:
        try:
            response = await http.post("/graphql", json={"query": costly_document()})
        except httpx.TimeoutException:
            tally.costly_status = "gave-up"  # the client goes away; the server may work on
            tally.costly_ms = (time.perf_counter() - start) * 1000.0
            return
        except httpx.HTTPError as exc:
            tally.costly_status = type(exc).__name__
            tally.costly_ms = (time.perf_counter() - start) * 1000.0
            return
    tally.costly_ms = (time.perf_counter() - start) * 1000.0
    tally.status(response.status_code)
    codes = _error_codes(response)
    tally.costly_status = f"{response.status_code}:{','.join(codes) or 'ok'}"
    tally.costly_refused = int(COSTLY_CODE in codes)


def _error_codes(response: httpx.Response) -> list[str]:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return ["not-json"]
    return sorted({str((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)})


# -- the run --------------------------------------------------------------------------------


PARTS = ("probe", "flood", "read")


def cpu_s(pid: int) -> float:
    """CPU seconds of process ``pid``, its ended threads included (the SQLite driver's threads
    come and go with pooled connections; ``bench.common.process_cpu_s`` sums live ones only)."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def run_part(part: str, args: argparse.Namespace) -> Tally:
    """One group of clients, in a process of its own (``--part``): ready, then ``--seconds`` on "go"."""
    tally = Tally()
    stop = asyncio.Event()
    port = int(args.base.rsplit(":", 1)[1])
    if part == "probe":
        tasks = [probes(port, stop, tally)]
    elif part == "flood":
        tasks = [flood(port, a, args.flood // 2, args.flood_rate, stop, tally) for a in FLOOD_ADDRESSES]
    else:
        mix = requests_for(await source_ids(args.base))
        tasks = [reader(args.base, f"127.0.1.{i + 1}", mix, stop, tally, seed=i) for i in range(args.clients)]
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # the parent's "go"
    if part == "probe":
        # The probe stands for a health checker on another machine: a pause of its own collector
        # (seen at 0.5 s on a loaded machine) would be counted as the server's latency.
        gc.collect()
        gc.freeze()
        gc.disable()
    running = [asyncio.create_task(task) for task in tasks]
    await asyncio.sleep(args.seconds)
    stop.set()
    await asyncio.gather(*running)
    return tally


async def attack(base: str, pid: int, args: argparse.Namespace) -> Tally:
    """The clients in three processes (as on three machines: none slows another's loop), the
    costly query and the descriptor sampling here; all start together once every process is up."""
    tally = Tally()
    stop = asyncio.Event()
    common = ["--base", base, "--seconds", str(args.seconds), "--clients", str(args.clients)]
    common += ["--flood", str(args.flood), "--flood-rate", str(args.flood_rate)]
    children = []
    for part in PARTS:
        if part == "flood" and args.flood <= 0:
            continue
        child = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bench.abuse", "--part", part, *common),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        children.append(child)
    for child in children:
        assert child.stdout is not None
        if (await child.stdout.readline()).strip() != b"ready":
            raise RuntimeError("a client process failed to start")
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        await child.stdin.drain()
    sampler = asyncio.create_task(sample_fds(pid, stop, tally))
    costly_task = asyncio.create_task(costly(base, args.costly_timeout, tally)) if args.costly else None
    cpu_before = cpu_s(pid), sum(cpu_s(c.pid) for c in children)
    await asyncio.sleep(args.seconds)
    tally.server_cpu_s = cpu_s(pid) - cpu_before[0]
    tally.bench_cpu_s = sum(cpu_s(c.pid) for c in children) - cpu_before[1]
    for child in children:
        out, _ = await child.communicate()
        tally.merge(Tally(**json.loads(out.decode().strip().splitlines()[-1])))
    stop.set()
    await sampler
    if costly_task is not None:
        costly_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await costly_task
    return tally


def _p(samples: list[float], q: float) -> float:
    return percentile(samples, q) if samples else float("nan")


def report(tally: Tally, backend: str, seconds: float) -> None:
    print(
        line(
            "abuse",
            costly_refused=tally.costly_refused,
            healthz_p99_ms=percentile(tally.healthz_ms, 99) if tally.healthz_ms else float("nan"),
            fd_peak=max(tally.fd_samples, default=0),
            errors_5xx=tally.errors_5xx,
            backend=backend,
        ),
        flush=True,
    )
    print(
        line(
            "abuse_detail",
            backend=backend,
            costly_status=tally.costly_status,
            costly_ms=tally.costly_ms,
            healthz_probes=len(tally.healthz_ms),
            healthz_p50_ms=percentile(tally.healthz_ms, 50) if tally.healthz_ms else float("nan"),
            healthz_unanswered=tally.healthz_unanswered,
            healthz_connect_p99_ms=_p(tally.healthz_connect_ms, 99),
            reads=len(tally.reads_ms),
            reads_rps=len(tally.reads_ms) / seconds,
            reads_p99_ms=percentile(tally.reads_ms, 99) if tally.reads_ms else float("nan"),
            read_errors=tally.read_errors,
            flood_opened=tally.flood_opened,
            flood_503=tally.flood_refused,
            flood_408=tally.flood_timed_out,
            flood_closed=tally.flood_closed_silently,
            flood_connect_failed=tally.flood_connect_failures,
            fd_first=tally.fd_samples[0] if tally.fd_samples else 0,
            server_cpu_s=tally.server_cpu_s,
            bench_cpu_s=tally.bench_cpu_s,
        ),
        flush=True,
    )


@contextlib.asynccontextmanager
async def demo_database(args: argparse.Namespace, tmp: Path) -> AsyncIterator[tuple[str, str, Path]]:
    """(backend, database URL, data dir) holding the demo."""
    from dsa110.demo.build import build_demo

    if args.postgres:
        # tests.databases reads the PostgreSQL server's URL from the environment when imported.
        os.environ["DSA110_TEST_POSTGRES_URL"] = args.postgres
        from tests.databases import scratch_database

        async with scratch_database("postgresql", tmp, migrate=False) as url:
            await build_demo(url, tmp, sources=args.sources, days=args.days, images=False)
            yield "postgresql", url, tmp
        return
    root: Path = args.data_dir or tmp  # made in main()
    url = f"sqlite+aiosqlite:///{root / 'dsa110.sqlite3'}"
    if not args.demo_exists:
        await build_demo(url, root, sources=args.sources, days=args.days, images=False)
    yield "sqlite", url, root


def raise_open_files_limit() -> None:
    """The flood needs a descriptor per connection in this process too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def run(args: argparse.Namespace) -> None:
    raise_open_files_limit()
    if args.part:
        print(json.dumps(dataclasses.asdict(await run_part(args.part, args))), flush=True)
        return
    from tests.live.servers import server_process

    with tempfile.TemporaryDirectory(prefix="bench-abuse-") as tmp:
        async with (
            demo_database(args, Path(tmp)) as (backend, url, root),
            server_process(url, "memory://", root, workers=1) as (base, process),
        ):
            tally = await attack(base, process.pid, args)
    report(tally, backend, args.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=50, help="readers, one loopback address each")
    parser.add_argument("--flood", type=int, default=10_000, help="half-sent connections held in all")
    parser.add_argument("--flood-rate", type=float, default=1000.0, help="new connections/s per flooder")
    parser.add_argument("--costly-timeout", type=float, default=None, help="default: the rest of the run")
    parser.add_argument(
        "--no-costly", dest="costly", action="store_false", help="leave the costly query out (diagnosis)"
    )
    parser.add_argument("--sources", type=int, default=DEMO_SOURCES)
    parser.add_argument("--days", type=float, default=DEMO_DAYS)
    parser.add_argument("--postgres", help="a PostgreSQL server URL: run on a fresh database there")
    parser.add_argument("--data-dir", help="SQLite: reuse (or build once) the demo in this directory")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # a client process
    parser.add_argument("--base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data_dir:
        args.data_dir = Path(args.data_dir).resolve()
        args.data_dir.mkdir(parents=True, exist_ok=True)
    args.demo_exists = bool(args.data_dir) and (args.data_dir / "dsa110.sqlite3").exists()
    if args.costly_timeout is None:
        args.costly_timeout = max(1.0, args.seconds - COSTLY_AFTER_S - 1.0)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
