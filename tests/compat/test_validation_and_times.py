"""Residual dashboard fidelity: epoch times on the data and region pages, catalog validation of
an image, and the QA page's FITS viewer."""

from __future__ import annotations

import re
from datetime import datetime
from html import unescape
from pathlib import Path

import httpx
import numpy as np
from astropy.io import fits

from resolvers.catalog_validation import FLUX_RANGE_JY, SPECTRAL_INDEX
from tests.compat.conftest import Demo, Graph, assert_envelope


def _unix(item: dict[str, object], name: str) -> None:
    """``name`` is Unix seconds (what `new Date(t * 1000)` needs) equal to ``name_iso``."""
    value, iso = item[name], item[f"{name}_iso"]
    if iso is None:
        assert value is None
        return
    assert isinstance(value, float), (name, value)
    assert value == datetime.fromisoformat(str(iso).replace("Z", "+00:00")).timestamp()


async def test_data_pages_get_unix_seconds(api: httpx.AsyncClient, graph: Graph) -> None:
    nodes = (await graph.data("{ dataProducts(first: 5) { nodes { dataId createdAt } } }"))["dataProducts"][
        "nodes"
    ]
    listed = (await api.get("/api/data", params={"limit": 5})).json()["items"]
    assert [i["id"] for i in listed] == [n["dataId"] for n in nodes]
    for item, node in zip(listed, nodes, strict=True):
        for name in ("created_at", "staged_at", "published_at", "publish_failed_at"):
            _unix(item, name)
        assert item["created_at_iso"] == node["createdAt"]
        # The browser's `formatDate(parseInt(created_at, 10))` lands in the right year.
        assert datetime.fromtimestamp(int(item["created_at"])).year >= 2024
    detail = (await api.get(f"/api/data/{listed[0]['id']}")).json()
    assert detail["created_at"] == listed[0]["created_at"]


async def test_region_list_gets_unix_seconds(api: httpx.AsyncClient, graph: Graph) -> None:
    image = (await graph.data("{ images(first: 1) { nodes { imageId centerRaDeg centerDecDeg } } }"))[
        "images"
    ]["nodes"][0]
    made = await api.post(
        "/api/regions",
        json={
            "image_id": image["imageId"],
            "name": "times",
            "type": "circle",
            "coordinates": {
                "ra_deg": image["centerRaDeg"],
                "dec_deg": image["centerDecDeg"],
                "radius_deg": 0.01,
            },
        },
    )
    assert made.status_code == 200, made.text
    before = datetime.now().timestamp()
    listed = (await api.get("/api/regions", params={"image_id": image["imageId"]})).json()["regions"]
    region = next(r for r in listed if r["id"] == made.json()["id"])
    _unix(region, "created_at")
    _unix(region, "updated_at")
    assert before - 300 < region["created_at"] <= before + 1
    every = (await api.get("/api/regions")).json()["regions"]
    assert all(isinstance(r["created_at"], float) for r in every)
    await api.delete(f"/api/regions/{region['id']}")


async def _image_with_sources(graph: Graph) -> dict[str, object]:
    images = (await graph.data("{ images(first: 20) { nodes { imageId path freqGhz nMeasurements } } }"))[
        "images"
    ]["nodes"]
    return max(images, key=lambda i: i["nMeasurements"])  # type: ignore[no-any-return]


async def test_catalog_validation_from_the_images_measurements(api: httpx.AsyncClient, graph: Graph) -> None:
    image = await _image_with_sources(graph)
    found = await graph.data(
        """query($i: Int!) { image(imageId: $i) {
             measurements(first: 500) { pageInfo { hasNextPage } nodes { raDeg decDeg peakFluxJy snr } }
             catalogOverlay(catalog: "nvss", limit: 1000) { entry { raDeg decDeg fluxJy } } } }""",
        i=image["imageId"],
    )
    assert not found["image"]["measurements"]["pageInfo"]["hasNextPage"]
    catalog = {
        (round(e["entry"]["raDeg"], 6), round(e["entry"]["decDeg"], 6)): e["entry"]["fluxJy"]
        for e in found["image"]["catalogOverlay"]
    }
    scale = (float(image["freqGhz"]) / 1.4) ** SPECTRAL_INDEX  # type: ignore[arg-type]
    ratios = []
    for m in found["image"]["measurements"]["nodes"]:
        flux = catalog.get((round(m["raDeg"], 6), round(m["decDeg"], 6)))
        if flux is not None and m["snr"] >= 5 and FLUX_RANGE_JY[0] <= flux * scale <= FLUX_RANGE_JY[1]:
            ratios.append(m["peakFluxJy"] / (flux * scale))
    assert ratios, "the demo's images measure catalog sources"

    response = await api.get(
        f"/api/qa/images/{image['imageId']}/catalog-validation", params={"catalog": "nvss"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"astrometry", "flux_scale", "source_counts"}
    for kind, result in body.items():
        assert result["validation_type"] == kind and result["image_path"] == image["path"]
        assert result["catalog_used"] == "nvss"
        assert isinstance(result["issues"], list) and isinstance(result["warnings"], list)
        assert result["has_issues"] == bool(result["issues"])
        # The panel formats any metric that is not undefined: never a null one.
        assert None not in result.values()

    flux = body["flux_scale"]
    assert flux["n_matched"] == len(ratios) == len(flux["matched_fluxes"])
    assert np.isclose(flux["median_flux_ratio"], np.median(ratios))
    assert np.isclose(flux["flux_scale_error"], abs(np.median(ratios) - 1.0))
    assert np.isclose(flux["mean_flux_ratio"], np.mean(ratios))
    assert "mean_offset_arcsec" not in flux and "completeness" not in flux

    astro = body["astrometry"]
    assert astro["n_matched"] >= 1 and len(astro["matched_pairs"]) == astro["n_matched"]
    # Gaussian fits on the demo tiles find the sources where the catalog put them.
    assert (
        astro["max_offset_arcsec"] < 10.0 and astro["rms_offset_arcsec"] >= astro["mean_offset_arcsec"] - 1e-9
    )
    (_ra, dec), (_cra, cdec), sep = astro["matched_pairs"][0]
    assert abs(dec - cdec) * 3600.0 <= sep + 1e-6

    counts = body["source_counts"]
    # Judged on the catalog sources the image should detect: some, not more than it holds.
    assert 0 < counts["n_catalog"] <= len(catalog)
    assert np.isclose(counts["completeness"], counts["n_matched"] / counts["n_catalog"])
    assert sum(counts["catalog_counts_per_bin"]) == counts["n_catalog"]
    assert sum(counts["detected_counts_per_bin"]) == counts["n_matched"]

    only = (
        await api.get(
            f"/api/api/qa/images/{image['imageId']}/catalog-validation",
            params={"validation_type": "flux_scale"},
        )
    ).json()
    assert only == {"flux_scale": flux}
    run = await api.post(
        f"/api/qa/images/{image['imageId']}/catalog-validation/run",
        json={"catalog": "nvss", "validation_types": ["astrometry", "source_counts"]},
    )
    assert run.status_code == 200, run.text
    assert run.json() == {"astrometry": astro, "source_counts": counts}


async def test_catalog_validation_refuses_bad_input(api: httpx.AsyncClient, graph: Graph) -> None:
    image = await _image_with_sources(graph)
    base = f"/api/qa/images/{image['imageId']}/catalog-validation"
    assert_envelope(await api.get("/api/qa/images/999999/catalog-validation"), 404, "NOT_FOUND")
    assert_envelope(await api.get("/api/qa/images/no-such-image/catalog-validation"), 404, "NOT_FOUND")
    assert_envelope(await api.get("/api/qa/images/..%2F..%2Fetc%2Fpasswd/catalog-validation"), 404)
    assert_envelope(await api.get(base, params={"validation_type": "colour"}), 422)
    assert_envelope(await api.get(base, params={"catalog": "sdss"}), 422)
    assert_envelope(await api.get(base, params={"min_snr": "-1"}), 422)
    assert_envelope(await api.get(base, params={"search_radius_arcsec": "nan"}), 422)
    for bad in ("astrometry", [], ["colour"], [1]):
        assert_envelope(await api.post(f"{base}/run", json={"validation_types": bad}), 422)
    malformed = await api.post(f"{base}/run", content=b"[1,", headers={"content-type": "application/json"})
    assert_envelope(malformed, 400)


async def test_fits_viewer_page(api: httpx.AsyncClient, demo: Demo) -> None:
    tile = sorted((demo.root / "images").glob("*.fits"))[0]
    page = await api.get(
        "/api/visualization/fits/view", params={"path": str(tile), "width": 400, "height": 300}
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    data = fits.getdata(tile)
    assert " x ".join(map(str, data.shape)) in page.text
    assert tile.name in page.text
    src = unescape(re.search(r'<img class="fits-image"[^>]* src="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
    assert 'width="400"' in page.text and 'height="300"' in page.text and src.endswith("size=400")
    png = await api.get(src)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


async def test_fits_viewer_stays_under_the_data_roots(
    api: httpx.AsyncClient, demo: Demo, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.fits"
    fits.writeto(outside, np.zeros((8, 8), dtype=np.float32))
    view = "/api/visualization/fits/view"
    assert_envelope(await api.get(view, params={"path": str(outside)}), 404, "NOT_FOUND")
    assert_envelope(await api.get(view, params={"path": "/etc/passwd"}), 404, "NOT_FOUND")
    assert_envelope(
        await api.get(view, params={"path": f"{demo.root}/images/../../etc/passwd"}), 422, "BAD_PATH"
    )
    assert_envelope(await api.get(view, params={"path": f"{demo.root}/images/\x00.fits"}), 422)
    assert_envelope(await api.get(view), 422)
    assert_envelope(await api.get(view, params={"path": str(demo.root / "images"), "width": "5"}), 422)
    not_fits = next(p for p in sorted((demo.root / "ms").rglob("*")) if p.is_file())
    response = await api.get(view, params={"path": str(not_fits)})
    assert 400 <= response.status_code < 500, response.text
