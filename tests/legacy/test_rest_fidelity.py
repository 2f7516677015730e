"""After an import, the REST paths that read those tables answer what the legacy server would.

The expectation comes from :class:`tests.legacy.oracle.LegacyOracle`, which reads the
legacy files only; every deliberate difference is listed in ``oracle.DEVIATIONS``. The
graph's counts are checked against the fixture's too.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from dsa110.db.engine import create_engine
from dsa110.settings import Settings
from server.app import create_app
from tests.databases import scratch_database
from tests.legacy.conftest import SMALL, import_once
from tests.legacy.fixture import LegacyFixture, build_fixture
from tests.legacy.oracle import LegacyOracle


@dataclass(frozen=True)
class Imported:
    url: str
    root: Path
    fixture: LegacyFixture


@pytest.fixture(scope="session")
async def _imported(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    stack = contextlib.AsyncExitStack()
    built: dict[str, Imported] = {}

    class Lazy:
        async def get(self, backend: str) -> Imported:
            if backend not in built:
                root = tmp_path_factory.mktemp(f"fidelity-{backend}")
                fixture = build_fixture(root / "pipeline" / "state", SMALL)
                url = await stack.enter_async_context(scratch_database(backend, root))
                engine = create_engine(url)
                await import_once(engine, fixture)
                await engine.dispose()
                built[backend] = Imported(url, root, fixture)
            return built[backend]

    try:
        yield Lazy()
    finally:
        await stack.aclose()


@pytest.fixture
async def imported(backend: str, _imported: Any) -> Imported:
    return await _imported.get(backend)  # type: ignore[no-any-return]


@pytest.fixture
def oracle(imported: Imported) -> LegacyOracle:
    return LegacyOracle(imported.fixture.state_dir)


@pytest.fixture
async def api(imported: Imported) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(data_dir=imported.root / "data", database_url=imported.url, metrics_interval_s=0)
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


async def get(api: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await api.get(f"/api{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def same(ours: Any, expected: Any, where: str = "") -> None:
    """Field by field: the expected keys only; times as instants, floats to 1e-12."""
    if isinstance(expected, dict):
        assert isinstance(ours, dict), where
        for key, value in expected.items():
            assert key in ours, f"{where}.{key} missing"
            same(ours[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(ours, list) and len(ours) == len(expected), (
            f"{where}: {len(ours)} != {len(expected)}"
        )
        for i, (a, b) in enumerate(zip(ours, expected, strict=True)):
            same(a, b, f"{where}[{i}]")
    elif isinstance(expected, datetime):
        assert isinstance(ours, str) and ours.endswith("Z"), f"{where}: {ours!r}"
        moment = datetime.fromisoformat(ours.replace("Z", "+00:00"))
        assert abs((moment - expected).total_seconds()) < 1e-3, f"{where}: {ours} != {expected}"
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert isinstance(ours, int | float) and math.isclose(ours, expected, rel_tol=1e-12), (
            f"{where}: {ours} != {expected}"
        )
    else:
        assert ours == expected, f"{where}: {ours!r} != {expected!r}"


async def test_status(api: httpx.AsyncClient, oracle: LegacyOracle) -> None:
    ours = await get(api, "/status")
    expected = oracle.status()
    same(ours["queue"], expected["queue"], "queue")
    same(ours["recent_groups"], expected["recent_groups"], "recent_groups")
    assert ours["matched_recent"] == expected["matched_recent"]
    by_name = {s["set_name"]: s for s in ours["calibration_sets"]}
    assert set(by_name) == set(expected["calibration_sets"])
    for name, calibration in expected["calibration_sets"].items():
        same(by_name[name], calibration, name)


async def test_ms_index(api: httpx.AsyncClient, oracle: LegacyOracle) -> None:
    ours = await get(api, "/ms_index", limit=100)
    same(ours["items"], oracle.ms_index(limit=100), "items")


async def test_images_products_and_one_image(api: httpx.AsyncClient, oracle: LegacyOracle) -> None:
    expected, total = oracle.images(limit=40, offset=5, image_type="5min")
    ours = await get(api, "/images", limit=40, offset=5, image_type="5min")
    assert ours["total"] == total
    same(ours["items"], expected, "images")
    same((await get(api, "/products"))["items"][:50], oracle.products(limit=50)[:50], "products")
    for image_id in (1, 2, expected[0]["id"]):
        one = oracle.image(image_id)
        assert one is not None
        same(await get(api, f"/images/{image_id}"), one, f"image {image_id}")


async def test_mosaics(api: httpx.AsyncClient, oracle: LegacyOracle, imported: Imported) -> None:
    start = SMALL.start_mjd + 1.0
    response = await api.post(
        "/api/mosaics/query",
        json={"start_time": "2025-08-14T00:00:00Z", "end_time": "2025-08-16T00:00:00Z"},
    )
    assert response.status_code == 200
    ours = {m["id"]: m for m in response.json()["mosaics"]}
    expected = {m["id"]: m for m in oracle.mosaics(start, start + 2.0)}
    assert set(ours) >= set(expected)  # and the planned mosaic, now timed by its tiles when it overlaps
    for mosaic_id, mosaic in expected.items():
        same(ours[mosaic_id], mosaic, f"mosaic {mosaic_id}")
        same(await get(api, f"/mosaics/{mosaic_id}"), mosaic, f"mosaic {mosaic_id}")


async def test_ese_candidates(api: httpx.AsyncClient, oracle: LegacyOracle) -> None:
    for min_sigma in (5.0, 6.0, 10.0):
        ours = await get(api, "/ese/candidates", min_sigma=min_sigma)
        expected = oracle.ese_candidates(min_sigma=min_sigma)
        assert ours["total"] == len(expected)
        same(ours["candidates"], expected, f"min_sigma={min_sigma}")


async def test_pointing_groups_qa_and_calibrator_matches(
    api: httpx.AsyncClient, oracle: LegacyOracle
) -> None:
    lo, hi = SMALL.start_mjd + 0.5, SMALL.start_mjd + 2.5
    same(
        (await get(api, "/pointing_history", start_mjd=lo, end_mjd=hi))["items"],
        oracle.pointing_history(lo, hi),
    )
    status = oracle.status()
    for group in [g["group_id"] for g in status["recent_groups"][:3]] + [
        "2025-08-13T00:00:00",
        "2025-08-13T02:00:00",
    ]:
        expected = oracle.group(group)
        assert expected is not None
        ours = await get(api, f"/groups/{group}")
        ours["qa"] = sorted(ours["qa"], key=lambda a: a["name"])
        same(ours, expected, group)
    same((await get(api, "/qa", limit=30))["items"], oracle.qa(limit=30), "qa")
    same((await get(api, "/calibrator_matches", limit=30))["items"], oracle.calibrator_matches(limit=30))


async def test_data_registry_and_lineage(api: httpx.AsyncClient, oracle: LegacyOracle) -> None:
    expected, total = oracle.data(limit=60, offset=10)
    ours = await get(api, "/data", limit=60, offset=10)
    assert ours["total"] == total
    same(ours["items"], expected, "data")
    for item in expected[:5]:
        encoded = quote(item["id"], safe="")
        one = oracle.data_item(item["id"])
        same(await get(api, f"/data/{encoded}"), one, item["id"])
        lineage = await get(api, f"/data/{encoded}/lineage")
        want = oracle.lineage(item["id"])
        for side in ("parents", "children"):
            assert {rel: sorted(ids) for rel, ids in lineage[side].items()} == want[side], side


async def test_light_curves(api: httpx.AsyncClient, oracle: LegacyOracle, imported: Imported) -> None:
    for source_id in imported.fixture.source_ids[:8]:
        ours = await get(api, f"/sources/{quote(source_id, safe='')}/lightcurve")
        named = {p["image_id"] for p in oracle.lightcurve(source_id)}
        points = [p for p in ours["flux_points"] if p["image_id"] in named]  # plus its unnamed rows
        same(points, oracle.lightcurve(source_id), source_id)


async def test_the_graph_counts_what_the_fixture_holds(api: httpx.AsyncClient, imported: Imported) -> None:
    f = imported.fixture
    query = """{ groups(first: 0) { totalCount } measurementSets(first: 0) { totalCount }
      sources(first: 0) { totalCount } eseCandidates(first: 0) { totalCount } mosaics(first: 0) { totalCount }
      dataProducts(first: 0) { totalCount } }"""
    response = await api.post("/graphql", json={"query": query})
    data = response.json()["data"]
    assert data["groups"]["totalCount"] == f.counts["ingest_queue"]
    assert data["measurementSets"]["totalCount"] == f.counts["ms_index"]
    assert data["sources"]["totalCount"] == len(f.source_ids)
    assert data["mosaics"]["totalCount"] == f.counts["mosaics"]
    assert data["dataProducts"]["totalCount"] == f.counts["data_registry"]
