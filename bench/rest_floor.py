"""REST at the floor: each /api path against a hand-written handler for the same body.

For ``/api/status``, ``/api/health``, ``/api/ese/candidates``, ``/api/sources/search``,
``/api/images`` and ``/api/products`` (their documented defaults), the compat route (a
GraphQL document executed in process, then reshaped) is timed against a plain starlette
handler on the same app process and database that runs the minimal SQL for the same answer
(raw SQL through the same engine), builds the same body and ``json.dumps`` it. Requests
alternate (compat, floor, compat, ...) through one httpx ASGI client, so both see the same
caches and load. The floor handlers reuse the compat layer's pure reshaping helpers (the
legacy key names), so the two bodies are checked equal once before timing (``same=yes``;
``/api/health`` differs only in its timestamp).

Prints one line per path: ``<path> p50_ms=.. floor_p50_ms=.. ratio=.. cpu_ms=.. floor_cpu_ms=..
cpu_ratio=.. same=..`` (target ratio <= 1.5). CPU is the process's (every thread, the database
driver's too) per request, the median of the same interleaved requests: on a shared machine it
moves less than wall time. The process's collector is set as ``dsa110-graph serve`` sets it
(``--stock-gc``: CPython's defaults). Uses ``--data-dir`` (the demo is built there if missing)
or ``--database-url``.

    .venv/bin/python -m bench.rest_floor [--data-dir data] [--database-url URL] [--repeat 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import httpx
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.common import ensure_demo, line, p50
from compat_rest import core, ese, images, sources
from dsa110.settings import Settings
from server.app import create_app
from server.workers import freeze_startup_objects

Floor = Callable[[AsyncEngine], Awaitable[Any]]
# The rows of ``exec_driver_sql``: SQLAlchemy types them as one column of Any; these have several.
DriverRows: TypeAlias = Sequence[Row[*tuple[Any, ...]]]
_STATES = ("collecting", "pending", "in_progress", "completed", "failed")


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(value.astimezone(UTC).isoformat().replace("+00:00", "Z"))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def _rows(engine: AsyncEngine, sql: str) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.exec_driver_sql(sql)).all())


async def floor_status(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        by_state: DriverRows = (
            await conn.exec_driver_sql("SELECT state, count(*) FROM groups GROUP BY state")
        ).all()
        counts: dict[str, int] = dict(by_state)
        recent: DriverRows = (
            await conn.exec_driver_sql(
                "SELECT g.group_id, g.state, g.received_at, g.updated_at, g.expected_subbands, "
                "g.has_calibrator, g.calibrators, "
                "(SELECT count(*) FROM subband_files s WHERE s.group_pk = g.id) "
                "FROM groups g ORDER BY g.group_id DESC LIMIT 20"
            )
        ).all()
        tables = (
            await conn.exec_driver_sql(
                "SELECT set_name, path, status, created_at FROM cal_tables ORDER BY set_name, order_index, id"
            )
        ).all()
    sets: dict[str, list[Any]] = {}
    for row in tables:
        sets.setdefault(row[0], []).append(row)
    built = []
    for name, members in sets.items():
        created = [iso for r in members if (iso := _iso(r[3])) is not None]
        built.append(
            {
                "setName": name,
                "tables": [r[1] for r in members],
                "active": sum(1 for r in members if r[2] == "active"),
                "total": len(members),
                "createdAt": max(created) if created else None,
            }
        )
    built.sort(key=lambda s: (s["createdAt"] is not None, s["createdAt"] or "", s["setName"]), reverse=True)
    nodes = [
        {
            "groupId": r[0],
            "state": r[1],
            "receivedAt": _iso(r[2]),
            "updatedAt": _iso(r[3]),
            "presentSubbands": int(r[7] or 0),
            "expectedSubbands": r[4],
            "hasCalibrator": None if r[5] is None else bool(r[5]),
            "calibrators": _json(r[6]),
        }
        for r in recent
    ]
    queue = {
        "total": sum(counts.values()),
        "collecting": counts.get("collecting", 0),
        "pending": counts.get("pending", 0),
        "inProgress": counts.get("in_progress", 0),
        "completed": counts.get("completed", 0),
        "failed": counts.get("failed", 0),
    }
    data = {
        "pipelineStatus": {
            "queue": queue,
            "recentGroups": nodes,
            "calibrationSets": built,
            "matchedRecent": sum(1 for n in nodes if n["hasCalibrator"]),
        }
    }
    return core.shape_status(data, {"limit": 20})


async def floor_health(engine: AsyncEngine, data_dir: Path) -> Any:
    await _rows(engine, "SELECT count(*) FROM groups")
    state = "accessible"
    return {
        "status": "healthy",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "databases": {"queue": state, "products": state, "registry": state},
        "disk": core._disk(data_dir),
        "version": core._version(),
    }


_SOURCE_COLUMNS = (
    "source_id, ra_deg, dec_deg, catalog_flux_jy, n_epochs, mean_flux_jy, min_flux_jy, max_flux_jy, "
    "v, eta, chi2_nu, sigma_deviation, vs_abs_max, m_abs_max, first_mjd, last_mjd"
)


def _source_node(r: Any) -> dict[str, Any]:
    keys = [
        "sourceId",
        "raDeg",
        "decDeg",
        "catalogFluxJy",
        "nEpochs",
        "meanFluxJy",
        "minFluxJy",
        "maxFluxJy",
        "v",
        "eta",
        "chi2Nu",
        "sigmaDeviation",
        "vsAbsSignificantMax",
        "mAbsSignificantMax",
        "firstMjd",
        "lastMjd",
    ]
    return dict(zip(keys, r, strict=True))


async def floor_search(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        total = (await conn.exec_driver_sql("SELECT count(*) FROM sources")).scalar_one()
        rows = (
            await conn.exec_driver_sql(
                f"SELECT {_SOURCE_COLUMNS} FROM sources ORDER BY source_id, id LIMIT 100"
            )
        ).all()
    data = {"sources": {"totalCount": total, "nodes": [_source_node(r) for r in rows]}}
    return sources.shape_search(data, {"limit": 100, "offset": 0})


async def floor_candidates(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        total = (
            await conn.exec_driver_sql("SELECT count(*) FROM ese_candidates WHERE status = 'active'")
        ).scalar_one()
        rows: DriverRows = (
            await conn.exec_driver_sql(
                "SELECT c.id, c.status, c.score, c.significance, c.start_mjd, c.end_mjd, c.depth, "
                "c.baseline_flux_jy, c.min_flux_jy, c.detector_version, c.flagged_at, c.updated_at, "
                "c.changed_by, c.notes, s.source_id, s.ra_deg, s.dec_deg, s.mean_flux_jy, s.max_flux_jy, "
                "s.first_mjd, s.last_mjd, s.catalog_flux_jy, s.sigma_deviation, "
                "c.phase, c.kind, c.false_alarm_probability "
                "FROM ese_candidates c JOIN sources s ON s.id = c.source_pk WHERE c.status = 'active' "
                "ORDER BY c.score DESC, c.id DESC LIMIT 100"
            )
        ).all()
    nodes = [
        {
            "candidateId": r[0],
            "status": r[1].upper(),
            "score": r[2],
            "significance": r[3],
            "startMjd": r[4],
            "endMjd": r[5],
            "depth": r[6],
            "baselineFluxJy": r[7],
            "minFluxJy": r[8],
            "detectorVersion": r[9],
            "flaggedAt": _iso(r[10]),
            "updatedAt": _iso(r[11]),
            "changedBy": r[12],
            "notes": r[13],
            "durationDays": r[5] - r[4],
            "phase": None if r[23] is None else r[23].upper(),
            "kind": None if r[24] is None else r[24].upper(),
            "falseAlarmProbability": r[25],
            "source": {
                "sourceId": r[14],
                "raDeg": r[15],
                "decDeg": r[16],
                "meanFluxJy": r[17],
                "maxFluxJy": r[18],
                "firstMjd": r[19],
                "lastMjd": r[20],
                "catalogFluxJy": r[21],
                "sigmaDeviation": r[22],
            },
        }
        for r in rows
    ]
    return ese.shape_candidates({"eseCandidates": {"totalCount": total, "nodes": nodes}}, {})


_IMAGE_SQL = (
    "SELECT i.id, i.path, i.type, i.created_at, i.mid_mjd, i.beam_major_arcsec, i.beam_minor_arcsec, "
    "i.beam_pa_deg, i.noise_jy, i.center_ra_deg, i.center_dec_deg, i.imsize_x, i.imsize_y, "
    "i.cellsize_arcsec, i.freq_ghz, i.bandwidth_mhz, i.pbcor, m.path "
    "FROM images i LEFT JOIN measurement_sets m ON m.id = i.ms_pk "
)


def _image_node(r: Any) -> dict[str, Any]:
    keys = [
        "imageId",
        "path",
        "type",
        "createdAt",
        "midMjd",
        "beamMajorArcsec",
        "beamMinorArcsec",
        "beamPaDeg",
        "noiseJy",
        "centerRaDeg",
        "centerDecDeg",
        "imsizeX",
        "imsizeY",
        "cellsizeArcsec",
        "freqGhz",
        "bandwidthMhz",
        "pbcor",
    ]
    node = dict(zip(keys, r[:17], strict=True))
    node["createdAt"] = _iso(node["createdAt"])
    node["pbcor"] = bool(node["pbcor"])
    node["measurementSet"] = {"path": r[17]} if r[17] is not None else None
    return node


async def floor_images(engine: AsyncEngine) -> Any:
    async with engine.connect() as conn:
        total = (await conn.exec_driver_sql("SELECT count(*) FROM images")).scalar_one()
        rows = (await conn.exec_driver_sql(_IMAGE_SQL + "ORDER BY i.mid_mjd DESC, i.id DESC LIMIT 100")).all()
    return {"items": [images.image_item(_image_node(r)) for r in rows], "total": total}


async def floor_products(engine: AsyncEngine) -> Any:
    rows = await _rows(engine, _IMAGE_SQL + "ORDER BY i.created_at DESC, i.id DESC LIMIT 50")
    return {"items": [images.image_item(_image_node(r)) for r in rows]}


def floor_routes(engine: AsyncEngine, data_dir: Path) -> list[Route]:
    def route(path: str, make: Callable[[], Awaitable[Any]], method: str = "GET") -> Route:
        async def handler(_request: Request) -> Response:
            body = await make()
            return Response(json.dumps(body), media_type="application/json")

        return Route(path, handler, methods=[method])

    return [
        route("/floor/status", lambda: floor_status(engine)),
        route("/floor/health", lambda: floor_health(engine, data_dir)),
        route("/floor/ese/candidates", lambda: floor_candidates(engine)),
        route("/floor/sources/search", lambda: floor_search(engine), "POST"),
        route("/floor/images", lambda: floor_images(engine)),
        route("/floor/products", lambda: floor_products(engine)),
    ]


PATHS = [
    ("/api/status", "GET"),
    ("/api/health", "GET"),
    ("/api/ese/candidates", "GET"),
    ("/api/sources/search", "POST"),
    ("/api/images", "GET"),
    ("/api/products", "GET"),
]


def _comparable(path: str, body: Any) -> Any:
    if path == "/api/health" and isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("timestamp", "disk")}
    return body


async def run(settings: Settings, repeat: int, paths: list[str] | None, stock_gc: bool = False) -> None:
    app = create_app(settings, migrate=False)
    if not stock_gc:
        # As `dsa110-graph serve` runs the app: start-up objects frozen, a young generation
        # of 10,000 (``server.workers.freeze_startup_objects``).
        freeze_startup_objects()
    engine: AsyncEngine = app.state.engine
    app.router.routes[0:0] = floor_routes(engine, settings.data_dir)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        for path, method in PATHS:
            if paths and path not in paths:
                continue
            floor = path.replace("/api/", "/floor/")
            body: dict[str, Any] | None = {} if method == "POST" else None
            ours, theirs = (
                await http.request(method, path, json=body),
                await http.request(method, floor, json=body),
            )
            if ours.status_code != 200 or theirs.status_code != 200:
                raise SystemExit(f"{path}: {ours.status_code} {ours.text[:300]} / {theirs.text[:300]}")
            same = _comparable(path, ours.json()) == _comparable(path, theirs.json())
            compat_ms: list[float] = []
            floor_ms: list[float] = []
            compat_cpu: list[float] = []
            floor_cpu: list[float] = []
            for i in range(repeat + 5):
                start, start_cpu = time.perf_counter(), time.process_time()
                ours = await http.request(method, path, json=body)
                middle, middle_cpu = time.perf_counter(), time.process_time()
                theirs = await http.request(method, floor, json=body)
                end, end_cpu = time.perf_counter(), time.process_time()
                if ours.status_code != 200 or theirs.status_code != 200:
                    raise SystemExit(f"{path}: {ours.status_code} / {theirs.status_code} during timing")
                if i >= 5:
                    compat_ms.append((middle - start) * 1000.0)
                    floor_ms.append((end - middle) * 1000.0)
                    compat_cpu.append((middle_cpu - start_cpu) * 1000.0)
                    floor_cpu.append((end_cpu - middle_cpu) * 1000.0)
            ours_ms, floor_p50 = p50(compat_ms), p50(floor_ms)
            ours_cpu, floor_cpu_p50 = p50(compat_cpu), p50(floor_cpu)
            print(
                line(
                    path,
                    p50_ms=ours_ms,
                    floor_p50_ms=floor_p50,
                    ratio=ours_ms / floor_p50,
                    cpu_ms=ours_cpu,
                    floor_cpu_ms=floor_cpu_p50,
                    cpu_ratio=ours_cpu / floor_cpu_p50,
                    same="yes" if same else "no",
                    bytes=len(ours.content),
                ),
                flush=True,
            )
            if not same:
                a, b = _comparable(path, ours.json()), _comparable(path, theirs.json())
                print(
                    f"# {path} differs: ours {json.dumps(a)[:400]}\n#   floor {json.dumps(b)[:400]}",
                    flush=True,
                )
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--paths", default="", help="comma-separated subset of the paths")
    parser.add_argument(
        "--stock-gc", action="store_true", help="CPython's collector settings, not the ones `serve` sets"
    )
    args = parser.parse_args()
    data_dir = Path(args.data_dir).resolve()
    # The per-client rate limit (1,200 anonymous requests a minute) would refuse part of a
    # run (12 requests per repeat): a refused request costs almost nothing and would
    # flatter whichever side it hit. The bench times execution, not the limiter.
    settings = Settings.from_env(
        data_dir=data_dir,
        database_url=args.database_url,
        rate_limit_per_minute=0,
        anonymous_rate_limit_per_minute=0,
    )
    ensure_demo(data_dir, args.database_url)
    asyncio.run(run(settings, args.repeat, [p for p in args.paths.split(",") if p], args.stock_gc))


if __name__ == "__main__":
    main()
