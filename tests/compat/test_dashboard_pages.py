"""The legacy dashboard's pages (issue 17): the shapes its code reads, served with real meaning."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from astropy.io import fits
from casacore import tables as ct

from compat_rest.visualization import human_size
from tests.compat.conftest import Demo, Graph


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
