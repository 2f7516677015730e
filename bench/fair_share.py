"""Fair share of the work in flight: one greedy WebSocket against ordinary HTTP readers.

A real ``dsa110-graph serve --workers 1`` on the demo (500 sources, 30 days: ~40,000
measurements; SQLite, built once in ``--data-dir`` and reused), run twice in one bench
run, all else equal: with the per-client share off (``DSA110_MAX_COST_IN_FLIGHT_PER_CLIENT=0``,
the baseline: the process's budget alone, as before the share) and on (its default).
The process's budget (``DSA110_MAX_COST_IN_FLIGHT``) is its default in both. Per-minute
rate limits are off: the ordinary clients' pace is the server's, not the limiter's.

* **the greedy client** (127.0.3.1, anonymous, in a process of its own: its large answers
  would otherwise slow this process's loop): ONE graphql-transport-ws WebSocket keeping
  ``--inflight`` (40) costly-but-legal queries in flight, ``sources(first: N) { nodes {
  sourceId measurements(first: M) { nodes { mjd peakFluxJy peakFluxErrJy } } } }``. A
  query answered is sent again at once; one refused with ``BUSY`` is sent again after
  the server's ``Retry-After`` (1 s), as a client that follows the protocol would.
  ``--shape fill`` (default) picks N, M (each <= 500) by the schema's own cost estimate
  so that ``--inflight`` of them come as close as possible to the process's budget: a
  client with many such queries fills what is left, the worst case for everyone else.
  ``--shape 500x500`` (any ``NxM``) asks for that size instead.
* **the ordinary clients**: ``--clients`` (10), each from its own loopback address
  (127.0.1.x), sending the mixed reads of ``bench.load`` (GraphQL pages and details, REST
  paths) back to back over HTTP keep-alive, for ``--seconds`` once the greedy client has
  been running for ``WARMUP_S``.

Prints, per run, ``fair_share share=off|on`` with the ordinary clients' requests done,
answered (200 and no error), refused ``BUSY`` (503) and their share, other errors,
p50/p99 latency of every request, and the greedy client's answered / ``BUSY`` / other
error counts in the same window (plus the 1-minute load average of the machine at the
end of the run: the clients share its cores with the server); then ``fair_share_ratio``:
the ordinary clients' answered requests with the share on over off (> 1: the share helps
them), and their p99 latency on over off.

    .venv/bin/python -m bench.fair_share [--seconds 40] [--clients 10] [--inflight 40]
        [--shape fill|NxM] [--data-dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import line, percentile, request_mix

DEMO_SOURCES = 500
DEMO_DAYS = 30.0
WARMUP_S = 3.0
MAX_FIRST = 500
GREEDY_ADDRESS = "127.0.3.1"
BUSY = "BUSY"
NO_RATE_LIMITS = {
    "DSA110_RATE_LIMIT_PER_MINUTE": "0",
    "DSA110_ANONYMOUS_RATE_LIMIT_PER_MINUTE": "0",
}
GREEDY = """query Greedy($n: Int!, $m: Int!) {
  sources(first: $n) { nodes { sourceId measurements(first: $m) { nodes { mjd peakFluxJy peakFluxErrJy } } } }
}"""


@dataclass
class Ordinary:
    latencies_ms: list[float] = field(default_factory=list)
    ok: int = 0
    busy: int = 0
    errors: int = 0


@dataclass
class Greedy:
    answered: int = 0
    busy: int = 0
    errors: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)


# -- the greedy client's query --------------------------------------------------------------


def greedy_cost(n: int, m: int) -> int:
    from graphql import parse

    from dsa110.settings import Settings
    from schema.cost import operation_cost
    from schema.schema import build_schema

    schema = _schema_cache.setdefault("schema", build_schema(Settings())._schema)
    document = _schema_cache.setdefault("document", parse(GREEDY))
    return operation_cost(schema, document, variables={"n": n, "m": m})


_schema_cache: dict[str, Any] = {}


def fill_shape(target: int) -> tuple[int, int, int]:
    """(N, M, cost): the greedy query of the largest estimated cost <= ``target``.

    The estimate is ``base + N * (per_row * M + per_source)``: fitted on four shapes,
    checked on the largest and on the one chosen.
    """
    one, n2, m2 = greedy_cost(1, 1), greedy_cost(2, 1), greedy_cost(1, 2)
    per_source_m1 = n2 - one
    per_row = greedy_cost(2, 2) - m2 - per_source_m1
    base = one - per_source_m1

    def formula(n: int, m: int) -> int:
        return base + n * (per_source_m1 + per_row * (m - 1))

    best = (0, 0, 0)
    for m in range(1, MAX_FIRST + 1):
        per_source = per_source_m1 + per_row * (m - 1)
        n = min(MAX_FIRST, (target - base) // per_source)
        if n >= 1 and (cost := formula(n, m)) > best[2]:
            best = (n, m, cost)
    n, m, cost = best
    if greedy_cost(n, m) != cost or greedy_cost(MAX_FIRST, MAX_FIRST) != formula(MAX_FIRST, MAX_FIRST):
        raise RuntimeError(f"the cost estimate is not linear in first: N={n} M={m}")
    return best


def shape_for(args: argparse.Namespace, max_cost_in_flight: int) -> tuple[int, int, int]:
    if args.shape == "fill":
        return fill_shape(max_cost_in_flight // args.inflight)
    n, m = (int(part) for part in args.shape.lower().split("x"))
    return n, m, greedy_cost(n, m)


# -- the greedy client (a process of its own) ----------------------------------------------


async def greedy_client(base: str, n: int, m: int, inflight: int, seconds: float) -> Greedy:
    """``inflight`` queries in flight on one WebSocket for ``WARMUP_S + seconds``; counts
    what is answered in the last ``seconds`` (the ordinary clients' window)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidState
    from websockets.typing import Subprotocol

    tally = Greedy()
    url = base.replace("http://", "ws://") + "/graphql"
    payload = {"query": GREEDY, "variables": {"n": n, "m": m}, "operationName": "Greedy"}
    async with connect(
        url, subprotocols=[Subprotocol("graphql-transport-ws")], max_size=None, local_addr=(GREEDY_ADDRESS, 0)
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        ack = json.loads(await ws.recv())
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack: {ack}")
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the parent's "go"
        loop = asyncio.get_running_loop()
        counting_from = loop.time() + WARMUP_S
        stop_at = counting_from + seconds
        next_id = 0
        retrying: set[asyncio.Task[None]] = set()

        async def send() -> None:
            nonlocal next_id
            next_id += 1
            await ws.send(json.dumps({"id": str(next_id), "type": "subscribe", "payload": payload}))

        async def later() -> None:
            await asyncio.sleep(1.0)  # the server's Retry-After
            with contextlib.suppress(ConnectionClosed, InvalidState):  # the run ended meanwhile
                await send()

        for _ in range(inflight):
            await send()
        while (now := loop.time()) < stop_at:
            try:
                async with asyncio.timeout(stop_at - now):
                    message = json.loads(await ws.recv())
            except TimeoutError:
                break
            kind = message.get("type")
            counting = loop.time() >= counting_from
            if kind == "next":
                errors = (message.get("payload") or {}).get("errors")
                if counting:
                    if errors:
                        tally.errors += 1
                        _count_codes(tally, errors)
                    else:
                        tally.answered += 1
            elif kind == "complete":
                await send()
            elif kind == "error":
                codes = _codes(message.get("payload") or [])
                if counting:
                    if codes == [BUSY]:
                        tally.busy += 1
                    else:
                        tally.errors += 1
                        _count_codes(tally, message.get("payload") or [])
                if codes == [BUSY]:
                    task = asyncio.create_task(later())
                    retrying.add(task)
                    task.add_done_callback(retrying.discard)
                else:
                    await send()
            elif kind == "ping":
                await ws.send(json.dumps({"type": "pong"}))
        for task in list(retrying):
            task.cancel()
    return tally


def _codes(errors: list[Any]) -> list[str]:
    return sorted({str((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)})


def _count_codes(tally: Greedy, errors: list[Any]) -> None:
    for code in _codes(errors):
        tally.error_codes[code] = tally.error_codes.get(code, 0) + 1


# -- the ordinary clients -------------------------------------------------------------------


async def ordinary_client(
    base: str, address: str, mix: list[Any], stop_at: float, tally: Ordinary, seed: int
) -> None:
    def going() -> bool:
        return time.perf_counter() < stop_at

    async for elapsed_ms, response in request_mix(base, address, mix, seed, going):
        tally.latencies_ms.append(elapsed_ms)
        if response is None:
            tally.errors += 1
        elif response.status_code == 503 and BUSY.encode() in response.content:
            tally.busy += 1
        elif response.status_code != 200 or b'"errors"' in response.content:
            tally.errors += 1
        else:
            tally.ok += 1


# -- a run ----------------------------------------------------------------------------------


async def scenario(
    url: str, root: Path, share: bool, n: int, m: int, args: argparse.Namespace
) -> tuple[Ordinary, Greedy, float]:
    from bench.load import requests_for, source_ids
    from tests.live.servers import server_process

    env = dict(NO_RATE_LIMITS)
    if not share:
        env["DSA110_MAX_COST_IN_FLIGHT_PER_CLIENT"] = "0"
    async with server_process(url, "memory://", root, workers=1, extra_env=env) as (base, _):
        mix = requests_for(await source_ids(base))
        argv = [sys.executable, "-m", "bench.fair_share", "--part", "greedy", "--base", base]
        argv += [
            "--n",
            str(n),
            "--m",
            str(m),
            "--inflight",
            str(args.inflight),
            "--seconds",
            str(args.seconds),
        ]
        child = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert child.stdin is not None and child.stdout is not None
            if (await child.stdout.readline()).strip() != b"ready":
                raise RuntimeError("the greedy client failed to start")
            child.stdin.write(b"go\n")
            await child.stdin.drain()
            await asyncio.sleep(WARMUP_S)
            ordinary = Ordinary()
            stop_at = time.perf_counter() + args.seconds
            await asyncio.gather(
                *(
                    ordinary_client(base, f"127.0.1.{i + 1}", mix, stop_at, ordinary, seed=i)
                    for i in range(args.clients)
                )
            )
            out, _ = await child.communicate()
            greedy = Greedy(**json.loads(out.decode().strip().splitlines()[-1]))
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
    return ordinary, greedy, os.getloadavg()[0]


def _p(samples: list[float], q: float) -> float:
    return percentile(samples, q) if samples else float("nan")


def report(share: str, cost: int, ordinary: Ordinary, greedy: Greedy, load: float, seconds: float) -> None:
    done = len(ordinary.latencies_ms)
    codes = ",".join(f"{code}:{count}" for code, count in sorted(greedy.error_codes.items())) or "none"
    print(
        line(
            "fair_share",
            share=share,
            greedy_cost=cost,
            ordinary_done=done,
            ordinary_ok=ordinary.ok,
            ordinary_ok_rps=ordinary.ok / seconds,
            ordinary_busy=ordinary.busy,
            ordinary_busy_share=ordinary.busy / done if done else float("nan"),
            ordinary_errors=ordinary.errors,
            ordinary_p50_ms=_p(ordinary.latencies_ms, 50),
            ordinary_p99_ms=_p(ordinary.latencies_ms, 99),
            greedy_answered=greedy.answered,
            greedy_busy=greedy.busy,
            greedy_errors=greedy.errors,
            greedy_error_codes=codes,
            load1=load,
        ),
        flush=True,
    )


async def run(args: argparse.Namespace) -> None:
    if args.part == "greedy":
        tally = await greedy_client(args.base, args.n, args.m, args.inflight, args.seconds)
        print(json.dumps(dataclasses.asdict(tally)), flush=True)
        return
    from dsa110.demo.build import build_demo
    from dsa110.settings import Settings

    budget = Settings().max_cost_in_flight  # the server's default, as it runs here
    n, m, cost = shape_for(args, budget)
    print(
        line(
            "fair_share_setup",
            greedy_first=f"{n}x{m}",
            greedy_cost=cost,
            inflight=args.inflight,
            greedy_total=cost * args.inflight,
            max_cost_in_flight=budget,
            share_default=Settings().max_cost_in_flight_per_client,
            clients=args.clients,
            seconds=args.seconds,
        ),
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-fair-share-") as tmp:
        root: Path = args.data_dir or Path(tmp)
        url = f"sqlite+aiosqlite:///{root / 'dsa110.sqlite3'}"
        if not (root / "dsa110.sqlite3").exists():
            await build_demo(url, root, sources=args.sources, days=args.days, images=False)
        results = {}
        for share in (False, True):
            ordinary, greedy, load = await scenario(url, root, share, n, m, args)
            name = "on" if share else "off"
            report(name, cost, ordinary, greedy, load, args.seconds)
            results[name] = ordinary
    off, on = results["off"], results["on"]
    print(
        line(
            "fair_share_ratio",
            ordinary_ok_on_over_off=on.ok / off.ok if off.ok else float("inf"),
            ordinary_p99_on_over_off=_p(on.latencies_ms, 99) / _p(off.latencies_ms, 99),
        ),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=40.0, help="measured time per run")
    parser.add_argument("--clients", type=int, default=10, help="ordinary clients, one loopback address each")
    parser.add_argument("--inflight", type=int, default=40, help="the greedy client's queries in flight")
    parser.add_argument(
        "--shape", default="fill", help="fill, or NxM: sources(first: N) ... measurements(first: M)"
    )
    parser.add_argument("--sources", type=int, default=DEMO_SOURCES)
    parser.add_argument("--days", type=float, default=DEMO_DAYS)
    parser.add_argument("--data-dir", help="reuse (or build once) the demo in this directory")
    parser.add_argument("--part", choices=("greedy",), help=argparse.SUPPRESS)  # the greedy client's process
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--m", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data_dir:
        args.data_dir = Path(args.data_dir).resolve()
        args.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
