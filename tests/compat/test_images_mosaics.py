"""Images and mosaics, including FITS downloads that never leave the data directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from astropy.io import fits
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


async def test_image_profile_and_fit(api: httpx.AsyncClient, graph: Graph) -> None:
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
    assert_envelope(await api.get(f"/api/images/{image['imageId']}/profile", params={"axis": "x"}), 501)
    assert_envelope(
        await api.get(
            f"/api/images/{image['imageId']}/profile",
            params={"profile_type": "line", "coordinates": "[[1,2]"},
        ),
        422,
    )
    src = await graph.data(
        "query($i: Int!) { image(imageId: $i) { measurements(first: 1) { nodes { raDeg decDeg } } } }",
        i=image["imageId"],
    )
    target = src["image"]["measurements"]["nodes"][0]
    fit = await api.post(
        f"/api/images/{image['imageId']}/fit",
        json={"ra_deg": target["raDeg"], "dec_deg": target["decDeg"], "radius_arcsec": 600},
    )
    if fit.status_code == 200:
        body = fit.json()
        assert body["fitted"] is True and body["fwhm_major_arcsec"] >= body["fwhm_minor_arcsec"] > 0
        assert abs(body["peak_ra_deg"] - target["raDeg"]) < 0.1
    else:  # a faint source may not fit: a clear 4xx, never a 500
        assert_envelope(fit, fit.status_code)
        assert 400 <= fit.status_code < 500
    assert_envelope(await api.post(f"/api/images/{image['imageId']}/fit", json={"model": "moffat"}), 501)


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
    # The demo registers mosaics without writing them: 404 until the file exists.
    assert_envelope(await api.get(f"/api/mosaics/{first['mosaicId']}/fits"), 404)
    path = Path(first["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.zeros((4, 4), dtype=np.float32)).writeto(path, overwrite=True)
    try:
        download = await api.get(f"/api/mosaics/{first['mosaicId']}/fits")
        assert download.status_code == 200 and download.content == _read(path)
    finally:
        _remove(path)
    hour = {"start_time": "2025-10-24T15:00:00Z", "end_time": "2025-10-24T16:00:00Z", "name": "test mosaic"}
    created = await api.post("/api/mosaics/create", json=hour)
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["status"] == "queued" and body["mosaic_id"] is None
    job = await graph.data("query($j: Int!) { job(jobId: $j) { type state params } }", j=body["job_id"])
    assert job["job"]["type"] == "MOSAIC" and job["job"]["state"] == "PENDING"
    assert job["job"]["params"]["name"] == "test mosaic"
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
