"""Postage stamps: bytes a client can fetch, with a WCS that still points at the sky."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from PIL import Image

from dsa110.science.cutout import MAX_CUTOUT_PIXELS, MIN_CUTOUT_PIXELS, make_cutout, render_png
from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import open_image
from tests.science.fits_factory import sin_header, sky_gaussian, write_image

SOURCE_RA, SOURCE_DEC = 150.02, 37.01


@pytest.fixture
def image_path(tmp_path: Path) -> Path:
    header = sin_header(rotation_deg=15.0)
    data = sky_gaussian(
        header, SOURCE_RA, SOURCE_DEC, peak=2.5, fwhm_major_arcsec=30.0, fwhm_minor_arcsec=15.0, pa_deg=40.0
    )
    data += np.random.default_rng(3).normal(0.0, 0.01, data.shape)
    return write_image(tmp_path / "image.fits", data, header)


def test_cutout_fits_is_centred_on_the_source_with_a_shifted_wcs(image_path: Path) -> None:
    stamp = make_cutout(open_image(image_path), SOURCE_RA, SOURCE_DEC, 60.0)
    with fits.open(io.BytesIO(stamp.to_fits_bytes())) as hdus:
        data, header = hdus[0].data, hdus[0].header
    assert data.shape == (20, 20)  # 60 arcsec of 3 arcsec pixels
    # The brightest stamp pixel maps, through the stamp's own WCS, to the source position.
    y, x = np.unravel_index(np.nanargmax(data), data.shape)
    ra, dec = WCS(header).pixel_to_world_values(x, y)
    assert abs(ra - SOURCE_RA) * np.cos(np.radians(SOURCE_DEC)) * 3600 < 3.0
    assert abs(dec - SOURCE_DEC) * 3600 < 3.0
    assert header["BUNIT"] == "Jy/beam"
    assert header["BMAJ"] == pytest.approx(30.0 / 3600)
    assert header["BMIN"] == pytest.approx(15.0 / 3600)
    assert header["BPA"] == pytest.approx(40.0)
    assert header["NAXIS"] == 2


def test_cutout_pixels_equal_the_parent_pixels(image_path: Path) -> None:
    image = open_image(image_path)
    stamp = make_cutout(image, SOURCE_RA, SOURCE_DEC, 45.0)
    ox, oy = stamp.header["ORIGX"], stamp.header["ORIGY"]
    ny, nx = stamp.data.shape
    np.testing.assert_array_equal(stamp.data, image.data[oy : oy + ny, ox : ox + nx])


def test_stamp_at_the_edge_keeps_its_size_and_pads_with_nan(image_path: Path) -> None:
    image = open_image(image_path)
    ra, dec = image.pixel_to_world(1.0, 1.0)
    stamp = make_cutout(image, float(ra), float(dec), 60.0)
    assert stamp.data.shape == (20, 20)
    assert np.isnan(stamp.data).any()
    png = Image.open(io.BytesIO(stamp.to_png_bytes()))
    alpha = np.asarray(png)[..., 1]
    assert (alpha == 0).any() and (alpha == 255).any()


@pytest.mark.parametrize("stretch", ["asinh", "linear"])
def test_png_is_a_greyscale_image_with_north_up(image_path: Path, stretch: str) -> None:
    stamp = make_cutout(open_image(image_path), SOURCE_RA, SOURCE_DEC, 90.0)
    png = Image.open(io.BytesIO(stamp.to_png_bytes(stretch)))  # type: ignore[arg-type]
    assert png.format == "PNG" and png.mode == "LA" and png.size == (30, 30)
    grey = np.asarray(png)[..., 0]
    # Brightest PNG pixel is the brightest data pixel, rows flipped (FITS row 0 is south).
    y, x = np.unravel_index(np.nanargmax(stamp.data), stamp.data.shape)
    assert grey[29 - y, x] == 255


def test_a_stamp_smaller_than_a_few_pixels_is_widened_not_empty(image_path: Path) -> None:
    # 1 arcsec of 3-arcsec pixels rounds to 0 pixels: an empty stamp no FITS or PNG can hold.
    stamp = make_cutout(open_image(image_path), SOURCE_RA, SOURCE_DEC, 1.0)
    assert stamp.data.shape == (MIN_CUTOUT_PIXELS, MIN_CUTOUT_PIXELS)
    assert stamp.to_png_bytes().startswith(b"\x89PNG")
    assert stamp.to_fits_bytes().startswith(b"SIMPLE")


def test_png_of_a_blank_or_constant_image_does_not_fail() -> None:
    for data in (np.full((4, 4), np.nan), np.ones((4, 4))):
        assert render_png(data).startswith(b"\x89PNG")


@pytest.mark.parametrize("size", [0.0, -5.0, float("nan"), float("inf"), 3.0 * (MAX_CUTOUT_PIXELS + 1)])
def test_bad_size_is_a_clear_error(image_path: Path, size: float) -> None:
    with pytest.raises(ScienceInputError) as err:
        make_cutout(open_image(image_path), SOURCE_RA, SOURCE_DEC, size)
    assert err.value.code == "BAD_SIZE"


@pytest.mark.parametrize(
    ("ra", "dec", "code"),
    [
        (10.0, -30.0, "OUT_OF_IMAGE"),
        (330.0, 37.0, "OUT_OF_IMAGE"),
        (150.0, 95.0, "BAD_POSITION"),
        (float("nan"), 37.0, "BAD_POSITION"),
    ],
)
def test_position_off_the_image_is_a_clear_error(image_path: Path, ra: float, dec: float, code: str) -> None:
    with pytest.raises(ScienceInputError) as err:
        make_cutout(open_image(image_path), ra, dec, 60.0)
    assert err.value.code == code


def test_unknown_stretch_is_rejected() -> None:
    with pytest.raises(ScienceInputError) as err:
        render_png(np.ones((3, 3)), "log")  # type: ignore[arg-type]
    assert err.value.code == "BAD_STRETCH"


def test_missing_and_malformed_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ScienceInputError) as err:
        open_image(tmp_path / "nope.fits")
    assert err.value.code == "FILE_NOT_FOUND"
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"SIMPLE  = this is not a FITS file" * 10)
    with pytest.raises(ScienceInputError) as err:
        open_image(junk)
    assert err.value.code == "NOT_AN_IMAGE"
    with pytest.raises(ScienceInputError) as err:
        open_image(b"\x00" * 2880)
    assert err.value.code == "NOT_AN_IMAGE"


def test_image_without_celestial_axes_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "plain.fits"
    fits.PrimaryHDU(np.zeros((8, 8), dtype=np.float32)).writeto(path)
    with pytest.raises(ScienceInputError) as err:
        open_image(path)
    assert err.value.code == "NOT_AN_IMAGE"


def test_open_image_squeezes_a_cube_and_reads_the_beam(image_path: Path) -> None:
    image = open_image(image_path)
    assert image.data.shape == (128, 128)
    assert image.wcs.naxis == 2
    assert image.beam is not None
    assert (image.beam.major_arcsec, image.beam.minor_arcsec, image.beam.pa_deg) == pytest.approx(
        (30, 15, 40)
    )
    assert image.pixel_scales_arcsec() == pytest.approx((3.0, 3.0))
    same = open_image(image_path.read_bytes())
    np.testing.assert_array_equal(same.data, image.data)
