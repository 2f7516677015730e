"""The data registry's write side over HTTP: finalize, publish, the auto-publish switch,
publish monitoring and retries; lineage from raw data to a catalog; the OpenAPI document."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import quote

import httpx

from tests.compat.conftest import Demo, assert_envelope
from tests.graph.conftest import Graph

REGISTER = """mutation($id: String!, $type: DataProductType!, $path: String!, $parents: [String!]) {
  registerDataProduct(dataId: $id, type: $type, stagePath: $path, parents: $parents) { dataId status } }"""


async def _register(
    graph: Graph, data_id: str, kind: str, path: Path, parents: list[str] | None = None
) -> None:
    await graph.data(REGISTER, id=data_id, type=kind, path=str(path), parents=parents)


async def test_finalize_publish_and_switch(api: httpx.AsyncClient, graph: Graph, demo: Demo) -> None:
    staged = demo.root / "catalogs" / f"test-{uuid.uuid4().hex[:8]}.csv"
    staged.write_text("source_id,ra_deg,dec_deg,flux_jy\n")
    data_id = f"catalog_{staged.stem}"
    await _register(graph, data_id, "CATALOG", staged)
    status = (await api.get(f"/api/data/{data_id}/auto-publish/status")).json()
    assert status["enabled"] and not status["criteria_met"]
    assert set(status["reasons"]) == {"not_finalized", "not_validated"}
    off = await api.post(f"/api/data/{data_id}/auto-publish/disable")
    assert off.json() == {**off.json(), "status": "disabled", "enabled": False}
    # The dashboard sends the states in the body; the legacy server read them from the query.
    done = (
        await api.post(f"/api/data/{data_id}/finalize", json={"validation_status_body": "validated"})
    ).json()
    assert done["finalized"] and not done["auto_published"] and done["validation_status"] == "validated"
    assert (await api.post(f"/api/data/{data_id}/auto-publish/enable")).json()["enabled"] is True
    again = (await api.post(f"/api/data/{data_id}/finalize", params={"qa_status": "passed"})).json()
    assert again["auto_published"] and again["status"] == "published"
    published = Path(again["published_path"])
    assert published.parent == demo.root / "products" / "catalogs"
    assert published.exists() and not staged.exists()  # noqa: ASYNC240
    assert_envelope(await api.post(f"/api/data/{data_id}/publish"), 409, "CONFLICT")
    assert_envelope(await api.post(f"/api/data/{data_id}/finalize"), 409)
    assert_envelope(await api.post("/api/data/no-such-product/publish"), 404)
    assert_envelope(await api.post(f"/api/data/{data_id}/finalize", params={"qa_status": "great"}), 422)


async def test_failed_publishes_are_recorded_and_retried(
    api: httpx.AsyncClient, graph: Graph, demo: Demo
) -> None:
    missing = demo.root / "images" / f"missing-{uuid.uuid4().hex[:8]}.fits"
    data_id = str(missing)
    await _register(graph, data_id, "IMAGE", missing)
    failed = await api.post(f"/api/data/{quote(data_id)}/publish")
    body = assert_envelope(failed, 409, "PUBLISH_FAILED")
    assert body["details"]["publish_attempts"] == 1 and "not on disk" in body["details"]["publish_error"]
    detail = (await api.get(f"/api/data/{quote(data_id)}")).json()
    assert detail["status"] == "staging" and detail["publish_attempts"] == 1 and detail["publish_failed_at"]
    listing = (await api.get("/api/monitoring/publish/failed")).json()
    assert data_id in {f["data_id"] for f in listing["failed_publishes"]}
    stats = (await api.get("/api/monitoring/publish/status")).json()
    assert stats["failed_publishes"] >= 1 and 0 <= stats["success_rate_percent"] <= 100
    assert_envelope(await api.post(f"/api/monitoring/publish/retry/{quote(data_id)}"), 409, "PUBLISH_FAILED")
    missing.write_bytes(b"SIMPLE  =                    T")  # the file turns up
    retried = (await api.post(f"/api/monitoring/publish/retry/{quote(data_id)}")).json()
    assert retried["retried"] and retried["status"] == "published" and retried["publish_attempts"] == 0
    everything = (await api.post("/api/monitoring/publish/retry-all", params={"limit": 5})).json()
    assert everything["total_attempted"] == everything["successful"] + everything["failed"]
    assert_envelope(await api.post("/api/monitoring/publish/retry/no-such-product"), 404)


async def test_a_staged_path_must_lie_in_the_staging_area(graph: Graph, demo: Demo) -> None:
    for path, code in (
        ("/etc/passwd", "NOT_FOUND"),
        (str(demo.root.parent / "elsewhere.csv"), "NOT_FOUND"),
        ("catalogs/../../x.csv", "BAD_PATH"),
        ("catalogs/a\x00.csv", "BAD_PATH"),
        ("", "BAD_PATH"),
    ):
        result = await graph.run(REGISTER, id=f"hostile-{uuid.uuid4().hex[:8]}", type="CATALOG", path=path)
        assert result.errors and result.errors[0].extensions["code"] == code, (path, result.errors)
    kept = await graph.data(
        REGISTER.replace("dataId status", "dataId stagePath"),
        id=f"relative-{uuid.uuid4().hex[:8]}",
        type="CATALOG",
        path="catalogs/later.csv",
    )
    # A relative path is kept as the real path under the data directory (the file may come later).
    assert kept["registerDataProduct"]["stagePath"] == str(demo.root.resolve() / "catalogs" / "later.csv")


async def test_lineage_runs_from_raw_data_to_a_catalog(graph: Graph, demo: Demo) -> None:
    catalog = next((demo.root / "catalogs").glob("mosaic_*.csv"))
    found = await graph.data(
        "query($id: String!) { dataProduct(dataId: $id) { ancestors(depth: 8) { dataId type } } }",
        id=f"catalog_{catalog.stem}",
    )
    kinds = {a["type"] for a in found["dataProduct"]["ancestors"]}
    assert {"MOSAIC", "IMAGE", "CALTABLE", "MS", "RAW"} <= kinds
    raw = next(a["dataId"] for a in found["dataProduct"]["ancestors"] if a["type"] == "RAW")
    down = await graph.data(
        "query($id: String!) { dataProduct(dataId: $id) { descendants { type } } }", id=raw
    )
    assert {"MS", "IMAGE", "MOSAIC", "CATALOG"} <= {d["type"] for d in down["dataProduct"]["descendants"]}


DOCUMENTED = [
    ("get", "/api/ms"),
    ("get", "/api/ms_index"),
    ("post", "/api/ms/discover"),
    ("get", "/api/ms/{ms_path}/metadata"),
    ("get", "/api/ms/{ms_path}/calibrator-matches"),
    ("get", "/api/ms/{ms_path}/existing-caltables"),
    ("post", "/api/ms/{ms_path}/validate-caltable"),
    ("get", "/api/control/ms/list"),
    ("get", "/api/qa/directories"),
    ("get", "/api/qa/fits/{path}"),
    ("get", "/api/qa/casa/{path}"),
    ("get", "/api/qa"),
    ("get", "/api/qa/file/{group}/{name}"),
    ("get", "/api/qa/thumbs"),
    ("get", "/api/qa/calibration/{ms_path}"),
    ("get", "/api/qa/calibration/{ms_path}/bandpass-plots"),
    ("get", "/api/qa/calibration/{ms_path}/bandpass-plots/{filename}"),
    ("get", "/api/qa/calibration/{ms_path}/spw-plot"),
    ("get", "/api/qa/calibration/{ms_path}/caltable-completeness"),
    ("get", "/api/qa/{ms_path}"),
    ("post", "/api/qa/notebook/generate"),
    ("get", "/api/data"),
    ("get", "/api/data/{data_id}"),
    ("post", "/api/data/{data_id}/finalize"),
    ("post", "/api/data/{data_id}/publish"),
    ("post", "/api/data/{data_id}/auto-publish/enable"),
    ("post", "/api/data/{data_id}/auto-publish/disable"),
    ("get", "/api/data/{data_id}/auto-publish/status"),
    ("get", "/api/data/{data_id}/lineage"),
    ("get", "/api/monitoring/publish/status"),
    ("get", "/api/monitoring/publish/failed"),
    ("post", "/api/monitoring/publish/retry/{data_id}"),
    ("post", "/api/monitoring/publish/retry-all"),
    ("get", "/api/caltables"),
    ("get", "/api/uvh5"),
    ("get", "/api/ws/status"),
    ("get", "/api/sse/status"),
]


async def test_every_documented_path_is_in_the_openapi_document(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/api/openapi.json")).json()["paths"]
    missing = [(m, p) for m, p in DOCUMENTED if m not in paths.get(p, {})]
    assert missing == []
    sse = paths["/api/sse/status"]["get"]
    assert "text/event-stream" in sse["responses"]["200"]["content"]
    assert "101" in paths["/api/ws/status"]["get"]["responses"]
    for method, path in DOCUMENTED:
        assert "501" not in paths[path][method]["responses"], path  # none is a placeholder


async def test_the_sse_channel_is_still_served_by_the_server(api: httpx.AsyncClient) -> None:
    async with api.stream("GET", "/api/sse/status") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/event-stream"
        )
        first = await anext(response.aiter_lines())
        assert first.startswith("data:") and '"connected"' in first
