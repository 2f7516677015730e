"""Image analysis through the graph and the file routes, on FITS files written by the demo."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import httpx
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

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
        """mutation($i: Int!, $s: JSON!) { createRegion(imageId: $i, name: "src", shape: $s) {
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


def _plane(path: str) -> np.ndarray:
    with fits.open(path) as hdul:
        return np.squeeze(hdul[0].data).astype(np.float64)


def _stored(values: np.ndarray) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


SLICE = """query($i: Int!, $axis: ImageAxis!, $at: Int) { image(imageId: $i) {
  slice(axis: $axis, position: $at) { kind points { x y value } } } }"""


async def test_slice_is_a_row_or_column_as_stored(image_graph: Graph) -> None:
    _, measurement = await _bright(image_graph)
    image = measurement["image"]
    plane = _plane(image["path"])
    ny, nx = plane.shape
    row = (await image_graph.data(SLICE, i=image["imageId"], axis="X", at=7))["image"]["slice"]
    assert row["kind"] == "slice"
    assert [p["value"] for p in row["points"]] == pytest.approx(_stored(plane[7, :]), rel=1e-6)
    assert {p["y"] for p in row["points"]} == {7}
    # No position: the centre column, nx // 2.
    column = (await image_graph.data(SLICE, i=image["imageId"], axis="Y", at=None))["image"]["slice"]
    assert [p["value"] for p in column["points"]] == pytest.approx(_stored(plane[:, nx // 2]), rel=1e-6)
    beyond = await image_graph.run(SLICE, i=image["imageId"], axis="X", at=ny)
    assert beyond.errors[0].extensions["code"] == "OUT_OF_IMAGE"


PROFILE = """query($i: Int!, $kind: ProfileKind!, $sky: [SkyPoint!], $px: [PixelPoint!]) {
  image(imageId: $i) { profile(kind: $kind, points: $sky, pixels: $px) {
    points { raDeg decDeg x y value } fit(model: MOFFAT) { model fwhmArcsec } } } }"""


async def test_profile_takes_pixels_or_sky_points_for_the_same_line(image_graph: Graph) -> None:
    source, measurement = await _bright(image_graph)
    image = measurement["image"]
    plane = _plane(image["path"])
    with fits.open(image["path"]) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # the demo's OBSGEO keywords, fixed on read
        wcs = WCS(hdul[0].header).celestial
    x, y = (round(float(v)) for v in wcs.world_to_pixel_values(source["raDeg"], source["decDeg"]))
    # A row through the source, 60 pixels long (on the image).
    lo, hi = max(0, x - 30), min(plane.shape[1] - 1, x + 30)
    by_pixels = await image_graph.data(
        PROFILE, i=image["imageId"], kind="LINE", sky=None, px=[{"x": lo, "y": y}, {"x": hi, "y": y}]
    )
    pixel_points = by_pixels["image"]["profile"]["points"]
    # Sampled one pixel apart along a row: exactly the stored pixel values.
    assert [p["value"] for p in pixel_points] == pytest.approx(_stored(plane[y, lo : hi + 1]), rel=1e-6)
    assert by_pixels["image"]["profile"]["fit"]["model"] == "MOFFAT"

    ends = [{"raDeg": p["raDeg"], "decDeg": p["decDeg"]} for p in (pixel_points[0], pixel_points[-1])]
    by_sky = await image_graph.data(PROFILE, i=image["imageId"], kind="LINE", sky=ends, px=None)
    sky_points = by_sky["image"]["profile"]["points"]
    # The sky ends map back onto the same pixels, so the samples are the same.
    for axis in ("x", "y"):
        assert [p[axis] for p in sky_points] == pytest.approx([p[axis] for p in pixel_points], abs=1e-6)
    assert [p["value"] for p in sky_points] == pytest.approx([p["value"] for p in pixel_points], rel=1e-5)


@pytest.mark.parametrize(
    ("sky", "pixels", "code"),
    [
        (None, None, "BAD_USER_INPUT"),  # neither form
        ([{"raDeg": 10, "decDeg": 40}] * 2, [{"x": 1, "y": 1}] * 2, "BAD_USER_INPUT"),  # both
        (None, [{"x": 1, "y": 1}], "BAD_PROFILE"),  # a line needs two points
        (None, [{"x": 1, "y": 1}, {"x": 1e6, "y": 1}], "OUT_OF_IMAGE"),
        (None, [{"x": -1, "y": 1}, {"x": 3, "y": 1}], "OUT_OF_IMAGE"),
    ],
)
async def test_bad_profile_points_are_refused_with_a_code(
    image_graph: Graph, sky: object, pixels: object, code: str
) -> None:
    _, measurement = await _bright(image_graph)
    result = await image_graph.run(
        PROFILE, i=measurement["image"]["imageId"], kind="LINE", sky=sky, px=pixels
    )
    assert result.errors and result.errors[0].extensions["code"] == code


FIT = """query($i: Int!, $model: FitModel!, $ra: Float, $dec: Float, $box: Float, $r: Int) {
  image(imageId: $i) { fit(model: $model, raDeg: $ra, decDeg: $dec, boxArcsec: $box, regionId: $r) {
    model peak raDeg decDeg fwhmMajorArcsec beta betaErr } } }"""


async def test_moffat_fit_and_fits_in_a_region_of_this_image_only(image_graph: Graph) -> None:
    source, measurement = await _bright(image_graph)
    image_id = measurement["image"]["imageId"]
    at = {"ra": source["raDeg"], "dec": source["decDeg"]}
    moffat = (await image_graph.data(FIT, i=image_id, model="MOFFAT", box=1200, r=None, **at))["image"]["fit"]
    assert moffat["model"] == "MOFFAT" and moffat["beta"] > 1 and moffat["betaErr"] > 0
    assert moffat["peak"] == pytest.approx(measurement["peakFluxJy"], rel=0.3)
    assert abs(moffat["decDeg"] - source["decDeg"]) * 3600 < 60

    shape = {"type": "circle", "ra_deg": source["raDeg"], "dec_deg": source["decDeg"], "radius_arcsec": 600.0}
    region = await image_graph.data(
        'mutation($i: Int!, $s: JSON!) { createRegion(imageId: $i, name: "fit", shape: $s) { regionId } }',
        i=image_id,
        s=shape,
    )
    region_id = region["createRegion"]["regionId"]
    no_position = {"ra": None, "dec": None, "box": None}
    in_region = await image_graph.data(FIT, i=image_id, model="GAUSSIAN", r=region_id, **no_position)
    fit = in_region["image"]["fit"]
    assert fit["model"] == "GAUSSIAN" and fit["beta"] is None
    assert abs(fit["decDeg"] - source["decDeg"]) * 3600 < 60
    others = await image_graph.data("{ images(first: 2) { nodes { imageId } } }")
    other_id = next(n["imageId"] for n in others["images"]["nodes"] if n["imageId"] != image_id)
    elsewhere = await image_graph.run(FIT, i=other_id, model="GAUSSIAN", r=region_id, **no_position)
    assert elsewhere.errors[0].extensions["code"] == "NOT_FOUND"
    await image_graph.data("mutation($r: Int!) { deleteRegion(regionId: $r) }", r=region_id)


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
