"""Cost at scale: the same requests against the default demo and a 10^5-source data set.

Builds (or reuses, cached under ``--data-dir``) two data sets with the demo command: the
default demo (``<data-dir>/small``) and ``demo --large`` (``<data-dir>/large``: 10^5
sources, ~10^7 measurements, no images). Both are served in this process (two apps, httpx
ASGI transport, no network) and every request goes to both in alternation, so both see the
same machine load. Requests: issue 11's table (a filtered count, a light curve through the
graph and through REST, a 1-degree cone, a nested query) plus the REST dashboard paths.

Prints one line per request ``scale <name> small_p50_ms=.. large_p50_ms=.. ratio=..
rows_small=.. rows_large=..`` (target ratio <= 2 where the rows do not grow). With
``--postgres-url``, each data set is also built with the demo command into a PostgreSQL
database (``dsa110_scale_small`` / ``dsa110_scale_large``, reused when present) and each
request is also timed there, interleaved with SQLite on the same data:
``scale-pg <name> sqlite_p50_ms=.. postgresql_p50_ms=.. ratio=..`` per data set (target <= 1.2).

    .venv/bin/python -m bench.scale [--data-dir bench-data] [--repeat 30]
        [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres] [--sets small,large]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench.common import line, p50
from dsa110.db.engine import create_engine
from dsa110.db.migrate import upgrade
from dsa110.db.stats import analyze
from dsa110.demo.build import TRUTH_FILE
from dsa110.demo.cli import floor_to_cadence
from dsa110.settings import Settings
from server.app import create_app


@dataclass(frozen=True)
class Request:
    name: str
    method: str
    path: str
    body: Any = None
    grows: bool = False  # the answer itself grows with the data set


def requests(source_id: str, ra: float, dec: float) -> list[Request]:
    def gql(name: str, query: str, grows: bool = False) -> Request:
        return Request(name, "POST", "/graphql", {"query": query}, grows)

    return [
        gql(
            "count_eta_nepochs", "{ sources(filter: {nEpochsMin: 10, etaMin: 1}) { totalCount } }", grows=True
        ),
        gql(
            "lightcurve_graph",
            f'{{ source(sourceId: "{source_id}") '
            "{ lightCurve { points { mjd fluxJy normFluxJy } } } }",
        ),
        Request("lightcurve_rest", "GET", f"/api/sources/{source_id}/lightcurve"),
        gql(
            "cone_1deg",
            f"{{ sources(first: 500, filter: {{cone: {{raDeg: {ra}, decDeg: {dec}, radiusArcsec: 3600}}}}) "
            "{ totalCount nodes { sourceId } } }",
            grows=True,
        ),
        gql(
            "nested",
            "{ sources(first: 20, orderBy: ETA, direction: DESC) { nodes { sourceId eta "
            "measurements(first: 5) { nodes { mjd peakFluxJy } } } } }",
        ),
        Request("rest_status", "GET", "/api/status"),
        Request("rest_health", "GET", "/api/health"),
        Request("rest_ese_candidates", "GET", "/api/ese/candidates"),
        Request("rest_sources_search", "POST", "/api/sources/search", {}),
        Request("rest_images", "GET", "/api/images"),
        Request("rest_products", "GET", "/api/products"),
    ]


def _rows(value: Any) -> int:
    """The size of an answer: the longest list in it, or a totalCount when there is none."""
    best = 0
    stack = [value]
    total = None
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            best = max(best, len(item))
            stack.extend(item)
        elif isinstance(item, dict):
            if isinstance(item.get("totalCount"), int) and total is None:
                total = item["totalCount"]
            stack.extend(item.values())
    return best if best else (total or 0)


def _build(
    data_dir: Path, large: bool, end: str, database_url: str | None = None, force: bool = False
) -> None:
    cli = Path(sys.executable).with_name("dsa110-graph")
    cmd = [str(cli), "demo", "--data-dir", str(data_dir), "--end", end]
    if large:
        cmd.append("--large")
    if database_url:
        cmd += ["--database-url", database_url]
    if force:
        cmd.append("--force")
    began = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(
        f"# built {'large' if large else 'default'} demo in {time.perf_counter() - began:.0f} s", flush=True
    )


def _built_end(data_dir: Path) -> str | None:
    """The ``end`` a demo in ``data_dir`` was built with (its truth file), if there is one."""
    try:
        return str(json.loads((data_dir / TRUTH_FILE).read_text())["end"])
    except (OSError, ValueError, KeyError):
        return None


async def _postgres_database(admin_url: str, name: str) -> tuple[str, bool]:
    """URL of database ``name`` (created when missing) and whether it already holds sources."""
    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    conn = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        filled = bool(await conn.fetchval("SELECT to_regclass('sources') IS NOT NULL")) and bool(
            await conn.fetchval("SELECT count(*) > 0 FROM sources")
        )
    finally:
        await conn.close()
    return url, filled


async def _probe(http: httpx.AsyncClient) -> tuple[str, float, float]:
    """A well-measured source to ask for (the brightest with the most epochs)."""
    q = "{ sources(first: 1, orderBy: N_EPOCHS, direction: DESC) { nodes { sourceId raDeg decDeg } } }"
    node = (await http.post("/graphql", json={"query": q})).json()["data"]["sources"]["nodes"][0]
    return node["sourceId"], node["raDeg"], node["decDeg"]


async def _time(http: httpx.AsyncClient, req: Request) -> tuple[float, Any]:
    start = time.perf_counter()
    response = await http.request(req.method, req.path, json=req.body)
    elapsed = (time.perf_counter() - start) * 1000.0
    if response.status_code != 200:
        raise SystemExit(f"{req.name} {req.path}: {response.status_code} {response.text[:300]}")
    body = response.json()
    if isinstance(body, dict) and body.get("errors"):
        raise SystemExit(f"{req.name}: {body['errors']}")
    return elapsed, body


async def compare(
    label: str, clients: dict[str, httpx.AsyncClient], reqs: dict[str, list[Request]], repeat: int
) -> dict[str, dict[str, tuple[float, int]]]:
    """Interleave every request over ``clients``; p50 and answer size per (request, client)."""
    out: dict[str, dict[str, tuple[float, int]]] = {}
    names = [r.name for r in next(iter(reqs.values()))]
    for index, name in enumerate(names):
        samples: dict[str, list[float]] = {k: [] for k in clients}
        rows: dict[str, int] = {}
        for i in range(repeat + 3):
            for key, http in clients.items():
                ms, body = await _time(http, reqs[key][index])
                if i >= 3:
                    samples[key].append(ms)
                rows[key] = _rows(body)
        out[name] = {k: (p50(v), rows[k]) for k, v in samples.items()}
    return out


async def run(args: argparse.Namespace, root: Path) -> None:
    sets = [s for s in args.sets.split(",") if s]
    urls: dict[str, str] = {}
    # Every copy of a data set is built with one time origin: the demo's sky is fixed by the
    # seed, but its pointings follow the sidereal time of ``end`` (default: now), so copies
    # built minutes apart differ by tens of measurements out of 10^7.
    for name in sets:
        data_dir = root / name
        end = _built_end(data_dir) or floor_to_cadence(datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if not (data_dir / "dsa110.sqlite3").exists():
            _build(data_dir, large=name == "large", end=end)
        urls[f"sqlite-{name}"] = f"sqlite+aiosqlite:///{data_dir / 'dsa110.sqlite3'}"
        if args.postgres_url:
            url, filled = await _postgres_database(args.postgres_url, f"dsa110_scale_{name}")
            pg_dir = root / f"pg-{name}"
            if not filled or _built_end(pg_dir) != end:
                _build(pg_dir, large=name == "large", end=end, database_url=url, force=filled)
            urls[f"postgresql-{name}"] = url
    for url in urls.values():  # a bulk load is followed by ANALYZE (dsa110.db.stats)
        engine = create_engine(url)
        await upgrade(engine)  # a reused data set gets the indexes of newer migrations (0015)
        await analyze(engine, ("sources", "measurements", "images", "groups", "ese_candidates"), vacuum=True)
        await engine.dispose()
    apps, clients = {}, {}
    for key, url in urls.items():
        data_dir = root / key.split("-", 1)[1]
        app = create_app(Settings.from_env(data_dir=data_dir, database_url=url), migrate=False)
        apps[key] = app
        clients[key] = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")
    try:
        reqs = {key: requests(*await _probe(http)) for key, http in clients.items()}
        for key, http in clients.items():
            # In service the ese-detect job after each ingest stores the light-curve
            # normalisation and the next ingest's db-maintain job analyses it
            # (dsa110.ops.ingest.transaction.BULK_WRITTEN); here the first light curve stores it.
            for warm in reqs[key]:
                await _time(http, warm)
            await analyze(apps[key].state.engine, ("image_norm_factors", "norm_cells"))
        if "small" in sets and "large" in sets:
            keys = {"small": "sqlite-small", "large": "sqlite-large"}
            result = await compare(
                "scale",
                {k: clients[v] for k, v in keys.items()},
                {k: reqs[v] for k, v in keys.items()},
                args.repeat,
            )
            for name, by in result.items():
                (s_ms, s_rows), (l_ms, l_rows) = by["small"], by["large"]
                print(
                    line(
                        f"scale {name}",
                        small_p50_ms=s_ms,
                        large_p50_ms=l_ms,
                        ratio=l_ms / s_ms,
                        rows_small=s_rows,
                        rows_large=l_rows,
                    ),
                    flush=True,
                )
        if args.postgres_url:
            for name in sets:
                keys = {"sqlite": f"sqlite-{name}", "postgresql": f"postgresql-{name}"}
                result = await compare(
                    "pg",
                    {k: clients[v] for k, v in keys.items()},
                    {k: reqs[v] for k, v in keys.items()},
                    args.repeat,
                )
                for req, by in result.items():
                    (q_ms, q_rows), (p_ms, p_rows) = by["sqlite"], by["postgresql"]
                    print(
                        line(
                            f"scale-pg {req}",
                            data=name,
                            sqlite_p50_ms=q_ms,
                            postgresql_p50_ms=p_ms,
                            ratio=p_ms / q_ms,
                            rows_sqlite=q_rows,
                            rows_postgresql=p_rows,
                        ),
                        flush=True,
                    )
    finally:
        for key, http in clients.items():
            await http.aclose()
            await apps[key].state.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", default="bench-data")
    parser.add_argument("--sets", default="small,large", help="which data sets: small, large or both")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--postgres-url", default=None, help="also time PostgreSQL on the same data")
    args = parser.parse_args()
    asyncio.run(run(args, Path(args.data_dir).resolve()))


if __name__ == "__main__":
    main()
