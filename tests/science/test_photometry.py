"""Forced peak photometry against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS

from dsa110.science.errors import ScienceInputError
from dsa110.science.photometry import measure_forced_peak, measure_pixels

MAD_TO_SIGMA = 1.482602218505602


def _ring_image() -> np.ndarray:
    """Zeros, a peak of 5 at (y=10, x=12), and its 8 neighbours (1 <= r < 2) valued 1..8."""
    data = np.zeros((21, 25))
    data[10, 12] = 5.0
    neighbours = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    for value, (dy, dx) in enumerate(neighbours, start=1):
        data[10 + dy, 12 + dx] = float(value)
    return data


def test_peak_rms_snr_by_hand():
    # Annulus 1 <= r < 2 around (12, 10) is exactly the 8 neighbours: values 1..8.
    # median 4.5; |a - 4.5| = 3.5 2.5 1.5 .5 .5 1.5 2.5 3.5 -> median 2.0; rms = 1.4826 * 2.
    result = measure_pixels(_ring_image(), [12.2], [9.7], box_size_pix=1, annulus_pix=(1.0, 2.0))
    assert result.success.tolist() == [True]
    assert result.peak_jy[0] == 5.0
    assert result.local_rms_jy[0] == pytest.approx(MAD_TO_SIGMA * 2.0)
    assert result.peak_err_jy[0] == result.local_rms_jy[0]
    assert result.snr[0] == pytest.approx(5.0 / (MAD_TO_SIGMA * 2.0))
    # Point source: integrated flux density equals the peak brightness.
    assert result.int_flux_jy[0] == 5.0
    assert result.int_flux_err_jy[0] == result.local_rms_jy[0]
    assert result.errors == (None,)


def test_box_takes_the_maximum_and_nearest_pixel_rounding():
    data = _ring_image()
    data[np.abs(data) == 0] = np.random.default_rng(2).normal(0.0, 0.01, int((data == 0).sum()))
    # A 3x3 box around (12, 10) holds the 5 and the neighbours 1..8: the peak is 8.
    wide = measure_pixels(data, [12.0], [10.0], box_size_pix=3, annulus_pix=(2.0, 4.0))
    assert wide.peak_jy[0] == 8.0
    # x = 12.49 rounds to pixel 12, x = 12.5 to pixel 13 (floor(x + 0.5)).
    left = measure_pixels(data, [12.49], [10.0], box_size_pix=1, annulus_pix=(2.0, 4.0))
    right = measure_pixels(data, [12.5], [10.0], box_size_pix=1, annulus_pix=(2.0, 4.0))
    assert left.peak_jy[0] == 5.0
    assert right.peak_jy[0] == data[10, 13]


def test_masked_annulus_pixels_are_ignored():
    data = _ring_image()
    # Annulus 1 <= r < 2.1 adds the four pixels at r = 2: give them 9..12.
    for value, (dy, dx) in enumerate([(-2, 0), (0, -2), (0, 2), (2, 0)], start=9):
        data[10 + dy, 12 + dx] = float(value)
    data[9, 11] = np.nan  # the neighbour valued 1
    result = measure_pixels(data, [12.0], [10.0], box_size_pix=1, annulus_pix=(1.0, 2.1))
    # Remaining 2..12: median 7, deviations 5 4 3 2 1 0 1 2 3 4 5 -> median 3.
    assert result.local_rms_jy[0] == pytest.approx(MAD_TO_SIGMA * 3.0)
    data[9, 12] = data[9, 13] = data[10, 11] = data[10, 13] = np.nan
    too_few = measure_pixels(data, [12.0], [10.0], box_size_pix=1, annulus_pix=(1.0, 2.1))
    assert not too_few.success[0]
    assert too_few.errors[0] == "only 7 finite annulus pixels (need 8)"


def test_through_a_sin_wcs():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crpix = [33, 33]
    wcs.wcs.cdelt = [-0.01, 0.01]
    wcs.wcs.crval = [150.0, 42.0]
    data = np.random.default_rng(3).normal(0.0, 0.1, (64, 64))
    data[32, 32] = 7.0  # the reference pixel (1-based 33, 33)
    result = measure_forced_peak(data, wcs, [150.0], [42.0], box_size_pix=1, annulus_pix=(4.0, 8.0))
    assert result.x_pix[0] == pytest.approx(32.0)
    assert result.y_pix[0] == pytest.approx(32.0)
    assert result.peak_jy[0] == 7.0


def test_recovers_gaussian_noise():
    rng = np.random.default_rng(1)
    data = rng.normal(0.0, 2.0, (200, 200))
    result = measure_pixels(data, [100.0], [100.0], box_size_pix=5, annulus_pix=(20.0, 60.0))
    assert result.local_rms_jy[0] == pytest.approx(2.0, rel=0.05)


def test_bad_positions_fail_per_entry_not_globally():
    data = np.random.default_rng(4).normal(0.0, 1.0, (30, 30))
    result = measure_pixels(
        data,
        [15.0, -5.0, 1.0, np.nan, 1e300],
        [15.0, 15.0, 15.0, 3.0, 5.0],
        box_size_pix=5,
        annulus_pix=(3.0, 6.0),
    )
    assert result.success.tolist() == [True, False, False, False, False]
    assert np.isnan(result.peak_jy[1:]).all()
    assert result.errors[1] == "position is off the image"
    assert result.errors[2] == "box extends beyond the image edge"
    assert result.errors[3] == "position is not finite"


def test_invalid_declination_fails_that_entry():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crpix = [16, 16]
    wcs.wcs.cdelt = [-0.01, 0.01]
    wcs.wcs.crval = [10.0, 42.0]
    result = measure_forced_peak(np.ones((32, 32)), wcs, [10.0, 10.0], [95.0, np.inf], annulus_pix=(6.0, 9.0))
    assert not result.success.any()


def test_flat_annulus_has_zero_rms_and_fails():
    result = measure_pixels(np.ones((30, 30)), [15.0], [15.0], box_size_pix=3, annulus_pix=(3.0, 6.0))
    assert not result.success[0]
    assert result.errors[0] == "zero local rms"


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"box_size_pix": 4}, "BAD_SIZE"),
        ({"box_size_pix": 0}, "BAD_SIZE"),
        ({"box_size_pix": 10_001}, "BAD_SIZE"),
        ({"annulus_pix": (8.0, 4.0)}, "BAD_SIZE"),
        ({"annulus_pix": (1.0, 4.0), "box_size_pix": 5}, "BAD_SIZE"),
        ({"annulus_pix": (4.0, float("inf"))}, "BAD_SIZE"),
        ({"annulus_pix": "wide"}, "BAD_SIZE"),
    ],
)
def test_bad_apertures_raise_with_a_code(kwargs, code):
    with pytest.raises(ScienceInputError) as info:
        measure_pixels(np.zeros((10, 10)), [5.0], [5.0], **kwargs)
    assert info.value.code == code


def test_bad_images_and_arrays_raise_with_a_code():
    with pytest.raises(ScienceInputError) as info:
        measure_pixels(np.zeros((2, 10, 10)), [5.0], [5.0])
    assert info.value.code == "NOT_AN_IMAGE"
    with pytest.raises(ScienceInputError) as info:
        measure_pixels(np.array([["a", "b"]]), [0.0], [0.0])
    assert info.value.code == "NOT_AN_IMAGE"
    with pytest.raises(ScienceInputError) as info:
        measure_pixels(np.zeros((10, 10)), [1.0, 2.0], [1.0])
    assert info.value.code == "BAD_POSITION"
    with pytest.raises(ScienceInputError) as info:
        measure_forced_peak(np.zeros((10, 10)), "not a wcs", [1.0], [1.0])  # type: ignore[arg-type]
    assert info.value.code == "NOT_AN_IMAGE"


def test_empty_position_list():
    result = measure_pixels(np.zeros((10, 10)), [], [], box_size_pix=1, annulus_pix=(1.0, 2.0))
    assert len(result) == 0
