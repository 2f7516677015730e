"""Concurrent writers lose nothing; a writer that cannot get the lock in time is told BUSY.

The race: two writers inside the server (``ingestMeasurements`` over HTTP) and one in
another OS process (the Python API) ingest images of the same sources at once. Afterwards
every source's running sums must equal what its stored measurements add up to, and every
image's measurement count its rows: no update lost, on SQLite and on PostgreSQL.

The budget: while another connection holds the write lock, a writer whose budget runs out
answers ``BUSY`` with ``Retry-After`` (503 on /graphql and on the REST layer) and nothing
of it is written; once the lock is free the same request succeeds.
"""

from __future__ import annotations

import asyncio
import functools
import math
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

import server.app
from dsa110.auth.identity import Role
from dsa110.db.engine import create_engine
from dsa110.db.tables import images, measurements, regions, sources
from dsa110.science.healpix import healpix_index
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.databases import write_lock_held
from tests.live.conftest import running
from tests.live.servers import REPO_ROOT
from tests.server.ingest_process import flux_of

N_SOURCES = 60
IMAGES_PER_WRITER = 5
INGEST = (
    "mutation($imageId: Int!, $m: [MeasurementInput!]!) {"
    " ingestMeasurements(imageId: $imageId, measurements: $m, detect: false) { nMeasurements } }"
)
CIRCLE = {"type": "circle", "ra_deg": 188.7, "dec_deg": 42.05, "radius_arcsec": 30.0}
PROCESS_WAIT_S = 300.0


async def _seed(engine: AsyncEngine, n_sources: int, n_images: int) -> tuple[dict[int, str], list[int]]:
    """Sources with empty running sums, and images one after another in time."""
    names: dict[int, str] = {}
    image_pks: list[int] = []
    async with engine.begin() as conn:
        for i in range(n_sources):
            ra, dec = 180.0 + 0.05 * i, 40.0 + 0.02 * i
            name = f"RACE J{i:04d}"
            pk = (
                await conn.execute(
                    insert(sources)
                    .values(
                        source_id=name,
                        ra_deg=ra,
                        dec_deg=dec,
                        healpix=int(healpix_index(ra, dec)),
                        n_epochs=0,
                        sum_w=0.0,
                        sum_wf=0.0,
                        sum_wf2=0.0,
                        sum_f=0.0,
                        sum_f2=0.0,
                    )
                    .returning(sources.c.id)
                )
            ).scalar_one()
            names[int(pk)] = name
        for i in range(n_images):
            pk = (
                await conn.execute(
                    insert(images)
                    .values(
                        path=f"/race/img{i:04d}.fits",
                        type="image",
                        created_at=datetime.now(UTC),
                        mid_mjd=60_000.0 + 0.01 * i,
                    )
                    .returning(images.c.id)
                )
            ).scalar_one()
            image_pks.append(int(pk))
    return names, image_pks


def _variables(image_pk: int, names: dict[int, str]) -> dict[str, Any]:
    rows = []
    for pk, name in names.items():
        flux, err = flux_of(image_pk, pk)
        rows.append({"sourceId": name, "peakFluxJy": flux, "peakFluxErrJy": err})
    return {"imageId": image_pk, "m": rows}


async def _server_writer(
    http: httpx.AsyncClient, headers: dict[str, str], names: dict[int, str], image_pks: list[int]
) -> int:
    """Ingest each image through /graphql; a BUSY answer is retried after its Retry-After."""
    retries = 0
    for image_pk in image_pks:
        while True:
            response = await http.post(
                "/graphql", json={"query": INGEST, "variables": _variables(image_pk, names)}, headers=headers
            )
            if response.status_code == 503:
                retries += 1
                await asyncio.sleep(int(response.headers["Retry-After"]))
                continue
            assert response.status_code == 200, response.text
            assert "errors" not in response.json(), response.text
            assert response.json()["data"]["ingestMeasurements"]["nMeasurements"] == len(names)
            break
    return retries


async def _process_writer(url: str, image_pks: list[int], ready: asyncio.Event, start: asyncio.Event) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.server.ingest_process",
        url,
        *map(str, image_pks),
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), PROCESS_WAIT_S)
        assert line.strip() == b"ready", (await child.stderr.read()).decode() if child.stderr else ""
        ready.set()
        await start.wait()
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        stdout, stderr = await asyncio.wait_for(child.communicate(), PROCESS_WAIT_S)
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert child.returncode == 0, stderr.decode()
    assert stdout.strip() == b"done"


async def _drift(engine: AsyncEngine) -> dict[str, list[Any]]:
    """Every disagreement between stored running sums and the stored measurements."""
    async with engine.connect() as conn:
        points: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
        for spk, flux, err, mjd in await conn.execute(
            select(
                measurements.c.source_pk,
                measurements.c.peak_flux_jy,
                measurements.c.peak_flux_err_jy,
                measurements.c.mjd,
            )
        ):
            points[spk].append((flux, err, mjd))
        stored = (await conn.execute(select(sources))).mappings().all()
        per_image: dict[int, int] = dict(
            (
                await conn.execute(
                    select(measurements.c.image_pk, func.count()).group_by(measurements.c.image_pk)
                )
            ).all()
        )
        image_counts = (await conn.execute(select(images.c.id, images.c.n_measurements))).all()
    out: dict[str, list[Any]] = defaultdict(list)
    for row in stored:
        pts = points[row["id"]]
        expected = {
            "n_epochs": len(pts),
            "sum_w": math.fsum(1 / (e * e) for _, e, _ in pts),
            "sum_wf": math.fsum(f / (e * e) for f, e, _ in pts),
            "sum_wf2": math.fsum(f * f / (e * e) for f, e, _ in pts),
            "sum_f": math.fsum(f for f, _, _ in pts),
            "sum_f2": math.fsum(f * f for f, _, _ in pts),
            "min_flux_jy": min(f for f, _, _ in pts),
            "max_flux_jy": max(f for f, _, _ in pts),
            "first_mjd": min(m for _, _, m in pts),
            "last_mjd": max(m for _, _, m in pts),
        }
        for column, value in expected.items():
            if row[column] != pytest.approx(value, rel=1e-9):
                out[column].append((row["source_id"], row[column], value))
    for image_pk, n in image_counts:
        if n != per_image.get(image_pk, 0):
            out["images.n_measurements"].append((image_pk, n, per_image.get(image_pk, 0)))
    return dict(out)


async def test_racing_writers_in_two_processes_lose_no_update(empty_db_url: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, write_lock_timeout_s=120.0
    )
    async with running(settings) as live:
        names, image_pks = await _seed(live.engine, N_SOURCES, 3 * IMAGES_PER_WRITER)
        headers = await key_headers(live.engine, Role.ADMIN)
        # Interleaved so that every writer's images are spread over the whole time range.
        first, second, third = image_pks[0::3], image_pks[1::3], image_pks[2::3]
        ready, start = asyncio.Event(), asyncio.Event()
        process = asyncio.create_task(_process_writer(empty_db_url, third, ready, start))

        async def in_server(pks: list[int]) -> int:
            await start.wait()
            return await _server_writer(live.http, headers, names, pks)

        writers = asyncio.gather(in_server(first), in_server(second), process)
        await asyncio.wait(
            [asyncio.ensure_future(ready.wait()), process], return_when=asyncio.FIRST_COMPLETED
        )
        start.set()  # all three writers go at once
        await writers
        assert await _drift(live.engine) == {}
        async with live.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(measurements))).scalar_one()
        assert total == N_SOURCES * len(image_pks)


async def test_a_writer_past_its_lock_budget_is_busy_and_writes_nothing(
    backend: str, empty_db_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, write_lock_timeout_s=0.3
    )
    async with running(settings) as live:
        names, (image_pk,) = await _seed(live.engine, 5, 1)
        admin = await key_headers(live.engine, Role.ADMIN)
        body = {"query": INGEST, "variables": _variables(image_pk, names)}
        region = {"image_id": image_pk, "name": "busy region", **CIRCLE}
        async with write_lock_held(backend, empty_db_url, "sources", "regions"):
            graph = await live.http.post("/graphql", json=body, headers=admin)
            rest = await live.http.post("/api/regions", json=region, headers=admin)
        assert graph.status_code == 503, graph.text
        assert int(graph.headers["Retry-After"]) >= 1
        assert [e["extensions"]["code"] for e in graph.json()["errors"]] == ["BUSY"]
        assert rest.status_code == 503, rest.text
        assert int(rest.headers["Retry-After"]) >= 1
        assert rest.json()["code"] == "BUSY"
        async with live.engine.connect() as conn:
            assert (await conn.execute(select(func.count()).select_from(measurements))).scalar_one() == 0
            assert (await conn.execute(select(func.count()).select_from(regions))).scalar_one() == 0
            assert set((await conn.execute(select(sources.c.n_epochs))).scalars()) == {0}
            assert (await conn.execute(select(images.c.n_measurements))).scalar_one() == 0
        # The lock is free again: the same requests now go through.
        again = await live.http.post("/graphql", json=body, headers=admin)
        assert again.json() == {"data": {"ingestMeasurements": {"nMeasurements": 5}}}
        assert (await live.http.post("/api/regions", json=region, headers=admin)).status_code == 200
        assert await _drift(live.engine) == {}


async def test_a_full_connection_pool_is_busy_not_an_internal_error(
    backend: str, empty_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One connection and a short wait for it: the test holds it, so every request finds the pool full.
    small_pool = functools.partial(create_engine, pool_size=1, max_overflow=0, pool_timeout=0.5)
    monkeypatch.setattr(server.app, "create_engine", small_pool)
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0)
    query = {"query": "{ sources(first: 1) { nodes { sourceId } } }"}
    async with running(settings) as live:
        admin = await key_headers(live.engine, Role.ADMIN)
        async with live.engine.connect() as held:
            await held.execute(select(1))
            graph = await live.http.post("/graphql", json=query)
            rest = await live.http.post("/api/sources/search", json={"limit": 1})
            keyed = await live.http.post("/graphql", json=query, headers=admin)  # its key is looked up
        for answer in (graph, keyed):
            assert answer.status_code == 503, answer.text
            assert int(answer.headers["Retry-After"]) >= 1
            assert [e["extensions"]["code"] for e in answer.json()["errors"]] == ["BUSY"]
        assert rest.status_code == 503, rest.text
        assert int(rest.headers["Retry-After"]) >= 1
        assert rest.json()["code"] == "BUSY"
        # The connection is back: the same requests go through.
        assert (await live.http.post("/graphql", json=query)).json() == {"data": {"sources": {"nodes": []}}}
        assert (await live.http.post("/api/sources/search", json={"limit": 1})).status_code == 200
