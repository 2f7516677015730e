"""The QA browser's last two calls (issue 17): POST /api/visualization/js9/analysis (JS9's
analysis panel, regions in 1-based image pixels) and POST /api/visualization/notebook/qa
(useRunQA: ``QAResultSummary{ms_path, success, reasons, metrics, artifacts}``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from compat_rest.errors import ApiError
from compat_rest.js9 import ImagePlane, pixel_box, sky_shape
from tests.compat.conftest import Demo, assert_envelope

JS9 = "/api/visualization/js9/analysis"


def first_image(demo: Demo) -> tuple[Path, np.ndarray]:
    path = sorted((demo.root / "images").glob("*.fits"))[0]
    return path, np.asarray(fits.getdata(path), dtype=np.float64).squeeze()


async def test_js9_tasks_answer_the_panels_fields_with_hand_checked_values(
    api: httpx.AsyncClient, demo: Demo
) -> None:
    path, data = first_image(demo)
    ny, nx = data.shape
    cx, cy = nx // 2 + 1, ny // 2 + 1  # JS9 pixels are 1-based
    r = 3.5
    stat = await api.post(
        JS9,
        json={
            "task": "imstat",
            "image_path": str(path),
            "region": {"shape": "circle", "x": cx, "y": cy, "r": r},
        },
    )
    assert stat.status_code == 200, stat.text
    body = stat.json()
    assert body["success"] is True and body["task"] == "imstat" and body["error"] is None
    assert body["execution_time_sec"] >= 0
    # By hand: the pixels within 3.5 pixels of the centre (squared distances <= 12; the next is 13).
    yy, xx = np.mgrid[0:ny, 0:nx]
    inside = data[(xx - (cx - 1)) ** 2 + (yy - (cy - 1)) ** 2 <= r * r]
    inside = inside[np.isfinite(inside)]
    stats = body["result"]["DATA"]
    assert stats["npts"] == inside.size == 37
    assert stats["mean"] == pytest.approx(inside.mean(), rel=1e-9)
    assert stats["sum"] == pytest.approx(inside.sum(), rel=1e-9)
    assert stats["rms"] == pytest.approx(np.sqrt(np.mean(inside**2)), rel=1e-9)
    assert stats["max"] == pytest.approx(inside.max()) and stats["std"] == pytest.approx(inside.std(ddof=1))

    whole = (await api.post(JS9, json={"task": "imstat", "image_path": str(path)})).json()
    assert whole["result"]["DATA"]["max"] == pytest.approx(float(np.nanmax(data)))

    value = await api.post(
        JS9, json={"task": "imval", "image_path": str(path), "region": {"shape": "point", "x": 5, "y": 7}}
    )
    assert value.status_code == 200, value.text
    assert value.json()["result"]["value"] == pytest.approx(data[6, 4])  # [y-1, x-1]
    box = await api.post(
        JS9,
        json={
            "task": "imval",
            "image_path": str(path),
            "region": {"shape": "box", "x": 10, "y": 12, "width": 4, "height": 2},
        },
    )
    got = box.json()["result"]
    assert got["shape"] == [3, 5] and got["blc"] == [8, 11]
    assert np.allclose(np.array(got["values"], dtype=float), data[10:13, 7:12])

    # imfit on the brightest pixel: the fitted centre lies within a pixel or two of it.
    peak_y, peak_x = np.unravel_index(np.nanargmax(data), data.shape)
    fitted = await api.post(
        JS9,
        json={
            "task": "imfit",
            "image_path": str(path),
            "region": {"shape": "box", "x": int(peak_x) + 1, "y": int(peak_y) + 1, "width": 15, "height": 15},
            "parameters": {"model": "gaussian"},
        },
    )
    assert fitted.status_code == 200, fitted.text
    fit = fitted.json()["result"]["fit"]
    assert {"amplitude", "center", "major_axis", "minor_axis", "pa", "background"} <= set(fit)
    assert abs(fit["center"][0] - (peak_x + 1)) < 2 and abs(fit["center"][1] - (peak_y + 1)) < 2


def test_pixel_regions_become_sky_shapes_through_the_wcs() -> None:
    """A 2 arcsec/pixel image, north up and east left (CDELT1 < 0): a box rotated 30 degrees
    counter-clockwise has its height along PA 30 (towards the east); a circle's radius scales."""
    header = {
        "NAXIS": 2, "NAXIS1": 100, "NAXIS2": 80, "CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN",
        "CRVAL1": 150.0, "CRVAL2": 40.0, "CRPIX1": 50.0, "CRPIX2": 40.0,
        "CDELT1": -2.0 / 3600, "CDELT2": 2.0 / 3600, "CUNIT1": "deg", "CUNIT2": "deg",
    }  # fmt: skip
    plane = ImagePlane(header, [80, 100])
    circle = sky_shape({"shape": "circle", "x": 50, "y": 40, "r": 5}, plane)
    assert circle["ra_deg"] == pytest.approx(150.0) and circle["dec_deg"] == pytest.approx(40.0)
    assert circle["radius_arcsec"] == pytest.approx(10.0)
    box = sky_shape({"shape": "box", "x": 50, "y": 40, "width": 4, "height": 6, "angle": 30}, plane)
    assert box["width_arcsec"] == pytest.approx(8.0) and box["height_arcsec"] == pytest.approx(12.0)
    assert box["angle_deg"] == pytest.approx(30.0, abs=1e-3)
    ra, dec = WCS(header).pixel_to_world_values(9.0, 19.0)  # JS9 (10, 20)
    poly = sky_shape(
        {"shape": "polygon", "pts": [{"x": 10, "y": 20}, {"x": 20, "y": 20}, {"x": 15, "y": 30}]}, plane
    )
    assert poly["vertices"][0] == pytest.approx([float(ra), float(dec)])
    assert pixel_box({"shape": "point", "x": 1, "y": 80}, plane) == {
        "x0": 0,
        "y0": 79,
        "width": 1,
        "height": 1,
    }
    big = ImagePlane({**header, "NAXIS1": 1000, "NAXIS2": 1000}, [1000, 1000])
    assert pixel_box({"shape": "circle", "x": 500, "y": 500, "r": 60}, big)["width"] == 121
    with pytest.raises(ApiError) as refused:  # imval answers at most 128 x 128 values
        pixel_box({"shape": "circle", "x": 500, "y": 500, "r": 70}, big)
    assert refused.value.status == 422 and refused.value.code == "REGION_TOO_LARGE"


async def test_js9_bad_input_is_a_coded_4xx(api: httpx.AsyncClient, demo: Demo) -> None:
    path, data = first_image(demo)
    nx = data.shape[1]
    image = str(path)
    circle = {"shape": "circle", "x": 10, "y": 10, "r": 3}
    cases: list[tuple[dict[str, Any], int, str | None]] = [
        ({"task": "imview", "image_path": image}, 422, "UNSUPPORTED_TASK"),
        ({"task": "specflux", "image_path": image, "region": circle}, 422, "UNSUPPORTED_TASK"),
        ({"task": "rm -rf /", "image_path": image}, 422, "UNSUPPORTED_TASK"),
        (
            {"task": "imstat", "image_path": image, "region": {**circle, "x": nx + 50}},
            422,
            "REGION_OFF_IMAGE",
        ),
        ({"task": "imstat", "image_path": image, "region": {**circle, "y": -40}}, 422, "REGION_OFF_IMAGE"),
        ({"task": "imstat", "image_path": image, "region": {**circle, "r": 1e9}}, 422, "REGION_TOO_LARGE"),
        ({"task": "imstat", "image_path": image, "region": {**circle, "r": -1}}, 422, "BAD_REGION"),
        # under 4096 pixels but over the graph's 10 deg on the sky: was 400 from the graph
        (
            {
                "task": "imstat",
                "image_path": image,
                "region": {**circle, "x": nx // 2, "y": nx // 2, "r": 4000},
            },
            422,
            "BAD_REGION",
        ),
        (
            {
                "task": "imfit",
                "image_path": image,
                "region": {**circle, "x": nx // 2, "y": nx // 2, "r": 4000},
            },
            422,
            "BAD_REGION",
        ),
        ({"task": "imstat", "image_path": image, "region": {**circle, "x": "NaN"}}, 422, "BAD_REGION"),
        (
            {"task": "imstat", "image_path": image, "region": {**circle, "shape": "annulus"}},
            422,
            "BAD_REGION",
        ),
        ({"task": "imstat", "image_path": image, "region": [1, 2]}, 422, "BAD_REGION"),
        (
            {
                "task": "imstat",
                "image_path": image,
                "region": {"shape": "polygon", "pts": [{"x": 1, "y": 1}] * 2000},
            },
            422,
            "BAD_REGION",
        ),
        ({"task": "imfit", "image_path": image}, 422, "REGION_REQUIRED"),
        ({"task": "imfit", "image_path": image, "region": circle, "parameters": {"model": "x"}}, 422, None),
        ({"task": "imstat"}, 422, None),
        ({"task": "imstat", "image_path": 7}, 422, None),
        ({"task": "imstat", "image_path": "/etc/passwd"}, 403, None),
        (
            {
                "task": "imstat",
                "image_path": str(demo.root / "images" / ".." / ".." / ".." / "etc" / "passwd"),
            },
            422,
            None,
        ),
        ({"task": "imstat", "image_path": str(demo.root / "images" / "missing.fits")}, 404, None),
        ({"task": "imstat", "image_path": "x" * 5000}, 422, None),
    ]
    for body, status, code in cases:
        answer = await api.post(JS9, json=body)
        assert answer.status_code < 500 and answer.json().get("code"), (body, answer.text)
        if status == 403:  # outside the roots: refused or not found, never read
            assert answer.status_code in (403, 404), (body, answer.text)
        else:
            assert_envelope(answer, status, code)
    not_json = await api.post(JS9, content=b"{not json", headers={"content-type": "application/json"})
    assert 400 <= not_json.status_code < 500 and not_json.json()["code"]
    huge = await api.post(
        JS9, json={"task": "imstat", "image_path": image, "region": {"pts": [{"x": 1}] * 500_000}}
    )
    assert huge.status_code == 413 and "PAYLOAD_TOO_LARGE" in huge.text  # the server-wide body limit


async def test_run_qa_answers_the_qa_result_summary_and_writes_the_notebook(
    api: httpx.AsyncClient, demo: Demo
) -> None:
    ms = next(p for p in sorted((demo.root / "ms").glob("*.ms")) if list(p.parent.glob(p.stem + "_bpcal")))
    answer = await api.post(
        "/api/visualization/notebook/qa", json={"ms_path": str(ms), "qa_root": str(demo.root / "qa")}
    )
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert {"ms_path", "success", "reasons", "metrics", "artifacts"} <= set(summary)
    assert summary["ms_path"] == str(ms)
    qa = (await api.get(f"/api/qa/{str(ms).lstrip('/')}")).json()["calibration_qa"]
    assert summary["metrics"]["overall_quality"] == qa["overall_quality"]
    assert summary["success"] is (qa["overall_quality"] in ("good", "marginal"))
    assert (summary["reasons"] == []) is (qa["overall_quality"] == "good" and summary["success"])
    notebook = Path(summary["notebook_path"])
    assert notebook.is_file() and summary["artifacts"][0] == str(notebook)  # noqa: ASYNC240
    assert all(isinstance(a, str) for a in summary["artifacts"])

    for body, status in (
        ({}, 422),
        ({"ms_path": "/etc/passwd"}, 404),
        ({"ms_path": str(ms), "output_path": "/etc/x.ipynb"}, 404),
        ({"ms_path": str(ms), "thresholds": "high"}, 422),
        ({"ms_path": "x" * 5000}, 422),
    ):
        bad = await api.post("/api/visualization/notebook/qa", json=body)
        assert bad.status_code < 500 and bad.json()["code"], (body, bad.text)
        assert bad.status_code in (status, 403), (body, bad.text)
    anonymous = await api.post(
        "/api/visualization/notebook/qa", json={"ms_path": str(ms)}, headers={"authorization": ""}
    )
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "UNAUTHENTICATED"
