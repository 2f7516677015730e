"""Region masks and statistics against an independent per-pixel computation.

The expected masks are built here without ``dsa110.science.regions``: pixel centres go
through astropy's WCS to (RA, Dec), then either to ``SkyCoord.separation`` (circle) or
into an astropy TAN projection whose axes are rotated onto the shape's own axes, where
the shape is an axis-aligned box or ellipse. Polygons use a winding-number sum (the code
under test uses crossing numbers).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS

from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import SkyImage, open_image
from dsa110.science.regions import (
    CircleRegion,
    EllipseRegion,
    PolygonRegion,
    RectangleRegion,
    Region,
    region_from_json,
    region_mask,
    region_statistics,
    region_to_json,
)
from tests.science.fits_factory import sin_header, write_image

RA0, DEC0 = 150.0, 37.0


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> SkyImage:
    header = sin_header(nx=96, ny=80, ra0=RA0, dec0=DEC0, cell_arcsec=2.5, rotation_deg=20.0)
    data = np.random.default_rng(7).normal(1.0, 0.5, (80, 96))
    data[40, 40] = np.nan  # a blanked pixel must be ignored by the statistics
    return open_image(write_image(tmp_path_factory.mktemp("regions") / "img.fits", data, header))


def pixel_world(image: SkyImage) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    ra, dec = image.wcs.pixel_to_world_values(xs, ys)
    return np.asarray(ra), np.asarray(dec)


def frame_offsets(ra0: float, dec0: float, angle_deg: float, ra: np.ndarray, dec: np.ndarray):
    """Gnomonic offsets (arcsec) along the shape's axes: (across, along), 'along' at PA=angle."""
    tan = WCS(naxis=2)
    tan.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    tan.wcs.crval = [ra0, dec0]
    tan.wcs.crpix = [1.0, 1.0]
    tan.wcs.cdelt = [-1.0 / 3600, 1.0 / 3600]
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    tan.wcs.pc = [[c, -s], [s, c]]
    x, y = tan.world_to_pixel_values(ra, dec)
    # Self-check of the frame: the +y axis must point at position angle `angle_deg`.
    probe = SkyCoord(*tan.pixel_to_world_values(0.0, 100.0), unit="deg")
    pa = SkyCoord(ra0 * u.deg, dec0 * u.deg).position_angle(probe).to_value(u.deg)
    assert (pa - angle_deg + 180) % 360 - 180 == pytest.approx(0.0, abs=1e-6)
    return -x, y  # +x of this frame points along PA = angle - 90, i.e. "across" sign flipped


def expected_circle(image: SkyImage, r: CircleRegion) -> np.ndarray:
    ra, dec = pixel_world(image)
    sep = SkyCoord(r.ra_deg * u.deg, r.dec_deg * u.deg).separation(SkyCoord(ra * u.deg, dec * u.deg))
    return np.asarray(sep.to_value(u.arcsec) <= r.radius_arcsec)


def expected_rectangle(image: SkyImage, r: RectangleRegion) -> np.ndarray:
    across, along = frame_offsets(r.ra_deg, r.dec_deg, r.angle_deg, *pixel_world(image))
    return np.asarray((np.abs(along) <= r.height_arcsec / 2) & (np.abs(across) <= r.width_arcsec / 2))


def expected_ellipse(image: SkyImage, r: EllipseRegion) -> np.ndarray:
    across, along = frame_offsets(r.ra_deg, r.dec_deg, r.pa_deg, *pixel_world(image))
    return np.asarray((along / r.semi_major_arcsec) ** 2 + (across / r.semi_minor_arcsec) ** 2 <= 1)


def expected_polygon(image: SkyImage, r: PolygonRegion) -> np.ndarray:
    ra0, dec0 = r.vertices[0]
    px, py = frame_offsets(ra0, dec0, 0.0, *pixel_world(image))
    vra, vdec = np.array(r.vertices).T
    vx, vy = frame_offsets(ra0, dec0, 0.0, vra, vdec)
    total = np.zeros(px.shape)
    for i in range(len(vx)):
        ax, ay = vx[i] - px, vy[i] - py
        bx, by = vx[(i + 1) % len(vx)] - px, vy[(i + 1) % len(vx)] - py
        total += np.arctan2(ax * by - ay * bx, ax * bx + ay * by)
    return np.abs(total) > math.pi  # winding number != 0


def offset(d_east_arcsec: float, d_north_arcsec: float) -> tuple[float, float]:
    return (RA0 + d_east_arcsec / 3600 / math.cos(math.radians(DEC0)), DEC0 + d_north_arcsec / 3600)


# A concave "arrowhead": the notch at the east side is outside the polygon.
ARROW = PolygonRegion(
    vertices=(offset(-50, -40), offset(45, -40), offset(5, 1.3), offset(45, 40), offset(-50, 40))
)
CASES: list[tuple[Region, object]] = [
    (CircleRegion(*offset(3.3, -2.1), radius_arcsec=27.7), expected_circle),
    (
        RectangleRegion(*offset(-4.2, 6.1), width_arcsec=71.3, height_arcsec=23.9, angle_deg=0.0),
        expected_rectangle,
    ),
    (
        RectangleRegion(*offset(-4.2, 6.1), width_arcsec=71.3, height_arcsec=23.9, angle_deg=33.0),
        expected_rectangle,
    ),
    (
        RectangleRegion(*offset(8.1, 1.7), width_arcsec=15.2, height_arcsec=90.4, angle_deg=-117.0),
        expected_rectangle,
    ),
    (
        EllipseRegion(*offset(1.1, 2.2), semi_major_arcsec=48.3, semi_minor_arcsec=17.9, pa_deg=62.0),
        expected_ellipse,
    ),
    (ARROW, expected_polygon),
]


@pytest.mark.parametrize(("region", "expected"), CASES, ids=lambda c: getattr(c, "kind", ""))
def test_mask_and_statistics_match_an_independent_computation(
    image: SkyImage, region: Region, expected
) -> None:
    want = expected(image, region)
    got = region_mask(image, region)
    assert want.sum() > 20
    np.testing.assert_array_equal(got, want)
    values = image.data[want].astype(np.float64)
    values = values[np.isfinite(values)]
    stats = region_statistics(image, region)
    assert stats.n_pixels == values.size
    assert stats.mean == pytest.approx(values.mean(), rel=1e-12)
    assert stats.rms == pytest.approx(math.sqrt(float(np.sum(values**2)) / values.size), rel=1e-12)
    assert stats.std == pytest.approx(values.std(ddof=1), rel=1e-12)
    assert stats.sum == pytest.approx(values.sum(), rel=1e-12)
    assert (stats.min, stats.max) == (values.min(), values.max())
    assert stats.unit == "Jy/beam"


def test_rotation_changes_the_mask(image: SkyImage) -> None:
    straight = RectangleRegion(RA0, DEC0, width_arcsec=80.0, height_arcsec=20.0, angle_deg=0.0)
    turned = RectangleRegion(RA0, DEC0, width_arcsec=80.0, height_arcsec=20.0, angle_deg=90.0)
    a, b = region_mask(image, straight), region_mask(image, turned)
    assert abs(int(a.sum()) - int(b.sum())) < 0.1 * a.sum()  # same area ...
    assert (a & b).sum() < 0.5 * a.sum()  # ... different pixels


def test_concave_notch_is_outside(image: SkyImage) -> None:
    mask = region_mask(image, ARROW)
    x, y = image.world_to_pixel(*offset(35.0, 0.0))  # inside the notch
    assert not mask[round(float(y)), round(float(x))]
    x, y = image.world_to_pixel(*offset(-30.0, 0.0))  # in the body
    assert mask[round(float(y)), round(float(x))]


def test_circle_area_is_close_to_pi_r_squared(image: SkyImage) -> None:
    n = region_mask(image, CircleRegion(RA0, DEC0, 40.0)).sum()
    assert n == pytest.approx(math.pi * 40.0**2 / 2.5**2, rel=0.03)


def test_region_off_the_image_is_an_empty_region_error(image: SkyImage) -> None:
    with pytest.raises(ScienceInputError) as err:
        region_statistics(image, CircleRegion(RA0 + 30.0, DEC0, 10.0))
    assert err.value.code == "EMPTY_REGION"


@pytest.mark.parametrize(("region", "_"), CASES, ids=lambda c: getattr(c, "kind", ""))
def test_json_round_trip(region: Region, _: object) -> None:
    text = json.dumps(region_to_json(region))
    assert region_from_json(json.loads(text)) == region


@pytest.mark.parametrize(
    "shape",
    [
        None,
        [],
        "circle",
        {"type": "hexagon"},
        {"type": "circle", "ra_deg": 1.0, "dec_deg": 2.0},
        {"type": "circle", "ra_deg": 1.0, "dec_deg": 2.0, "radius_arcsec": -1},
        {"type": "circle", "ra_deg": 1.0, "dec_deg": 2.0, "radius_arcsec": 1e12},
        {"type": "circle", "ra_deg": 1.0, "dec_deg": 91.0, "radius_arcsec": 5},
        {"type": "circle", "ra_deg": "1", "dec_deg": 2.0, "radius_arcsec": 5},
        {"type": "circle", "ra_deg": True, "dec_deg": 2.0, "radius_arcsec": 5},
        {"type": "circle", "ra_deg": float("nan"), "dec_deg": 2.0, "radius_arcsec": 5},
        {"type": "circle", "ra_deg": 1.0, "dec_deg": 2.0, "radius_arcsec": 5, "evil": "x"},
        {"type": "ellipse", "ra_deg": 1.0, "dec_deg": 2.0, "semi_major_arcsec": 1, "semi_minor_arcsec": 2},
        {"type": "rectangle", "ra_deg": 1.0, "dec_deg": 2.0, "width_arcsec": 0, "height_arcsec": 2},
        {"type": "polygon", "vertices": [[1, 2], [1.01, 2]]},
        {"type": "polygon", "vertices": [[1, 2], [1, 2.01], [1, 2.03]]},  # zero area: one meridian
        {"type": "polygon", "vertices": [[1, 2], [1.01, 2], "x"]},
        {"type": "polygon", "vertices": [[1, 2]] * 5000},
        {"type": "polygon", "vertices": [[0, 0], [90, 0], [45, 45]]},  # far too big
        {"type": "polygon", "vertices": "0,0,1,1,2,2"},
    ],
)
def test_malformed_shapes_are_bad_region_errors(shape: object) -> None:
    with pytest.raises(ScienceInputError) as err:
        region_from_json(shape)
    assert err.value.code == "BAD_REGION"


def test_region_statistics_on_a_real_file_with_blanks(tmp_path: Path) -> None:
    header = sin_header(nx=32, ny=32, cell_arcsec=2.0)
    data = np.arange(32 * 32, dtype=float).reshape(32, 32)
    data[16, 16] = np.nan
    image = open_image(write_image(tmp_path / "ramp.fits", data, header))
    stats = region_statistics(image, CircleRegion(150.0, 37.0, 5.0))
    mask = expected_circle(image, CircleRegion(150.0, 37.0, 5.0))
    finite = mask & np.isfinite(image.data)
    assert stats.n_pixels == finite.sum() == mask.sum() - 1
