"""Sources and ESE paths agree with the graph."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from tests.compat.conftest import Demo, Graph, assert_envelope, candidate_row


async def _variable_source(graph: Graph) -> dict[str, Any]:
    data = await graph.data(
        "{ sources(first: 1, orderBy: CHI2_NU, direction: DESC) { nodes { sourceId raDeg decDeg nEpochs meanFluxJy"
        " v eta chi2Nu sigmaDeviation vsAbsSignificantMax } } }"
    )
    return data["sources"]["nodes"][0]  # type: ignore[no-any-return]


async def test_source_search_filters_sort_and_paging(api: httpx.AsyncClient, graph: Graph) -> None:
    body = {
        "filters": {"dec_min": 41.0, "dec_max": 43.0, "flux_min_mjy": 10.0},
        "sort": {"field": "sigma_deviation", "order": "desc"},
        "limit": 5,
        "offset": 2,
    }
    response = await api.post("/api/sources/search", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    data = await graph.data(
        "query($f: SourceFilter) { sources(filter: $f, orderBy: SIGMA_DEVIATION, direction: DESC, first: 7)"
        " { totalCount nodes { sourceId } } }",
        f={"decMinDeg": 41.0, "decMaxDeg": 43.0, "fluxMinJy": 0.01},
    )
    assert result["total"] == data["sources"]["totalCount"]
    assert [s["source_id"] for s in result["sources"]] == [
        n["sourceId"] for n in data["sources"]["nodes"][2:]
    ]
    assert (result["limit"], result["offset"]) == (5, 2)
    item = result["sources"][0]
    for key in (
        "source_id",
        "ra_deg",
        "dec_deg",
        "nvss_flux_mjy",
        "mean_flux_mjy",
        "n_obs",
        "chi2_nu",
        "sigma_deviation",
        "last_measured_at",
        "catalog",
        "flux_points",
        "is_variable",
    ):
        assert key in item


async def test_source_search_by_name_returns_its_series(api: httpx.AsyncClient, graph: Graph) -> None:
    source = await _variable_source(graph)
    result = (await api.post("/api/sources/search", json={"source_id": source["sourceId"]})).json()
    assert result["total"] == 1
    assert len(result["sources"][0]["flux_points"]) == source["nEpochs"]
    nothing = (await api.post("/api/sources/search", json={"query": "NVSS J000000.0+000000"})).json()
    assert nothing == {"sources": [], "total": 0, "limit": 100, "offset": 0}


async def test_source_search_query_is_a_name_or_its_start(api: httpx.AsyncClient, graph: Graph) -> None:
    """The document's example searches `"query": "NVSS J123456"` for `NVSS J123456.7+420312`:
    a typed start of a name finds the sources so named (it used to find nothing)."""
    source = await _variable_source(graph)
    name = source["sourceId"]
    prefix = name[: len("NVSS J1234")]
    named = await graph.data(
        "query($p: String!) { sources(filter: {sourceIdPrefix: $p}) { totalCount } }", p=prefix
    )
    found = (await api.post("/api/sources/search", json={"query": prefix, "limit": 500})).json()
    assert found["total"] == named["sources"]["totalCount"] >= 1
    assert name in [s["source_id"] for s in found["sources"]]
    assert all(s["source_id"].startswith(prefix) for s in found["sources"])
    exact = (await api.post("/api/sources/search", json={"query": name})).json()
    assert [s["source_id"] for s in exact["sources"]] == [name]
    # Text, not a pattern: SQL wildcards match only themselves.
    assert (await api.post("/api/sources/search", json={"query": "NVSS J%"})).json()["total"] == 0


async def test_source_detail_and_variability(api: httpx.AsyncClient, graph: Graph) -> None:
    source = await _variable_source(graph)
    path = f"/api/sources/{quote(source['sourceId'])}"
    detail = (await api.get(path)).json()
    assert detail["id"] == detail["name"] == source["sourceId"]
    assert detail["n_meas"] == source["nEpochs"] and detail["mean_flux_jy"] == source["meanFluxJy"]
    assert detail["variability_metrics"]["eta"] == source["eta"]
    assert detail["variability_metrics"]["n_epochs"] == source["nEpochs"]
    variability = (await api.get(f"{path}/variability")).json()
    assert variability["source_id"] == source["sourceId"]
    assert (variability["v"], variability["eta"], variability["chi2_nu"]) == (
        source["v"],
        source["eta"],
        source["chi2Nu"],
    )
    assert variability["vs_mean"] == source["vsAbsSignificantMax"]
    assert_envelope(await api.get("/api/sources/NVSS%20J999999.9+999999"), 404, "NOT_FOUND")


async def test_source_detail_serves_max_snr_new_source_and_the_heuristic(
    api: httpx.AsyncClient, graph: Graph
) -> None:
    data = await graph.data(
        "{ sources(first: 20, orderBy: MAX_SNR, direction: DESC) { nodes { sourceId maxSnr newSource"
        " newHighSigma eseHeuristicScore } } }"
    )
    for node in data["sources"]["nodes"]:
        response = await api.get(f"/api/sources/{quote(node['sourceId'])}")
        assert response.status_code == 200, response.text  # the legacy server 404'd on every source
        detail = response.json()
        assert detail["max_snr"] == node["maxSnr"] and detail["max_snr"] is not None
        assert detail["new_source"] is node["newSource"]  # a bool, never null
        assert detail["new_high_sigma"] == node["newHighSigma"]
        assert detail["ese_probability"] == detail["ese_heuristic_score"] == node["eseHeuristicScore"]
    search = (
        await api.post(
            "/api/sources/search", json={"sort": {"field": "max_snr", "order": "desc"}, "limit": 20}
        )
    ).json()
    assert [s["source_id"] for s in search["sources"]] == [n["sourceId"] for n in data["sources"]["nodes"]]


async def test_ese_probability_gains_the_timescale_term_from_an_ese_length_candidate(
    api: httpx.AsyncClient, engine: AsyncEngine, demo: Demo
) -> None:
    path = f"/api/sources/{quote(demo.candidate_source)}"
    # The seeded candidate lasts 60992.0 - 60990.5 = 1.5 d, shorter than an ESE's 14 d, so
    # only V and chi2_nu score (checked by hand over every source in tests/graph).
    before = (await api.get(path)).json()["ese_probability"]
    assert before is not None
    async with engine.begin() as conn:
        seeded = await candidate_row(conn, demo.candidate_source)
        # The same candidate, 40 days long and under investigation.
        longer = {**seeded, "status": "investigated", "start_mjd": 60950.0, "end_mjd": 60990.0}
        added = (
            await conn.execute(insert(t.ese_candidates).values(**longer).returning(t.ese_candidates.c.id))
        ).scalar_one()
    try:
        # A 40-day window that a person is investigating: the timescale term, +0.2.
        after = (await api.get(path)).json()["ese_probability"]
        assert after == pytest.approx(before + 0.2, abs=1e-12)
    finally:
        async with engine.begin() as conn:
            await conn.execute(delete(t.ese_candidates).where(t.ese_candidates.c.id == added))


async def test_source_lightcurve_and_detections(api: httpx.AsyncClient, graph: Graph) -> None:
    source = await _variable_source(graph)
    path = f"/api/sources/{quote(source['sourceId'])}"
    data = await graph.data(
        "query($s: String!) { source(sourceId: $s) { lightCurve { points { mjd fluxJy normFluxJy image { path } } } } }",
        s=source["sourceId"],
    )
    points = data["source"]["lightCurve"]["points"]
    curve = (await api.get(f"{path}/lightcurve")).json()
    assert [p["mjd"] for p in curve["flux_points"]] == [p["mjd"] for p in points]
    assert [p["flux_jy"] for p in curve["flux_points"]] == [p["fluxJy"] for p in points]
    assert [p["flux_jy"] for p in curve["normalized_flux_points"]] == [p["normFluxJy"] for p in points]
    assert curve["flux_points"][0]["image_id"] == points[0]["image"]["path"]
    assert curve["flux_points"][0]["time"].endswith("Z")
    page = (await api.get(f"{path}/detections", params={"page": 2, "page_size": 2})).json()
    assert (page["total"], page["page"], page["page_size"]) == (source["nEpochs"], 2, 2)
    assert [d["mjd"] for d in page["items"]] == [p["mjd"] for p in points[2:4]]
    first = page["items"][0]
    assert abs(first["flux_peak"] - 1000 * first["flux_peak_jy"]) < 1e-9 and first["measured_at"].endswith(
        "Z"
    )
    assert_envelope(await api.get(f"{path}/detections", params={"page_size": 101}), 422)


async def test_source_postage_stamps_are_urls(api: httpx.AsyncClient, graph: Graph) -> None:
    source = await _variable_source(graph)
    body = (
        await api.get(f"/api/sources/{quote(source['sourceId'])}/postage_stamps", params={"max_stamps": 2})
    ).json()
    assert body["source_id"] == source["sourceId"] and body["total"] == len(body["stamps"]) == 2
    stamp = body["stamps"][0]
    assert stamp["fits_url"].startswith("/") and stamp["png_url"].startswith("/")
    fits = await api.get(stamp["fits_url"])
    assert fits.status_code == 200 and fits.content.startswith(b"SIMPLE")


async def test_external_catalogs_offline_answers_per_catalog(api: httpx.AsyncClient, graph: Graph) -> None:
    source = await _variable_source(graph)
    path = f"/api/sources/{quote(source['sourceId'])}/external_catalogs"
    body = (await api.get(path, params={"catalogs": "simbad,gaia", "timeout": 5})).json()
    assert set(body["matches"]) == {"simbad", "gaia"}
    for match in body["matches"].values():
        # No network here: each catalog says so, and the answer is still a 200.
        assert match["matched"] is False and match["error"]
    assert_envelope(await api.get(path, params={"catalogs": "vizier"}), 400, "BAD_CATALOG")


async def test_ese_candidates_and_alerts(api: httpx.AsyncClient, graph: Graph, demo: Demo) -> None:
    body = (await api.get("/api/ese/candidates")).json()
    data = await graph.data(
        "{ eseCandidates(filter: {statuses: [ACTIVE]}, first: 100) { totalCount nodes { candidateId significance"
        " baselineFluxJy source { sourceId } } } }"
    )
    assert body["total"] == data["eseCandidates"]["totalCount"] >= 1
    seeded = next(c for c in body["candidates"] if c["source_id"] == demo.candidate_source)
    node = next(n for n in data["eseCandidates"]["nodes"] if n["candidateId"] == seeded["id"])
    assert (
        seeded["max_sigma_dev"] == node["significance"]
        and seeded["baseline_flux_jy"] == node["baselineFluxJy"]
    )
    assert seeded["status"] == "active" and seeded["first_detection_at"].endswith("Z")
    for key in ("ra_deg", "dec_deg", "last_detection_at", "peak_flux_jy", "notes"):
        assert key in seeded
    for key in ("phase", "kind", "false_alarm_probability"):  # additive (ese-drw-3.0; null when older)
        assert key in seeded
    none = (await api.get("/api/ese/candidates", params={"min_sigma": 1000})).json()
    assert none == {"candidates": [], "total": 0}
    # max_false_alarm keeps only candidates with a calibrated probability at most that.
    swept = (await api.get("/api/ese/candidates", params={"max_false_alarm": 0.5, "status": "all"})).json()
    assert all(c["false_alarm_probability"] is not None and c["false_alarm_probability"] <= 0.5
               for c in swept["candidates"])  # fmt: skip
    assert (await api.get("/api/ese/candidates", params={"max_false_alarm": 2})).status_code == 422
    alerts = (await api.get("/api/alerts/history", params={"limit": 10})).json()
    assert isinstance(alerts, list) and alerts[0]["source_id"] == demo.candidate_source
    assert alerts[0]["alert_type"] == "ese_candidate" and alerts[0]["triggered_at"].endswith("Z")


async def test_ese_candidate_source_paths(api: httpx.AsyncClient, demo: Demo) -> None:
    base = f"/api/ese/candidates/{quote(demo.candidate_source)}"
    for suffix, key in (("lightcurve", "flux_points"), ("variability", "eta"), ("postage_stamps", "stamps")):
        response = await api.get(
            f"{base}/{suffix}", params={"max_stamps": 1} if suffix == "postage_stamps" else None
        )
        assert response.status_code == 200, response.text
        assert key in response.json()
        assert response.json()["source_id"] == demo.candidate_source
    external = await api.get(f"{base}/external_catalogs", params={"catalogs": "ned", "timeout": 5})
    assert external.status_code == 200 and "ned" in external.json()["matches"]


async def test_a_bad_nested_body_field_is_named_as_a_body_field(api: httpx.AsyncClient) -> None:
    """`filters.dec_min` and `sort.order` are in the body: the error says so (it said "query")."""
    for body, name in (({"filters": {"dec_min": "abc"}}, "dec_min"), ({"sort": {"order": "up"}}, "order")):
        refused = assert_envelope(await api.post("/api/sources/search", json=body), 422, "VALIDATION_ERROR")
        assert refused["details"] == {"parameter": name, "location": "body"}
        assert refused["error"].startswith(f"body parameter `{name}`")
