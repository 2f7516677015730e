"""Image analysis through the graph and the file routes, on FITS files written by the demo."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from astropy.io import fits

from tests.graph.conftest import Graph

BRIGHT = """{ sources(first: 1, orderBy: CATALOG_FLUX, direction: DESC, filter: {nEpochsMin: 1}) { nodes {
  sourceId raDeg decDeg measurements(first: 1) { nodes { peakFluxJy image { imageId path beamMajorArcsec } } } } } }"""


async def _bright(graph: Graph) -> tuple[dict, dict]:
    source = (await graph.data(BRIGHT))["sources"]["nodes"][0]
    return source, source["measurements"]["nodes"][0]


async def test_gaussian_fit_recovers_the_measured_source(image_graph: Graph) -> None:
    source, measurement = await _bright(image_graph)
    data = await image_graph.data(
        """query($i: Int!, $ra: Float!, $dec: Float!) { image(imageId: $i) {
             fit(raDeg: $ra, decDeg: $dec, boxArcsec: 1200) { peak peakErr raDeg decDeg fwhmMajorArcsec unit } } }""",
        i=measurement["image"]["imageId"],
        ra=source["raDeg"],
        dec=source["decDeg"],
    )
    fit = data["image"]["fit"]
    assert fit["unit"].lower().startswith("jy")
    assert fit["peak"] == pytest.approx(measurement["peakFluxJy"], rel=0.2, abs=5 * fit["peakErr"])
    assert abs(fit["raDeg"] - source["raDeg"]) * np.cos(np.radians(source["decDeg"])) * 3600 < 60
    assert fit["fwhmMajorArcsec"] == pytest.approx(measurement["image"]["beamMajorArcsec"], rel=0.3)


async def test_region_lifecycle_and_statistics(image_graph: Graph) -> None:
    source, measurement = await _bright(image_graph)
    image_id = measurement["image"]["imageId"]
    shape = {"type": "circle", "ra_deg": source["raDeg"], "dec_deg": source["decDeg"], "radius_arcsec": 300.0}
    created = await image_graph.data(
        """mutation($i: Int!, $s: JSON!) { createRegion(imageId: $i, name: "src", shape: $s, createdBy: "test") {
             regionId type statistics { nPixels max mean unit } } }""",
        i=image_id,
        s=shape,
    )
    region = created["createRegion"]
    assert region["type"] == "circle"
    stats = region["statistics"]
    assert stats["nPixels"] > 0
    # the brightest pixel in a circle on the source is at least the forced peak (minus noise)
    assert stats["max"] >= 0.8 * measurement["peakFluxJy"]
    with fits.open(measurement["image"]["path"]) as hdul:
        data = np.squeeze(hdul[0].data)
    assert stats["max"] <= float(np.nanmax(data)) + 1e-6

    listed = await image_graph.data(
        "query($i: Int!) { image(imageId: $i) { regions { regionId name } } }", i=image_id
    )
    assert [r["regionId"] for r in listed["image"]["regions"]] == [region["regionId"]]
    renamed = await image_graph.data(
        'mutation($r: Int!) { updateRegion(regionId: $r, name: "renamed") { name updatedAt } }',
        r=region["regionId"],
    )
    assert renamed["updateRegion"]["name"] == "renamed" and renamed["updateRegion"]["updatedAt"].endswith("Z")
    deleted = await image_graph.data(
        "mutation($r: Int!) { deleteRegion(regionId: $r) }", r=region["regionId"]
    )
    assert deleted["deleteRegion"] is True
    again = await image_graph.run("mutation($r: Int!) { deleteRegion(regionId: $r) }", r=region["regionId"])
    assert again.errors[0].extensions["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("shape", "code"),
    [
        ({"type": "hexagon"}, "BAD_REGION"),
        ({"type": "circle", "ra_deg": 10, "dec_deg": 95, "radius_arcsec": 5}, "BAD_REGION"),
        ({"type": "circle", "ra_deg": 10, "dec_deg": 40, "radius_arcsec": -5}, "BAD_REGION"),
        ({"type": "polygon", "vertices": [[0, 0]] * 5000}, "BAD_REGION"),
        ("not an object", "BAD_REGION"),
    ],
)
async def test_bad_region_shapes_are_refused(image_graph: Graph, shape: object, code: str) -> None:
    result = await image_graph.run(
        'mutation($s: JSON!) { createRegion(imageId: 1, name: "x", shape: $s) { regionId } }', s=shape
    )
    assert result.errors and result.errors[0].extensions["code"] == code


async def test_profile_through_a_source_peaks_at_the_source(image_graph: Graph) -> None:
    source, measurement = await _bright(image_graph)
    ra, dec = source["raDeg"], source["decDeg"]
    data = await image_graph.data(
        """query($i: Int!, $p: [SkyPoint!]!) { image(imageId: $i) {
             profile(kind: LINE, points: $p) { unit points { distanceArcsec value error } } } }""",
        i=measurement["image"]["imageId"],
        p=[{"raDeg": ra - 0.2, "decDeg": dec}, {"raDeg": ra + 0.2, "decDeg": dec}],
    )
    points = [p for p in data["image"]["profile"]["points"] if p["value"] is not None]
    peak = max(points, key=lambda p: p["value"])
    total = points[-1]["distanceArcsec"]
    assert abs(peak["distanceArcsec"] - total / 2) < 0.15 * total
    assert all(p["error"] is not None and p["error"] > 0 for p in points)


async def test_cutouts_and_fits_downloads(image_graph: Graph, image_client: httpx.AsyncClient) -> None:
    source, measurement = await _bright(image_graph)
    stamps = await image_graph.data(
        "query($s: String!) { source(sourceId: $s) { postageStamps(sizeArcsec: 900, limit: 2) { imageId fitsUrl pngUrl } } }",
        s=source["sourceId"],
    )
    stamp = stamps["source"]["postageStamps"][0]
    png = await image_client.get(stamp["pngUrl"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    cut = await image_client.get(stamp["fitsUrl"])
    assert cut.status_code == 200
    with fits.open(io.BytesIO(cut.content)) as hdul:
        assert hdul[0].header["CTYPE1"].startswith("RA---")
        assert "BMAJ" in hdul[0].header
        assert hdul[0].data.shape[0] > 3
    whole = await image_client.get(f"/files/images/{measurement['image']['imageId']}.fits")
    assert whole.status_code == 200
    assert whole.content == Path(measurement["image"]["path"]).read_bytes()  # noqa: ASYNC240


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/files/images/99999999.fits", 404),
        ("/files/images/..%2F..%2Fetc%2Fpasswd.fits", 404),
        ("/files/mosaics/abc.fits", 404),
        ("/cutouts/images/1.png?ra=nan&dec=42&size=60", 400),
        ("/cutouts/images/1.png?ra=1&dec=42", 400),
        ("/cutouts/images/1.png?ra=1e400&dec=42&size=60", 400),
        ("/cutouts/images/1.gif?ra=1&dec=42&size=60", 400),
        ("/cutouts/images/1.png?ra=10&dec=-80&size=60", 404),
        ("/cutouts/images/1.png?ra=10&dec=42&size=-1", 400),
    ],
)
async def test_bad_file_requests_are_4xx_with_a_code(
    image_client: httpx.AsyncClient, url: str, status: int
) -> None:
    response = await image_client.get(url)
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["extensions"]["code"]


async def test_catalog_overlay_and_cone(image_graph: Graph) -> None:
    source, measurement = await _bright(image_graph)
    overlay = await image_graph.data(
        "query($i: Int!) { image(imageId: $i) { imsizeX imsizeY catalogOverlay(limit: 500) { x y entry { name fluxJy } } } }",
        i=measurement["image"]["imageId"],
    )
    image = overlay["image"]
    assert image["catalogOverlay"]
    assert all(
        -0.5 <= e["x"] < image["imsizeX"] - 0.5 and -0.5 <= e["y"] < image["imsizeY"] - 0.5
        for e in image["catalogOverlay"]
    )
    fluxes = [e["entry"]["fluxJy"] for e in image["catalogOverlay"]]
    assert fluxes == sorted(fluxes, reverse=True)
    cone = await image_graph.data(
        "query($ra: Float!, $dec: Float!) { catalogSources(raDeg: $ra, decDeg: $dec, radiusArcsec: 30) { separationArcsec entry { name } } }",
        ra=source["raDeg"],
        dec=source["decDeg"],
    )
    assert cone["catalogSources"][0]["separationArcsec"] < 1.0


async def test_external_catalogs_are_unavailable_offline(graph: Graph) -> None:
    result = await graph.run(
        "{ externalCatalog(service: SIMBAD, raDeg: 180, decDeg: 42, radiusArcsec: 10) { cached } }"
    )
    assert result.errors and result.errors[0].extensions["code"] == "UNAVAILABLE"
