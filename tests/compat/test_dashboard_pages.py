"""The legacy dashboard's pages (issue 17): the shapes its code reads, served with real meaning."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
from astropy.io import fits
from casacore import tables as ct

from compat_rest.visualization import human_size
from tests.compat.conftest import Demo, Graph, assert_envelope


async def test_lineage_groups_ids_by_relationship_as_the_lineage_page_reads(
    api: httpx.AsyncClient, graph: Graph
) -> None:
    data = await graph.data(
        "{ dataProducts(first: 500) { nodes { dataId parents { dataId } children { dataId } } } }"
    )
    linked = [n for n in data["dataProducts"]["nodes"] if n["parents"] and n["children"]]
    assert linked, "the demo links raw -> MS -> tables -> image products"
    node = linked[0]
    body = (await api.get(f"/api/data/{node['dataId']}/lineage")).json()
    for key, graph_key in (("parents", "parents"), ("children", "children")):
        groups = body[key]
        assert isinstance(groups, dict) and groups
        assert all(isinstance(rel, str) and isinstance(ids, list) for rel, ids in groups.items())
        flat = sorted(i for ids in groups.values() for i in ids)
        assert flat == sorted(p["dataId"] for p in node[graph_key])
    detail = (await api.get(f"/api/data/{node['dataId']}")).json()
    assert detail["lineage"]["parents"] == body["parents"]


async def test_visualization_browser_in_the_frontends_shapes(api: httpx.AsyncClient, demo: Demo) -> None:
    listing = (await api.get("/api/visualization/browse", params={"path": str(demo.root / "images")})).json()
    fits_files = sorted((demo.root / "images").glob("*.fits"))
    assert listing["fits_count"] == len(fits_files) and listing["total_files"] >= len(fits_files)
    entry = next(e for e in listing["entries"] if e["name"] == fits_files[0].name)
    assert entry["type"] == "fits" and entry["is_dir"] is False
    assert entry["size"] == human_size(fits_files[0].stat().st_size) and entry["size"].endswith("B")
    only = (
        await api.get(
            "/api/visualization/browse",
            params={"path": str(demo.root / "images"), "include_pattern": fits_files[0].name[:12] + "*"},
        )
    ).json()
    assert {e["name"] for e in only["entries"]} == {
        p.name for p in fits_files if p.name.startswith(fits_files[0].name[:12])
    } & {e["name"] for e in listing["entries"]}

    info = (await api.get("/api/visualization/fits/info", params={"path": str(fits_files[0])})).json()
    data = fits.getdata(fits_files[0])
    assert info["exists"] and info["shape"] == list(data.shape) and info["naxis"] == data.ndim
    assert "NAXIS1" in info["header_keys"]

    ms = sorted((demo.root / "ms").iterdir())[0]
    table = (await api.get("/api/visualization/casatable/info", params={"path": str(ms)})).json()
    with ct.table(str(ms), ack=False) as opened:
        assert table["nrows"] == opened.nrows() and set(table["columns"]) == set(opened.colnames())
    assert table["is_writable"] is False

    outside = await api.get("/api/visualization/fits/info", params={"path": "/etc/passwd"})
    assert outside.status_code in (403, 404) and outside.json()["code"]


def test_human_size_by_hand() -> None:
    assert human_size(0) == "0 B" and human_size(1023) == "1023 B"
    assert human_size(1536) == "1.5 KB" and human_size(3 * 1024**3) == "3.0 GB"
    assert human_size(None) == ""


async def test_image_qa_of_an_ms_as_the_qa_page_reads_it(api: httpx.AsyncClient, graph: Graph) -> None:
    data = await graph.data("{ measurementSets(first: 500) { nodes { path images { imageId } } } }")
    imaged = [n["path"] for n in data["measurementSets"]["nodes"] if n["images"]]
    on_disk = [path for path in imaged if Path(path).is_dir()]  # noqa: ASYNC240
    assert on_disk, "the demo writes real Measurement Sets for some imaged groups"
    ms_path = on_disk[0]
    both = (await api.get(f"/api/qa/{ms_path.lstrip('/')}")).json()
    alone = await api.get(f"/api/qa/image/{ms_path.lstrip('/')}")
    assert alone.status_code == 200, alone.text
    assert alone.json() == both["image_qa"] and alone.json()["image_path"].endswith(".fits")
    # The legacy ImageQA model, in its order; the MS browser's QA panel reads ms_path and
    # overall_quality (required in the dashboard's type), which the headless run found missing.
    assert list(alone.json()) == [
        "ms_path",
        "job_id",
        "image_path",
        "rms_noise",
        "peak_flux",
        "dynamic_range",
        "beam_major",
        "beam_minor",
        "beam_pa",
        "num_sources",
        "thumbnail_path",
        "overall_quality",
        "timestamp",
    ]
    assert alone.json()["ms_path"] == both["ms_path"] == ms_path
    assert alone.json()["overall_quality"] in ("excellent", "good", "marginal", "poor", "unknown")


async def test_directory_thumbnails_page_links_real_pngs(api: httpx.AsyncClient, demo: Demo) -> None:
    images = demo.root / "images"
    page = await api.get("/api/visualization/directory/thumbnails", params={"path": str(images), "limit": 2})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    sources = re.findall(r'src="([^"]+)"', page.text)
    assert len(sources) == 2 and all(s.startswith("/api/qa/thumbnail?path=") for s in sources)
    png = await api.get(sources[0].replace("&amp;", "&"))
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    for params, status in (
        ({"path": "/etc"}, 403),
        ({"path": str(images / ".." / ".." / ".." / "etc")}, 422),
        ({"path": str(images), "limit": 100000}, 422),
        ({"path": str(images), "size": 5}, 422),
        ({"path": "x" * 5000}, 422),
    ):
        bad = await api.get("/api/visualization/directory/thumbnails", params=params)
        assert bad.status_code in (status, 400, 404) and bad.status_code < 500, (params, bad.text)
        assert bad.json()["code"], (params, bad.text)


async def test_doubled_api_prefix_answers_as_the_single_one(api: httpx.AsyncClient, graph: Graph) -> None:
    """The legacy dashboard calls some paths as `/api/api/...` (legacy-pipeline-facts §6)."""
    image = (await graph.data("{ images(first: 1) { nodes { imageId } } }"))["images"]["nodes"][0]
    source = (await graph.data("{ sources(first: 1) { nodes { sourceId } } }"))["sources"]["nodes"][0]
    # GenericTable's query: page, page_size, and the search (its box, empty) and ordering it
    # always adds (both applied since 26ac0d0: test_rest_fidelity_sweep).
    table = {"page": 1, "page_size": 25, "search": "", "ordering": "-snr"}
    for path, params in (
        (f"/images/{image['imageId']}/measurements", table),
        (f"/sources/{source['sourceId']}/detections", table),
        ("/calibrator_matches", {"limit": 50, "matched_only": "true"}),
    ):
        single, doubled = (
            await api.get(f"/api{path}", params=params),
            await api.get(f"/api/api{path}", params=params),
        )
        assert doubled.status_code == single.status_code == 200, (path, doubled.text)
        assert doubled.json() == single.json()
    assert (await api.get(f"/api/api/images/{image['imageId']}/measurements", params=table)).json()["items"]
    body = {"source_id": source["sourceId"], "limit": 100}
    searched = await api.post("/api/api/sources/search", json=body)
    assert searched.status_code == 200 and searched.json()["sources"][0]["flux_points"]
    for missing in ("/api/api/no/such/path", "/api/api", "/api/api/api/status"):
        assert_envelope(await api.get(missing), 404, "NOT_FOUND")


async def test_source_search_takes_the_sources_pages_limit(api: httpx.AsyncClient, graph: Graph) -> None:
    """The sources page asks for 1000 rows when its advanced filters are open."""
    total = (await graph.data("{ sources(first: 0) { totalCount } }"))["sources"]["totalCount"]
    body = (await api.post("/api/sources/search", json={"limit": 1000})).json()
    assert body["total"] == total and len(body["sources"]) == min(total, 1000) and body["limit"] == 1000
    ids = [s["source_id"] for s in body["sources"]]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    tail = (await api.post("/api/sources/search", json={"limit": 1000, "offset": total - 2})).json()
    assert [s["source_id"] for s in tail["sources"]] == ids[-2:]
    assert_envelope(await api.post("/api/sources/search", json={"limit": 1001}), 422, "VALIDATION_ERROR")


async def test_uvh5_legacy_incoming_directory_is_this_deployments(api: httpx.AsyncClient) -> None:
    """The data browser's incoming tab asks for the legacy `/data/incoming` by name."""
    page = {"limit": 50, "offset": 0}
    ours = await api.get("/api/uvh5", params=page)
    for legacy in ("/data/incoming", "/data/incoming/"):
        asked = await api.get("/api/uvh5", params={"input_dir": legacy, **page})
        assert asked.status_code == 200, asked.text
        assert asked.json() == ours.json()
    assert_envelope(await api.get("/api/uvh5", params={"input_dir": "/data/incoming/x"}), 404)


async def test_image_catalog_overlay_as_the_sky_view_reads_it(api: httpx.AsyncClient, graph: Graph) -> None:
    """`/qa/images/{id}/catalog-overlay`: catalog sources on the image at their pixel positions."""
    image = (await graph.data("{ images(first: 1) { nodes { imageId path imsizeX imsizeY } } }"))["images"][
        "nodes"
    ][0]
    expected = await graph.data(
        'query($i: Int!) { image(imageId: $i) { catalogOverlay(catalog: "nvss") { x y entry { name } } } }',
        i=image["imageId"],
    )
    body = (
        await api.get(f"/api/qa/images/{image['imageId']}/catalog-overlay", params={"catalog": "nvss"})
    ).json()
    assert [s["name"] for s in body["sources"]] == [
        e["entry"]["name"] for e in expected["image"]["catalogOverlay"]
    ]
    assert body["sources"], "the demo's images lie on its catalog"
    for source in body["sources"]:
        assert {"x", "y", "ra", "dec", "flux_jy", "name"} <= set(source)
        assert -0.5 <= source["x"] < image["imsizeX"] - 0.5 and -0.5 <= source["y"] < image["imsizeY"] - 0.5
    info = body["image_info"]
    assert (info["nx"], info["ny"]) == (image["imsizeX"], image["imsizeY"]) and info["width_deg"] > 0
    assert body["catalog_used"] == "nvss"
    by_path = await api.get(f"/api/qa/images/{quote(image['path'], safe='')}/catalog-overlay")
    assert by_path.status_code == 200 and by_path.json() == body
    bright = (
        await api.get(f"/api/qa/images/{image['imageId']}/catalog-overlay", params={"min_flux_jy": 1e6})
    ).json()
    assert bright["sources"] == []
    assert_envelope(await api.get("/api/qa/images/999999/catalog-overlay"), 404, "NOT_FOUND")
    assert_envelope(await api.get("/api/qa/images/1/catalog-overlay", params={"catalog": "x"}), 422)


async def test_casa_table_viewer_shows_the_first_rows_and_columns(api: httpx.AsyncClient, demo: Demo) -> None:
    """The QA page's table viewer asks `/api/api/visualization/casatable/view` for HTML."""
    ms = next(p for p in sorted((demo.root / "ms").iterdir()) if p.suffix == ".ms")
    page = await api.get(
        "/api/api/visualization/casatable/view", params={"path": str(ms), "max_rows": 3, "max_cols": 4}
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    with ct.table(str(ms), ack=False) as opened:
        names, nrows = opened.colnames()[:4], opened.nrows()
        first = opened.getcell(names[-1], 0)
    headers = re.findall(r"<th>([^<]*)</th>", page.text)
    assert headers == ["row", *names]
    rows = re.findall(r"<tr><td>(\d+)</td>", page.text)
    assert rows == [str(i) for i in range(min(3, nrows))]
    assert f"of {nrows}" in page.text and f"<td>{json.dumps(np.asarray(first).tolist())}</td>" in page.text
    outside = await api.get("/api/visualization/casatable/view", params={"path": "/etc"})
    assert outside.status_code in (403, 404) and outside.json()["code"]
    too_many = await api.get("/api/visualization/casatable/view", params={"path": str(ms), "max_rows": 1000})
    assert_envelope(too_many, 422, "VALIDATION_ERROR")
