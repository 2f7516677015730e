"""REST fidelity with the legacy server (issue 18): long lists, detail keys, units, nulls, freshness."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

import compat_rest.paging
from dsa110.auth.identity import Role
from dsa110.science import coordinates
from dsa110.settings import Settings
from dsa110.times import MJD_EPOCH, datetime_to_mjd, mjd_to_datetime
from server.app import create_app
from tests.compat.conftest import Graph, assert_envelope
from tests.credentials import key_headers


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def small_graph_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    """Make the compat layer ask the graph for 7 rows at a time, so short lists span pages."""
    monkeypatch.setattr(compat_rest.paging, "GRAPH_PAGE", 7)
    return 7


async def test_mosaic_query_returns_every_mosaic_newest_first_with_the_true_total(
    api: httpx.AsyncClient, graph: Graph, small_graph_pages: int
) -> None:
    data = await graph.data(
        "{ mosaics(first: 500, orderBy: START_MJD, direction: DESC) { totalCount nodes { mosaicId } } }"
    )
    everything = data["mosaics"]
    assert everything["totalCount"] > small_graph_pages  # the answer spans several graph pages
    window = {"start_time": "2000-01-01T00:00:00Z", "end_time": "2100-01-01T00:00:00Z"}
    body = (await api.post("/api/mosaics/query", json=window)).json()
    assert body["total"] == everything["totalCount"]
    assert [m["id"] for m in body["mosaics"]] == [n["mosaicId"] for n in everything["nodes"]]
    starts = [m["start_mjd"] for m in body["mosaics"]]
    assert starts == sorted(starts, reverse=True)

    limited = (await api.post("/api/mosaics/query", json={**window, "limit": 3})).json()
    assert [m["id"] for m in limited["mosaics"]] == [n["mosaicId"] for n in everything["nodes"][:3]]
    assert limited["total"] == everything["totalCount"]  # the total is not the page length
    assert_envelope(
        await api.post("/api/mosaics/query", json={**window, "limit": 0}), 422, "VALIDATION_ERROR"
    )


async def test_list_limits_accept_the_legacy_range_and_page_through_the_graph(
    api: httpx.AsyncClient, graph: Graph, small_graph_pages: int
) -> None:
    ordered = await graph.data("{ images(first: 40) { totalCount nodes { imageId } } }")
    want = [n["imageId"] for n in ordered["images"]["nodes"]]
    assert len(want) > 3 * small_graph_pages
    body = (await api.get("/api/images", params={"limit": 1000})).json()
    assert body["total"] == ordered["images"]["totalCount"]
    assert [i["id"] for i in body["items"]][: len(want)] == want
    # An offset that starts mid-page, and a limit that ends mid-page.
    body = (await api.get("/api/images", params={"limit": 17, "offset": 5})).json()
    assert [i["id"] for i in body["items"]] == want[5:22]
    for path in ("/api/images", "/api/ese/candidates", "/api/alerts/history", "/api/products", "/api/data"):
        assert (await api.get(path, params={"limit": 1000})).status_code == 200, path
        assert_envelope(await api.get(path, params={"limit": 1001}), 422, "VALIDATION_ERROR")


async def test_image_detail_has_the_legacy_position_noise_and_time_keys(
    api: httpx.AsyncClient, graph: Graph
) -> None:
    data = await graph.data(
        "{ images(first: 1) { nodes { imageId centerRaDeg centerDecDeg midMjd integrationSec "
        "measurements(first: 500) { totalCount nodes { localRmsJy } } } } }"
    )
    node = data["images"]["nodes"][0]
    rms = [m["localRmsJy"] for m in node["measurements"]["nodes"] if m["localRmsJy"] is not None]
    assert node["measurements"]["totalCount"] <= 500 and rms
    body = (await api.get(f"/api/images/{node['imageId']}")).json()

    ra, dec = node["centerRaDeg"], node["centerDecDeg"]
    assert body["ra_hms"] == coordinates.ra_hms(ra) and body["dec_dms"] == coordinates.dec_dms(dec)
    galactic = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs").galactic
    assert body["l"] == pytest.approx(galactic.l.deg, abs=1e-9)
    assert body["b"] == pytest.approx(galactic.b.deg, abs=1e-9)
    assert body["rms_min"] == pytest.approx(min(rms) * 1000.0)
    assert body["rms_max"] == pytest.approx(max(rms) * 1000.0)
    start = MJD_EPOCH + timedelta(days=node["midMjd"]) - timedelta(seconds=node["integrationSec"] / 2)
    assert abs((_utc(body["datetime"]) - start).total_seconds()) < 1e-3
    assert body["datetime"] != body["created_at"]


async def test_health_disk_is_in_gib_to_two_decimals(api: httpx.AsyncClient, settings: Settings) -> None:
    body = (await api.get("/api/health")).json()
    usage = shutil.disk_usage(settings.data_dir)
    assert body["disk"]["total_gb"] == round(usage.total / 2**30, 2)
    assert body["disk"]["free_gb"] == pytest.approx(usage.free / 2**30, abs=0.05)
    assert round(body["disk"]["free_gb"], 2) == body["disk"]["free_gb"]


async def test_recent_group_matches_are_null_until_computed(api: httpx.AsyncClient, graph: Graph) -> None:
    data = await graph.data("{ pipelineStatus { recentGroups { groupId calibrators } } }")
    computed = {g["groupId"]: g["calibrators"] for g in data["pipelineStatus"]["recentGroups"]}
    body = (await api.get("/api/status")).json()
    assert body["recent_groups"]
    for group in body["recent_groups"]:
        graph_value = computed[group["group_id"]]
        if isinstance(graph_value, list):
            assert group["matches"] == graph_value
        else:
            assert group["matches"] is None


async def test_metrics_system_samples_now_when_the_stored_sample_is_stale(
    graph: Graph, settings: Settings
) -> None:
    stored = (await graph.data("{ systemMetrics { sampledAt } }"))["systemMetrics"]
    # A sampler interval so short that every stored sample is stale: the path samples on request.
    eager = dataclasses.replace(settings, metrics_interval_s=0.001)
    app = create_app(eager, migrate=False)
    headers = await key_headers(settings.resolved_database_url, Role.VIEWER)
    before = datetime.now(UTC) - timedelta(seconds=1)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", headers=headers
        ) as http:
            body = (await http.get("/api/metrics/system")).json()
    finally:
        await app.state.engine.dispose()
    assert _utc(body["ts"]) >= before and body["ts"] != stored["sampledAt"]
    assert 0 <= body["cpu_percent"] <= 100 and body["mem_total"] > 0 and body["disks"]
    # The graph without maxAgeSeconds still reads the stored row; a generous maximum age keeps it.
    age = (datetime.now(UTC) - _utc(stored["sampledAt"])).total_seconds()
    kept = await graph.data(f"{{ systemMetrics(maxAgeSeconds: {age + 3600}) {{ sampledAt }} }}")
    assert kept["systemMetrics"]["sampledAt"] == stored["sampledAt"]
    refused = await graph.run("{ systemMetrics(maxAgeSeconds: 0) { sampledAt } }")
    assert refused.errors and refused.errors[0].extensions["code"] == "BAD_USER_INPUT"


def test_times_read_back_without_float_noise() -> None:
    instant = datetime(2025, 10, 24, 19, 17, 30, tzinfo=UTC)
    mjd = datetime_to_mjd(instant)  # 60972.80381944444..., not exact in binary
    assert mjd_to_datetime(mjd) == instant
    assert mjd_to_datetime(mjd).isoformat() == "2025-10-24T19:17:30+00:00"
    # Millisecond epochs survive; sub-millisecond float noise does not.
    assert mjd_to_datetime(mjd + 0.123 / 86400) == instant + timedelta(milliseconds=123)
    assert mjd_to_datetime(mjd + 0.4e-3 / 86400) == instant


def test_sexagesimal_forms_by_hand() -> None:
    assert coordinates.ra_hms(0.0) == "00:00:00.00"
    assert coordinates.ra_hms(187.5) == "12:30:00.00"  # 187.5 / 15 = 12.5 h
    assert coordinates.ra_hms(359.9999999) == "00:00:00.00"  # 23:59:59.99998 rounds to 24 h = 0 h
    assert coordinates.ra_hms(15.0 * (1 + 2 / 60 + 3.456 / 3600)) == "01:02:03.46"
    assert coordinates.dec_dms(-0.5) == "-00:30:00.0"
    assert coordinates.dec_dms(42 + 3 / 60 + 12.3 / 3600) == "+42:03:12.3"
    assert coordinates.dec_dms(89.99999) == "+90:00:00.0"  # 89:59:59.964 carries, never 60.0"
    with pytest.raises(ValueError):
        coordinates.dec_dms(91.0)


def test_galactic_by_hand() -> None:
    # The IAU system's defining directions in J2000/ICRS (to ~0.001 deg): the north Galactic
    # pole (192.85948, +27.12825) is b = 90; the Galactic centre (266.40499, -28.93617) is
    # l = b = 0; Sgr A* (266.41683, -29.00781) lies at l = 359.944, b = -0.046.
    _, b_pole = coordinates.galactic(192.85948, 27.12825)
    assert b_pole == pytest.approx(90.0, abs=0.01)
    l_gc, b_gc = coordinates.galactic(266.40499, -28.93617)
    assert min(l_gc, 360.0 - l_gc) == pytest.approx(0.0, abs=0.01) and b_gc == pytest.approx(0.0, abs=0.01)
    l_sgr, b_sgr = coordinates.galactic(266.41683, -29.00781)
    assert l_sgr == pytest.approx(359.944, abs=0.01) and b_sgr == pytest.approx(-0.046, abs=0.01)
    assert 0.0 <= coordinates.galactic(0.0, 0.0)[0] < 360.0
