"""Images and mosaics, including FITS downloads that never leave the data directory."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from tests.compat.conftest import Graph, assert_envelope


def _read(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def _remove(path: Path) -> None:
    path.unlink()


async def test_images_list_filters_and_paging(api: httpx.AsyncClient, graph: Graph) -> None:
    params: dict[str, Any] = {
        "limit": 3,
        "offset": 1,
        "pbcor": "true",
        "dec_min": 41,
        "dec_max": 43,
        "noise_max": 1.0,
        "start_date": "2025-01-01T00:00:00Z",
        "image_type": "5min",
    }
    body = (await api.get("/api/images", params=params)).json()
    data = await graph.data(
        "query($f: ImageFilter) { images(first: 4, filter: $f) { totalCount nodes { imageId path noiseJy } } }",
        f={
            "pbcor": True,
            "decMinDeg": 41,
            "decMaxDeg": 43,
            "noiseMaxJy": 1.0,
            "createdAfter": "2025-01-01T00:00:00Z",
            "types": ["5min"],
        },
    )
    assert body["total"] == data["images"]["totalCount"] > 3
    assert [i["id"] for i in body["items"]] == [n["imageId"] for n in data["images"]["nodes"][1:]]
    item = body["items"][0]
    for key in (
        "id",
        "path",
        "ms_path",
        "created_at",
        "type",
        "beam_major_arcsec",
        "noise_jy",
        "pbcor",
        "center_ra_deg",
        "center_dec_deg",
    ):
        assert key in item
    assert item["created_at"].endswith("Z")
    ms_name = item["ms_path"].rsplit("/", 1)[-1]
    by_ms = (await api.get("/api/images", params={"ms_path": ms_name})).json()
    assert item["id"] in [i["id"] for i in by_ms["items"]]
    assert all(ms_name in i["ms_path"] for i in by_ms["items"])
    calibrated = await graph.data("{ images(filter: {hasCalibrator: true}) { totalCount } }")
    with_cal = (await api.get("/api/images", params={"has_calibrator": "true", "limit": 1})).json()
    assert with_cal["total"] == calibrated["images"]["totalCount"]
    assert_envelope(await api.get("/api/images", params={"start_date": "yesterday"}), 422)


async def test_image_detail_measurements_and_fits(api: httpx.AsyncClient, graph: Graph) -> None:
    data = await graph.data(
        "{ images(first: 1) { nodes { imageId path nMeasurements freqGhz measurements(first: 2) "
        "{ totalCount nodes { peakFluxJy source { sourceId } } } } } }"
    )
    node = data["images"]["nodes"][0]
    detail = (await api.get(f"/api/images/{node['imageId']}")).json()
    assert detail["id"] == node["imageId"] and detail["path"] == node["path"]
    assert (
        detail["n_measurements"] == node["nMeasurements"] and detail["frequency_hz"] == node["freqGhz"] * 1e9
    )
    page = (await api.get(f"/api/images/{node['imageId']}/measurements", params={"page_size": 2})).json()
    assert page["total"] == node["measurements"]["totalCount"]
    assert [m["source_id"] for m in page["items"]] == [
        m["source"]["sourceId"] for m in node["measurements"]["nodes"]
    ]
    assert page["items"][0]["flux_peak_jy"] == node["measurements"]["nodes"][0]["peakFluxJy"]
    download = await api.get(f"/api/images/{node['imageId']}/fits")
    assert download.status_code == 200 and download.headers["content-type"] == "application/fits"
    assert download.content == _read(node["path"])
    assert_envelope(await api.get("/api/images/999999"), 404, "NOT_FOUND")
    assert_envelope(await api.get("/api/images/999999/fits"), 404)


async def test_fits_download_refuses_paths_outside_the_data_dir(
    api: httpx.AsyncClient, engine: AsyncEngine, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.fits"
    outside.write_bytes(b"SIMPLE  = T" + b" " * 2869)
    async with engine.begin() as conn:
        template = (await conn.execute(select(t.images).limit(1))).mappings().one()
        row = {k: v for k, v in template.items() if k != "id"}
        hostile = {}
        for name, path in (
            ("absolute", str(outside)),
            ("dotdot", str(Path(template["path"]).parent / ".." / ".." / ".." / outside.relative_to("/"))),
        ):
            hostile[name] = (
                await conn.execute(
                    insert(t.images)
                    .values({**row, "path": path, "group_pk": None, "ms_pk": None})
                    .returning(t.images.c.id)
                )
            ).scalar_one()
    link = Path(template["path"]).parent / "escape.fits"
    os.symlink(outside, link)
    async with engine.begin() as conn:
        hostile["symlink"] = (
            await conn.execute(
                insert(t.images)
                .values({**row, "path": str(link), "group_pk": None, "ms_pk": None})
                .returning(t.images.c.id)
            )
        ).scalar_one()
    try:
        for image_id in hostile.values():
            assert_envelope(await api.get(f"/api/images/{image_id}/fits"), 404, "NOT_FOUND")
    finally:
        link.unlink()
        async with engine.begin() as conn:
            await conn.execute(t.images.delete().where(t.images.c.id.in_(list(hostile.values()))))
    for path in ("/api/images/..%2F..%2Fetc%2Fpasswd/fits", "/api/images/-1/fits", "/api/images/1e3/fits"):
        response = await api.get(path)
        assert 400 <= response.status_code < 500 and response.json()["status"] == "error"


def _plane(path: str) -> np.ndarray:
    with fits.open(path) as hdul:
        return np.squeeze(hdul[0].data).astype(np.float64)


async def _bright_source(graph: Graph) -> tuple[dict[str, Any], dict[str, Any]]:
    """The brightest catalogued source and the image of its first measurement."""
    data = await graph.data(
        "{ sources(first: 1, orderBy: CATALOG_FLUX, direction: DESC, filter: {nEpochsMin: 1}) { nodes {"
        " raDeg decDeg measurements(first: 1) { nodes { image { imageId path centerRaDeg centerDecDeg"
        " imsizeX imsizeY beamMajorArcsec } } } } } }"
    )
    source = data["sources"]["nodes"][0]
    return source, source["measurements"]["nodes"][0]["image"]


async def test_image_profile_in_sky_coordinates(api: httpx.AsyncClient, graph: Graph) -> None:
    data = await graph.data("{ images(first: 1) { nodes { imageId centerRaDeg centerDecDeg } } }")
    image = data["images"]["nodes"][0]
    ra, dec = image["centerRaDeg"], image["centerDecDeg"]
    coords = f"[[{ra - 0.3}, {dec}], [{ra + 0.3}, {dec}]]"
    profile = (
        await api.get(
            f"/api/images/{image['imageId']}/profile", params={"profile_type": "line", "coordinates": coords}
        )
    ).json()
    assert len(profile["distance"]) == len(profile["flux"]) > 2 and profile["units"]["distance"] == "arcsec"
    assert profile["coordinate_system"] == "wcs" and profile["fit"] is None
    assert profile["coordinates"][0] == pytest.approx([ra - 0.3, dec], abs=1e-6)
    malformed = {"profile_type": "line", "coordinates": "[[1,2]"}
    url = f"/api/images/{image['imageId']}/profile"
    assert_envelope(await api.get(url, params=malformed), 400, "INVALID_JSON")  # not JSON: 400
    for params in (
        {"profile_type": "line", "coordinates": "[[1, 2]]"},
        {"profile_type": "line", "coordinates": "[[1, 95], [2, 3]]"},
        {"profile_type": "point", "coordinates": "[[1e400, 2]]"},
        {"coordinates": "[[1, 2], [3, 4]]"},  # coordinates without a profile_type
    ):
        assert_envelope(await api.get(url, params=params), 422)  # JSON, but not usable coordinates


async def test_axis_slice_is_the_documented_array_of_pixel_values(
    api: httpx.AsyncClient, graph: Graph
) -> None:
    _, image = await _bright_source(graph)
    plane = _plane(image["path"])
    ny, nx = plane.shape
    url = f"/api/images/{image['imageId']}/profile"
    row = (await api.get(url, params={"axis": "x", "position": 7})).json()
    assert row == pytest.approx([None if np.isnan(v) else v for v in plane[7, :]], rel=1e-6)
    centre_column = (await api.get(url, params={"axis": "y"})).json()  # position defaults to the centre
    assert centre_column == pytest.approx(list(plane[:, nx // 2]), rel=1e-6)
    assert (await api.get(url)).json() == pytest.approx(list(plane[ny // 2, :]), rel=1e-6)
    assert_envelope(await api.get(url, params={"axis": "x", "position": ny}), 404, "OUT_OF_IMAGE")
    for params in ({"axis": "z"}, {"position": -1}, {"position": "1.5"}, {"position": 2**40}):
        assert_envelope(await api.get(url, params=params), 422)
    assert_envelope(await api.get("/api/images/999999/profile"), 404, "NOT_FOUND")


async def test_pixel_profile_and_its_fits(api: httpx.AsyncClient, graph: Graph) -> None:
    source, image = await _bright_source(graph)
    with fits.open(image["path"]) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)  # the demo's OBSGEO keywords, fixed on read
        wcs = WCS(hdul[0].header).celestial
    x, y = (round(float(v)) for v in wcs.world_to_pixel_values(source["raDeg"], source["decDeg"]))
    lo, hi = max(0, x - 30), min(image["imsizeX"] - 1, x + 30)  # a row through the source
    url = f"/api/images/{image['imageId']}/profile"
    line = {
        "profile_type": "line",
        "coordinate_system": "pixel",
        "coordinates": f"[[{lo}, {y}], [{hi}, {y}]]",
    }
    plain = (await api.get(url, params=line)).json()
    plane = _plane(image["path"])
    assert plain["coordinate_system"] == "pixel" and plain["fit"] is None
    assert plain["coordinates"][0] == [lo, y] and plain["coordinates"][-1] == [hi, y]
    # Sampled one pixel apart along a row: the stored pixel values, no interpolation needed.
    assert plain["flux"] == pytest.approx(list(plane[y, lo : hi + 1]), rel=1e-6)

    for model in ("gaussian", "moffat"):
        body = (await api.get(url, params={**line, "fit_model": model})).json()
        fit = body["fit"]
        assert fit["model"] == model and fit["units"]["fwhm"] == "arcsec"
        assert len(fit["fitted_flux"]) == len(body["flux"])
        parameters = fit["parameters"]
        assert abs(parameters["center"] - body["distance"][x - lo]) < image["beamMajorArcsec"] / 2
        # A cut through a source restored with the beam: its FWHM is about the beam's.
        assert 0.3 * image["beamMajorArcsec"] < parameters["fwhm"] < 3 * image["beamMajorArcsec"]
        if model == "moffat":
            assert parameters["fwhm"] == pytest.approx(
                2 * parameters["alpha"] * np.sqrt(2 ** (1 / parameters["beta"]) - 1), rel=1e-9
            )
        else:
            assert parameters["fwhm"] == pytest.approx(2 * np.sqrt(2 * np.log(2)) * parameters["sigma"])
    radial = (
        await api.get(
            url,
            params={
                "profile_type": "point",
                "coordinate_system": "pixel",
                "coordinates": f"[[{x}, {y}]]",
                "radius": 300,
                "fit_model": "gaussian",
            },
        )
    ).json()
    assert radial["coordinates"][0] == [x, y] and radial["fit"]["parameters"]["amplitude"] > 0
    for coords, status, code in (
        (f"[[{x}, {y}], [{image['imsizeX'] + 5}, {y}]]", 404, "OUT_OF_IMAGE"),
        (f"[[{x}, {y}], [{x}, {y}]]", 400, "BAD_PROFILE"),
        ('[[1, "a"], [2, 3]]', 422, "VALIDATION_ERROR"),
        ("[[1, 2], [1e999, 3]]", 422, "VALIDATION_ERROR"),
    ):
        response = await api.get(url, params={**line, "coordinates": coords})
        assert_envelope(response, status, code)


async def test_image_fit_gaussian_and_moffat(api: httpx.AsyncClient, graph: Graph) -> None:
    source, image = await _bright_source(graph)
    url = f"/api/images/{image['imageId']}/fit"
    position = {"ra_deg": source["raDeg"], "dec_deg": source["decDeg"], "radius_arcsec": 600}
    for model in ("gaussian", "moffat"):
        fit = await api.post(url, json={**position, "model": model})
        assert fit.status_code == 200, fit.text
        body = fit.json()
        assert body["fitted"] is True and body["model"] == model
        assert body["fwhm_major_arcsec"] >= body["fwhm_minor_arcsec"] > 0
        assert abs(body["peak_ra_deg"] - source["raDeg"]) < 0.02
        if model == "moffat":
            assert body["parameters"]["beta"] == body["parameters"]["alpha"] > 1
            assert body["uncertainties"]["beta"] > 0
        else:
            assert "beta" not in body["parameters"] and body["uncertainties"]["beta"] is None
    default = (await api.post(url, json=position)).json()
    assert default["model"] == "gaussian"
    for bad, status in (
        ({**position, "model": "sersic"}, 422),
        ({"ra_deg": source["raDeg"]}, 422),
        ({"model": "moffat", "region_id": 999999}, 404),
    ):
        assert_envelope(await api.post(url, json=bad), status)
    assert_envelope(await api.post("/api/images/999999/fit", json=position), 404, "NOT_FOUND")
    # Neither a position nor a region: the fitting tool's "fit entire image", served as the
    # most significant source's fit (test_rest_fidelity_sweep), no longer a 400.
    assert (await api.post(url, json={"model": "moffat"})).status_code == 200


async def test_mosaics_query_detail_fits_create(api: httpx.AsyncClient, graph: Graph) -> None:
    data = await graph.data(
        "{ mosaics(first: 1, orderBy: START_MJD, direction: ASC) { nodes { mosaicId name path startMjd endMjd nImages } } }"
    )
    first = data["mosaics"]["nodes"][0]
    window = {"start_time": "2000-01-01T00:00:00Z", "end_time": "2100-01-01T00:00:00Z"}
    body = (await api.post("/api/mosaics/query", json=window)).json()
    total = (await graph.data("{ mosaics(first: 0) { totalCount } }"))["mosaics"]["totalCount"]
    assert body["total"] == total == len(body["mosaics"])
    assert (await api.post("/api/mosaics/query", json={})).json() == {"mosaics": [], "total": 0}
    detail = (await api.get(f"/api/mosaics/{first['mosaicId']}")).json()
    assert (detail["id"], detail["name"], detail["n_images"]) == (
        first["mosaicId"],
        first["name"],
        first["nImages"],
    )
    assert detail["start_mjd"] == first["startMjd"] and detail["start_time"].endswith("Z")
    # Every mosaic the demo lists has its file: a primary-beam weighted co-add of its tiles.
    download = await api.get(f"/api/mosaics/{first['mosaicId']}/fits")
    assert download.status_code == 200 and download.content == _read(Path(first["path"]))
    with fits.open(io.BytesIO(download.content)) as hdus:
        assert hdus[0].header["NIMAGES"] == first["nImages"] and np.isfinite(hdus[0].data).any()
    hour = {"start_time": "2025-10-24T15:00:00Z", "end_time": "2025-10-24T16:00:00Z", "name": "test-mosaic"}
    created = await api.post("/api/mosaics/create", json=hour)
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["status"] == "queued" and body["mosaic_id"] is None
    job = await graph.data(
        "query($j: Int!) { job(jobId: $j) { type state params createdBy } }", j=body["job_id"]
    )
    assert job["job"]["type"] == "MOSAIC" and job["job"]["state"] == "PENDING"
    # The mosaic kind's checked parameters, as a submitted job has them: the stage reads
    # `max_images` (a job queued without it could only fail), and who queued it is recorded.
    params = job["job"]["params"]
    assert params["name"] == "test-mosaic" and params["max_images"] == 200
    assert params["start_mjd"] == pytest.approx(60972.625) and params["end_mjd"] == pytest.approx(
        60972.666667
    )
    assert job["job"]["createdBy"] is not None and job["job"]["createdBy"].startswith("key:")
    backwards = {"start_time": hour["end_time"], "end_time": hour["start_time"]}
    assert_envelope(await api.post("/api/mosaics/create", json=backwards), 400, "BAD_USER_INPUT")
    assert_envelope(await api.post("/api/mosaics/create", json=window), 400, "BAD_USER_INPUT")  # over 7 days
    assert_envelope(await api.post("/api/mosaics/create", json={"name": "x"}), 422)
    assert_envelope(
        await api.post(
            "/api/mosaics/query",
            json={"start_time": "2025-01-02T00:00:00Z", "end_time": "2025-01-01T00:00:00Z"},
        ),
        422,
    )
