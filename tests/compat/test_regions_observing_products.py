"""Regions CRUD and statistics; pointing and observing; products and data; catalog overlay."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from compat_rest import observing
from tests.compat.conftest import Graph, assert_envelope


async def _image(graph: Graph) -> dict[str, Any]:
    data = await graph.data("{ images(first: 1) { nodes { imageId path centerRaDeg centerDecDeg } } }")
    return data["images"]["nodes"][0]  # type: ignore[no-any-return]


def _circle(image: dict[str, Any], radius_arcsec: float) -> dict[str, Any]:
    """A legacy flat-form circle at the image centre (the image named by the caller)."""
    return {
        "region_type": "circle",
        "ra_deg": image["centerRaDeg"],
        "dec_deg": image["centerDecDeg"],
        "radius_arcsec": radius_arcsec,
    }


async def test_regions_crud_and_statistics(api: httpx.AsyncClient, graph: Graph) -> None:
    image = await _image(graph)
    circle = {"image_id": image["imageId"], **_circle(image, 600.0)}
    created = await api.post("/api/regions", json=circle)
    assert created.status_code == 200, created.text
    region_id = created.json()["id"]
    region = (await api.get(f"/api/regions/{region_id}")).json()
    assert (
        region["image_path"] == image["path"]
        and region["type"] == "circle"
        and region["radius_arcsec"] == 600.0
    )
    listed = (await api.get("/api/regions", params={"image_id": image["imageId"]})).json()
    assert region_id in [r["id"] for r in listed["regions"]] and listed["count"] == len(listed["regions"])
    stats = (await api.get(f"/api/regions/{region_id}/statistics")).json()
    data = await graph.data(
        "query($r: Int!) { region(regionId: $r) { statistics { mean std max nPixels } } }", r=region_id
    )
    expected = data["region"]["statistics"]
    assert stats["statistics"]["mean"] == stats["mean"] == expected["mean"]
    assert stats["n_pixels"] == stats["statistics"]["pixel_count"] == expected["nPixels"] > 0
    updated = (await api.put(f"/api/regions/{region_id}", json={"name": "renamed"})).json()
    assert updated["updated"] is True and updated["region"]["name"] == "renamed"
    rect = {
        "image_id": image["imageId"],
        "type": "rectangle",
        "coordinates": {
            "ra_deg": image["centerRaDeg"],
            "dec_deg": image["centerDecDeg"],
            "width_deg": 0.2,
            "height_deg": 0.1,
            "angle_deg": 30,
        },
    }
    rect_body = (await api.post("/api/regions", json=rect)).json()
    assert rect_body["region"]["shape"]["width_arcsec"] == 720.0
    for rid in (region_id, rect_body["id"]):
        assert (await api.delete(f"/api/regions/{rid}")).json()["deleted"] is True
    assert_envelope(await api.get(f"/api/regions/{region_id}"), 404, "NOT_FOUND")
    assert_envelope(
        await api.post(
            "/api/regions",
            json={"image_id": image["imageId"], "type": "polygon", "coordinates": {"vertices": [[1, 2]]}},
        ),
        400,
    )


async def test_regions_by_image_path(api: httpx.AsyncClient, graph: Graph) -> None:
    """The legacy form names the image by its file path, for listing and for creating."""
    image = await _image(graph)
    circle = {"image_path": image["path"], **_circle(image, 60.0)}
    created = await api.post("/api/regions", json=circle)
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["region"]["image_id"] == image["imageId"] and body["region"]["image_path"] == image["path"]
    try:
        by_path = (await api.get("/api/regions", params={"image_path": image["path"]})).json()
        by_id = (await api.get("/api/regions", params={"image_id": image["imageId"]})).json()
        assert body["id"] in [r["id"] for r in by_path["regions"]]
        assert by_path == by_id
        circles = (
            await api.get("/api/regions", params={"image_path": image["path"], "region_type": "circle"})
        ).json()
        assert body["id"] in [r["id"] for r in circles["regions"]]
    finally:
        assert (await api.delete(f"/api/regions/{body['id']}")).json()["deleted"] is True


async def test_regions_without_an_image_lists_every_region(api: httpx.AsyncClient, graph: Graph) -> None:
    """`image_path` is optional in the document, and the dashboard's region tools call bare
    `GET /api/regions`: every region, newest first (it used to be a 422)."""
    images = (await graph.data("{ images(first: 2) { nodes { imageId path centerRaDeg centerDecDeg } } }"))[
        "images"
    ]["nodes"]
    made = []
    for image, radius in zip(images, (60.0, 90.0), strict=True):
        created = await api.post(
            "/api/regions", json={"image_id": image["imageId"], **_circle(image, radius)}
        )
        assert created.status_code == 200, created.text
        made.append(created.json()["id"])
    rect = {
        "image_id": images[0]["imageId"],
        "type": "rectangle",
        "coordinates": {"ra_deg": images[0]["centerRaDeg"], "dec_deg": images[0]["centerDecDeg"]}
        | {"width_deg": 0.1, "height_deg": 0.1},
    }
    made.append((await api.post("/api/regions", json=rect)).json()["id"])
    try:
        listed = await api.get("/api/regions")
        assert listed.status_code == 200, listed.text
        body = listed.json()
        ids = [r["id"] for r in body["regions"]]
        assert ids[:3] == made[::-1] and body["count"] == len(ids)  # newest first
        assert {r["image_path"] for r in body["regions"][:3]} == {i["path"] for i in images}
        circles = (await api.get("/api/regions", params={"region_type": "circle"})).json()
        assert [r["id"] for r in circles["regions"]][:2] == made[1::-1]
        assert all(r["type"] == "circle" for r in circles["regions"])
    finally:
        for region_id in made:
            assert (await api.delete(f"/api/regions/{region_id}")).json()["deleted"] is True


async def test_unknown_and_hostile_image_paths_are_4xx(api: httpx.AsyncClient, graph: Graph) -> None:
    image = await _image(graph)
    shape = _circle(image, 60.0)
    dotdot = image["path"].rsplit("/", 1)[0] + "/../../" + image["path"].rsplit("/", 1)[1]
    for path in ("/no/such/image.fits", dotdot, image["path"] + "/..", image["path"].upper()):
        assert_envelope(await api.get("/api/regions", params={"image_path": path}), 404, "NOT_FOUND")
        assert_envelope(await api.post("/api/regions", json={"image_path": path, **shape}), 404, "NOT_FOUND")
    for path in ("a\x00b", "/data/" + "x" * 5000, "line\nbreak"):
        assert_envelope(await api.get("/api/regions", params={"image_path": path}), 422, "VALIDATION_ERROR")
        assert_envelope(await api.post("/api/regions", json={"image_path": path, **shape}), 422)
    both = {"image_id": image["imageId"], "image_path": image["path"]}
    assert_envelope(await api.get("/api/regions", params=both), 422)
    assert_envelope(await api.post("/api/regions", json={**both, **shape}), 422)
    assert_envelope(await api.post("/api/regions", json={"image_path": 7, **shape}), 422)
    # A bad shape is refused before the path is looked up: no region is written.
    bad_shape = {"image_path": image["path"], "type": "polygon", "coordinates": {"vertices": [[1, 2]]}}
    assert_envelope(await api.post("/api/regions", json=bad_shape), 400)


async def test_graph_image_by_path(graph: Graph) -> None:
    image = await _image(graph)
    found = await graph.data("query($p: String!) { image(path: $p) { imageId path } }", p=image["path"])
    assert found["image"] == {"imageId": image["imageId"], "path": image["path"]}
    for variables, code in (
        ({"p": "/no/such.fits"}, "NOT_FOUND"),
        ({"p": "a\x00b"}, "BAD_USER_INPUT"),  # PostgreSQL refuses NUL: refused before the query
        ({"p": "x" * 5000}, "BAD_USER_INPUT"),
        ({"p": ""}, "BAD_USER_INPUT"),
    ):
        result = await graph.run("query($p: String!) { image(path: $p) { imageId } }", **variables)
        assert result.errors[0].extensions["code"] == code, variables
    for document in ("{ image { imageId } }", '{ image(imageId: 1, path: "x") { imageId } }'):
        result = await graph.run(document)
        assert result.errors[0].extensions["code"] == "BAD_USER_INPUT"


async def test_pointing_history_and_calibrator_matches(api: httpx.AsyncClient, graph: Graph) -> None:
    data = await graph.data(
        "{ groups(first: 3, orderBy: GROUP_ID, direction: ASC) { nodes { groupId midMjd measurementSets { raDeg } } } }"
    )
    nodes = data["groups"]["nodes"]
    body = (
        await api.get(
            "/api/pointing_history", params={"start_mjd": nodes[0]["midMjd"], "end_mjd": nodes[-1]["midMjd"]}
        )
    ).json()
    assert [i["group_id"] for i in body["items"]] == [n["groupId"] for n in nodes if n["measurementSets"]]
    assert body["items"][0]["timestamp"] == nodes[0]["midMjd"]
    assert body["truncated"] is False
    assert_envelope(await api.get("/api/pointing_history"), 422, "VALIDATION_ERROR")
    matches = (await api.get("/api/calibrator_matches", params={"limit": 5, "matched_only": "true"})).json()
    assert all(item["matched"] for item in matches["items"])
    assert {m["target_group_id"] for m in matches["matches"]} <= {i["group_id"] for i in matches["items"]}


async def test_a_pointing_history_longer_than_its_cap_says_it_is_cut(
    api: httpx.AsyncClient, graph: Graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = await graph.data(
        "{ groups(first: 5, orderBy: GROUP_ID, direction: ASC) { nodes { groupId midMjd measurementSets { raDeg } } } }"
    )
    nodes = [n for n in data["groups"]["nodes"] if n["measurementSets"]]
    assert len(nodes) >= 3
    monkeypatch.setattr(observing, "PAGE", 3)  # a page past the cap: cut at the cap
    monkeypatch.setattr(observing, "MAX_GROUPS", 2)
    params = {"start_mjd": nodes[0]["midMjd"], "end_mjd": nodes[-1]["midMjd"]}
    body = (await api.get("/api/pointing_history", params=params)).json()
    assert body["truncated"] is True and body["limit"] == 2
    assert [i["group_id"] for i in body["items"]] == [n["groupId"] for n in nodes[:2]]


async def test_observation_timeline_and_plot(api: httpx.AsyncClient, graph: Graph) -> None:
    total = (await graph.data("{ groups(first: 0) { totalCount } }"))["groups"]["totalCount"]
    body = (await api.get("/api/observation_timeline", params={"gap_threshold_hours": 1.0})).json()
    assert body["unique_timestamps"] == total
    assert sum(s["n_groups"] for s in body["observations"]) == total
    assert len(body["gaps"]) == len(body["observations"]) - 1
    assert all(g["duration_hours"] > 1.0 for g in body["gaps"])
    fine = (await api.get("/api/observation_timeline", params={"gap_threshold_hours": 0.01})).json()
    assert len(fine["observations"]) >= len(body["observations"])
    plot = await api.get("/api/observation_timeline/plot")
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")


async def test_group_detail_and_reprocess(api: httpx.AsyncClient, graph: Graph) -> None:
    data = await graph.data(
        "{ groups(first: 1, filter: {states: [FAILED]}) { nodes { groupId presentSubbands } } }"
    )
    group = data["groups"]["nodes"][0]
    body = (await api.get(f"/api/groups/{group['groupId']}")).json()
    assert body["group_id"] == group["groupId"] and body["state"] == "failed"
    assert body["subbands_present"] == group["presentSubbands"] and body["expected_subbands"] == 16
    done = (await api.post(f"/api/reprocess/{group['groupId']}")).json()
    assert done["ok"] is True and done["state"] == "pending"
    assert (await api.get(f"/api/groups/{group['groupId']}")).json()["state"] == "pending"
    assert_envelope(await api.get("/api/groups/1999-01-01T00:00:00"), 404, "NOT_FOUND")


async def test_products_and_data_registry(api: httpx.AsyncClient, graph: Graph) -> None:
    products = (await api.get("/api/products", params={"limit": 3})).json()
    latest = await graph.data("{ images(first: 3, orderBy: CREATED_AT, direction: DESC) { nodes { path } } }")
    assert [p["path"] for p in products["items"]] == [n["path"] for n in latest["images"]["nodes"]]
    listing = (await api.get("/api/data", params={"data_type": "ms", "limit": 2})).json()
    count = await graph.data("{ dataProducts(first: 0, filter: {types: [MS]}) { totalCount } }")
    assert listing["total"] == count["dataProducts"]["totalCount"] and len(listing["items"]) == 2
    data_id = listing["items"][0]["data_id"]
    detail = (await api.get(f"/api/data/{data_id}")).json()
    assert detail["data_id"] == data_id and detail["data_type"] == "ms"
    lineage = (await api.get(f"/api/data/{data_id}/lineage")).json()
    assert lineage["data_id"] == data_id and lineage["children"] == detail["lineage"]["children"]
    status = (await api.get(f"/api/data/{data_id}/auto-publish/status")).json()
    assert status["enabled"] == detail["auto_publish_enabled"]
    assert_envelope(await api.get("/api/data/no/such/product"), 404, "NOT_FOUND")


async def test_catalog_overlay(api: httpx.AsyncClient, graph: Graph) -> None:
    image = await _image(graph)
    params = {"ra": image["centerRaDeg"], "dec": image["centerDecDeg"], "radius": 1.5}
    body = (await api.get("/api/catalog/overlay", params=params)).json()
    data = await graph.data(
        "query($ra: Float!, $dec: Float!) { catalogSources(raDeg: $ra, decDeg: $dec, radiusArcsec: 5400)"
        " { entry { name } } }",
        ra=image["centerRaDeg"],
        dec=image["centerDecDeg"],
    )
    assert body["count"] == len(data["catalogSources"]) == len(body["sources"])
    assert (body["ra_center"], body["dec_center"], body["radius_deg"]) == (
        image["centerRaDeg"],
        image["centerDecDeg"],
        1.5,
    )
    if body["sources"]:
        assert set(body["sources"][0]) >= {"ra_deg", "dec_deg", "flux_mjy", "source_id", "catalog_type"}
    assert_envelope(await api.get("/api/catalog/overlay", params={"ra": 10}), 422)
