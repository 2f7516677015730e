"""Plots: PNGs that decode at the size asked for, SVGs that parse, URLs from the graph, a cache."""

from __future__ import annotations

import io
from urllib.parse import quote
from xml.etree import ElementTree

import httpx
import numpy as np
from PIL import Image

from dsa110.plots.lightcurve import weighted_mean
from tests.compat.conftest import Demo, Graph, assert_envelope


def png(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(response.content))
    picture.load()  # decodes every pixel: a truncated or corrupt file fails here
    return picture


def test_weighted_mean_by_hand() -> None:
    # w = 1/sigma^2 = 1, 4, 100: (1*10 + 4*20 + 100*30) / 105 = 3090 / 105
    assert weighted_mean([10.0, 20.0, 30.0], [1.0, 0.5, 0.1]) == 3090 / 105
    assert weighted_mean([1.0], [0.0]) is None


async def test_light_curve_plot_from_the_graphs_url(api: httpx.AsyncClient, graph: Graph, demo: Demo) -> None:
    data = await graph.data(
        "query($s: String!) { source(sourceId: $s) { png: lightCurvePlotUrl svg: lightCurvePlotUrl(format: SVG,"
        " normalised: false) eseCandidates { lightCurvePlotUrl } } }",
        s=demo.candidate_source,
    )
    source = data["source"]
    quoted = quote(demo.candidate_source, safe="")
    assert source["png"] == f"/plots/sources/{quoted}/lightcurve.png?normalised=true"
    assert source["eseCandidates"][0]["lightCurvePlotUrl"] == source["png"]
    picture = png(await api.get(source["png"]))
    assert picture.size == (900, 500) and picture.mode in ("RGBA", "RGB")
    pixels = np.asarray(picture.convert("RGB"), dtype=float)
    assert pixels.std() > 10  # something is drawn, not a blank canvas
    small = png(await api.get(f"{source['png']}&width=400&height=300"))
    assert small.size == (400, 300)
    svg = await api.get(source["svg"])
    assert svg.headers["content-type"] == "image/svg+xml"
    root = ElementTree.fromstring(svg.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


async def test_sky_map_and_the_cache(api: httpx.AsyncClient, graph: Graph) -> None:
    url = (await graph.data("{ eseSkyMapUrl }"))["eseSkyMapUrl"]
    assert url == "/plots/skymap.png"
    first = await api.get(f"{url}?width=1200&height=400")
    assert png(first).size == (1200, 400)
    etag = first.headers["etag"]
    again = await api.get(f"{url}?width=1200&height=400")
    assert again.content == first.content and again.headers["etag"] == etag
    unchanged = await api.get(f"{url}?width=1200&height=400", headers={"if-none-match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b""
    # What caches and browsers also send: a list, a weak tag, any tag.
    for header in (f'"other", {etag}', f"W/{etag}", "*"):
        listed = await api.get(f"{url}?width=1200&height=400", headers={"if-none-match": header})
        assert listed.status_code == 304, header
    stale = await api.get(f"{url}?width=1200&height=400", headers={"if-none-match": '"other", W/"x"'})
    assert stale.status_code == 200 and stale.content == first.content
    other = await api.get(f"{url}?width=1000&height=400")
    assert other.headers["etag"] != etag


async def test_bad_plot_requests(api: httpx.AsyncClient) -> None:
    assert_envelope(await api.get("/plots/skymap.gif"), 422, "VALIDATION_ERROR")
    assert_envelope(await api.get("/plots/skymap.png?width=100000"), 422, "VALIDATION_ERROR")
    assert_envelope(await api.get("/plots/skymap.png?width=-5"), 422, "VALIDATION_ERROR")
    assert_envelope(await api.get("/plots/skymap.png?height=abc"), 422, "VALIDATION_ERROR")
    missing = await api.get("/plots/sources/NVSS%20J000000.0%2B000000/lightcurve.png")
    assert_envelope(missing, 404, "NOT_FOUND")
    assert_envelope(
        await api.get("/plots/sources/x/lightcurve.png?normalised=maybe"), 422, "VALIDATION_ERROR"
    )
