"""Profiles against values computed by hand on images whose pixel values are known."""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import SkyImage, open_image
from dsa110.science.profiles import (
    Pixel,
    axis_slice,
    line_profile,
    polyline_profile,
    profile_arrays,
    radial_profile,
)
from tests.science.fits_factory import sin_header, write_image

CELL = 2.0


def ramp(x: Any, y: Any) -> Any:
    return 0.01 * x - 0.02 * y + 3.0


@pytest.fixture(scope="module")
def ramp_image(tmp_path_factory: pytest.TempPathFactory) -> SkyImage:
    """Pixel value = 0.01 x - 0.02 y + 3 (bilinear interpolation is exact on it)."""
    header = sin_header(nx=100, ny=80, cell_arcsec=CELL, rotation_deg=30.0, bunit="mJy/beam")
    ys, xs = np.mgrid[0:80, 0:100]
    return open_image(write_image(tmp_path_factory.mktemp("p") / "ramp.fits", ramp(xs, ys), header))


def world(image: SkyImage, x: float, y: float) -> tuple[float, float]:
    ra, dec = image.pixel_to_world(x, y)
    return float(ra), float(dec)


def separation_arcsec(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(SkyCoord(*a, unit="deg").separation(SkyCoord(*b, unit="deg")).to_value(u.arcsec))


def test_line_profile_samples_the_image_and_measures_arcsec(ramp_image: SkyImage) -> None:
    start, end = world(ramp_image, 10.0, 20.0), world(ramp_image, 70.0, 50.0)
    profile = line_profile(ramp_image, start, end, noise=0.5)
    assert profile.kind == "line" and profile.unit == "mJy/beam"
    points = profile.points
    assert len(points) == math.ceil(math.hypot(60, 30)) + 1  # at most one pixel apart
    assert points[0].value == pytest.approx(ramp(10.0, 20.0), abs=1e-5)  # float32 file
    assert points[-1].value == pytest.approx(ramp(70.0, 50.0), abs=1e-5)
    middle = points[len(points) // 2]
    mx, my = ramp_image.world_to_pixel(middle.ra_deg, middle.dec_deg)
    assert middle.value == pytest.approx(ramp(float(mx), float(my)), abs=1e-5)
    assert points[-1].distance_arcsec == pytest.approx(separation_arcsec(start, end), rel=1e-6)
    assert points[-1].distance_arcsec == pytest.approx(math.hypot(60, 30) * CELL, rel=1e-3)
    assert all(b.distance_arcsec > a.distance_arcsec for a, b in pairwise(points))
    assert all(p.error == pytest.approx(0.5) and p.n_samples == 1 for p in points)


def test_width_averages_across_the_line(ramp_image: SkyImage) -> None:
    start, end = world(ramp_image, 20.0, 40.0), world(ramp_image, 60.0, 40.0)
    profile = line_profile(ramp_image, start, end, width_arcsec=5 * CELL, noise=0.5)
    for p in profile.points:
        assert p.n_samples == 5
        assert p.error == pytest.approx(0.5 / math.sqrt(5))
        x, y = ramp_image.world_to_pixel(p.ra_deg, p.dec_deg)
        # The mean of a linear function over symmetric offsets is its central value.
        assert p.value == pytest.approx(ramp(float(x), float(y)), abs=1e-5)


def test_default_error_is_the_robust_image_noise(tmp_path: Path) -> None:
    header = sin_header(nx=200, ny=200, cell_arcsec=CELL)
    image = open_image(
        write_image(tmp_path / "n.fits", np.random.default_rng(4).normal(0, 0.3, (200, 200)), header)
    )
    profile = line_profile(image, world(image, 50, 50), world(image, 150, 60), width_arcsec=4 * CELL)
    assert profile.points[0].error == pytest.approx(0.3 / 2, rel=0.05)


def test_polyline_distance_is_continuous_through_vertices(ramp_image: SkyImage) -> None:
    a, b, c = world(ramp_image, 10.0, 10.0), world(ramp_image, 50.0, 10.0), world(ramp_image, 50.0, 70.0)
    points = polyline_profile(ramp_image, [a, b, c], noise=0.1).points
    assert len(points) == 41 + 60  # the shared vertex is sampled once
    corner = points[40]
    assert corner.value == pytest.approx(ramp(50.0, 10.0), abs=1e-5)
    assert corner.distance_arcsec == pytest.approx(separation_arcsec(a, b), rel=1e-6)
    assert points[-1].distance_arcsec == pytest.approx(
        separation_arcsec(a, b) + separation_arcsec(b, c), rel=1e-6
    )
    assert profile_arrays(polyline_profile(ramp_image, [a, b], noise=0.1))["value"][0] == pytest.approx(
        ramp(10.0, 10.0), abs=1e-5
    )


def test_radial_profile_matches_a_hand_binning(tmp_path: Path) -> None:
    header = sin_header(nx=64, ny=64, cell_arcsec=CELL)
    data = np.random.default_rng(9).normal(2.0, 0.4, (64, 64))
    image = open_image(write_image(tmp_path / "r.fits", data, header))
    centre = world(image, 31.3, 30.8)
    profile = radial_profile(image, centre, 30.0, n_annuli=5)
    # Hand binning: every pixel's separation from the centre, annuli of 6 arcsec.
    ys, xs = np.mgrid[0:64, 0:64]
    ra, dec = image.wcs.pixel_to_world_values(xs, ys)
    sep = SkyCoord(*centre, unit="deg").separation(SkyCoord(ra, dec, unit="deg")).to_value(u.arcsec)
    pixels = image.data.astype(np.float64)
    for i, point in enumerate(profile.points):
        inside = pixels[(sep >= 6.0 * i) & ((sep < 6.0 * (i + 1)) | ((i == 4) & (sep <= 30.0)))]
        assert point.distance_arcsec == pytest.approx(6.0 * i + 3.0)
        assert point.n_samples == inside.size
        assert point.value == pytest.approx(inside.mean(), rel=1e-12)
        assert point.error == pytest.approx(inside.std(ddof=1) / math.sqrt(inside.size), rel=1e-12)


def test_radial_profile_of_a_point_source_falls_off(tmp_path: Path) -> None:
    header = sin_header(nx=64, ny=64, cell_arcsec=CELL)
    ys, xs = np.mgrid[0:64, 0:64]
    data = np.exp(-0.5 * ((xs - 32) ** 2 + (ys - 32) ** 2) / 3.0**2)
    image = open_image(write_image(tmp_path / "g.fits", data, header))
    values = [p.value for p in radial_profile(image, world(image, 32, 32), 24.0, n_annuli=8).points]
    finite = [v for v in values if v is not None]
    assert len(finite) == len(values)
    assert finite == sorted(finite, reverse=True)


@pytest.mark.parametrize(
    "call",
    [
        lambda im: line_profile(im, world(im, 10, 10), world(im, 10, 10)),
        lambda im: line_profile(im, world(im, 10, 10), world(im, 20, 10), width_arcsec=-1.0),
        lambda im: line_profile(im, world(im, 10, 10), world(im, 20, 10), width_arcsec=float("nan")),
        lambda im: line_profile(im, world(im, 10, 10), world(im, 20, 10), width_arcsec=1e7),
        lambda im: line_profile(im, world(im, 10, 10), world(im, 20, 10), noise=-1.0),
        lambda im: line_profile(im, world(im, 10, 10), ("a", "b")),  # type: ignore[arg-type]
        lambda im: polyline_profile(im, [world(im, 10, 10)]),
        lambda im: polyline_profile(im, [world(im, 10, 10), world(im, 11, 10)] * 600),
        lambda im: radial_profile(im, world(im, 40, 40), 0.0),
        lambda im: radial_profile(im, world(im, 40, 40), 10.0, n_annuli=0),
        lambda im: radial_profile(im, world(im, 40, 40), 10.0, n_annuli=True),
        lambda im: radial_profile(im, world(im, 40, 40), 1e9),
        lambda im: radial_profile(im, "x", 10.0),  # type: ignore[arg-type]
    ],
)
def test_bad_profile_requests_are_clear_errors(ramp_image: SkyImage, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScienceInputError) as err:
        call(ramp_image)
    assert err.value.code == "BAD_PROFILE"


def test_profile_end_off_the_image_is_out_of_image(ramp_image: SkyImage) -> None:
    with pytest.raises(ScienceInputError) as err:
        line_profile(ramp_image, world(ramp_image, 10, 10), (10.0, -50.0))
    assert err.value.code == "OUT_OF_IMAGE"


# --- pixel positions and slices ------------------------------------------------------------


def test_a_pixel_line_is_the_same_profile_as_the_sky_line(ramp_image: SkyImage) -> None:
    by_pixel = line_profile(ramp_image, Pixel(10.0, 20.0), Pixel(70.0, 50.0), noise=0.5).points
    by_sky = line_profile(ramp_image, world(ramp_image, 10.0, 20.0), world(ramp_image, 70.0, 50.0), noise=0.5)
    assert len(by_pixel) == len(by_sky.points) == math.ceil(math.hypot(60, 30)) + 1
    for a, b in zip(by_pixel, by_sky.points, strict=True):
        assert a.value == pytest.approx(b.value, abs=1e-6)
        assert a.distance_arcsec == pytest.approx(b.distance_arcsec, abs=1e-6)
    # Samples report their pixel position: evenly spaced along the segment, exact at the ends.
    assert (by_pixel[0].x, by_pixel[0].y) == (10.0, 20.0) and (by_pixel[-1].x, by_pixel[-1].y) == (70.0, 50.0)
    middle = by_pixel[len(by_pixel) // 2]
    assert middle.value == pytest.approx(ramp(middle.x, middle.y), abs=1e-5)


def test_a_pixel_polyline_and_radial_centre(ramp_image: SkyImage) -> None:
    points = polyline_profile(ramp_image, [Pixel(10, 10), Pixel(50, 10), Pixel(50, 70)], noise=0.1).points
    assert len(points) == 41 + 60 and points[40].value == pytest.approx(ramp(50.0, 10.0), abs=1e-5)
    assert points[-1].distance_arcsec == pytest.approx(100 * CELL, rel=1e-3)
    by_pixel = radial_profile(ramp_image, Pixel(40.0, 30.0), 12.0, n_annuli=3)
    by_sky = radial_profile(ramp_image, world(ramp_image, 40.0, 30.0), 12.0, n_annuli=3)
    assert [p.value for p in by_pixel.points] == pytest.approx([p.value for p in by_sky.points])
    assert (by_pixel.points[0].x, by_pixel.points[0].y) == (40.0, 30.0)


def test_a_row_slice_is_the_stored_pixels(ramp_image: SkyImage) -> None:
    row = axis_slice(ramp_image, "x", 25, noise=0.2)
    assert row.kind == "slice" and row.unit == "mJy/beam"
    assert [p.value for p in row.points] == pytest.approx([ramp(x, 25) for x in range(100)], abs=1e-5)
    assert [(p.x, p.y) for p in row.points] == [(float(x), 25.0) for x in range(100)]
    assert all(p.error == 0.2 and p.n_samples == 1 for p in row.points)
    # 99 pixel steps of 2 arcsec (CDELT) on a rotated SIN grid, near the reference point
    assert row.points[-1].distance_arcsec == pytest.approx(99 * CELL, rel=1e-3)


def test_a_column_slice_defaults_to_the_centre(ramp_image: SkyImage) -> None:
    column = axis_slice(ramp_image, "y", noise=0.2)  # 100 columns: the centre is x = 50
    assert len(column.points) == 80
    assert [p.value for p in column.points] == pytest.approx([ramp(50, y) for y in range(80)], abs=1e-5)
    assert {p.x for p in column.points} == {50.0}
    assert {p.y for p in axis_slice(ramp_image, "x", noise=0.2).points} == {40.0}  # 80 rows: y = 40


def test_blank_pixels_in_a_slice_have_no_value(tmp_path: Path) -> None:
    data = np.ones((8, 10))
    data[3, 4] = np.nan
    image = open_image(write_image(tmp_path / "blank.fits", data, sin_header(nx=10, ny=8)))
    point = axis_slice(image, "x", 3, noise=1.0).points[4]
    assert point.value is None and point.error is None and point.n_samples == 0


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda im: line_profile(im, Pixel(10, 10), Pixel(100, 10)), "OUT_OF_IMAGE"),
        (lambda im: line_profile(im, Pixel(-0.6, 10), Pixel(20, 10)), "OUT_OF_IMAGE"),
        (lambda im: line_profile(im, Pixel(10, 10), Pixel(float("inf"), 10)), "OUT_OF_IMAGE"),
        (lambda im: line_profile(im, Pixel(10, 10), Pixel(1e300, -1e300)), "OUT_OF_IMAGE"),
        (lambda im: radial_profile(im, Pixel(10, 80), 10.0), "OUT_OF_IMAGE"),
        (lambda im: line_profile(im, Pixel(10, 10), Pixel(10, 10)), "BAD_PROFILE"),
        (lambda im: line_profile(im, Pixel(10, 10), Pixel("a", 1)), "BAD_PROFILE"),  # type: ignore[arg-type]
        (lambda im: axis_slice(im, "x", 80), "OUT_OF_IMAGE"),
        (lambda im: axis_slice(im, "y", 100), "OUT_OF_IMAGE"),
        (lambda im: axis_slice(im, "x", -1), "OUT_OF_IMAGE"),
        (lambda im: axis_slice(im, "x", True), "OUT_OF_IMAGE"),  # type: ignore[arg-type]
        (lambda im: axis_slice(im, "x", 2.5), "OUT_OF_IMAGE"),  # type: ignore[arg-type]
        (lambda im: axis_slice(im, "z", 2), "BAD_PROFILE"),  # type: ignore[arg-type]
    ],
)
def test_bad_pixel_requests_are_clear_errors(ramp_image: SkyImage, call, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScienceInputError) as err:
        call(ramp_image)
    assert err.value.code == code
