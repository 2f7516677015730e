"""The 2-D Gaussian fit recovers injected sources, in sky units, on rotated grids."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import SkyImage, open_image
from dsa110.science.fitting import fit_gaussian_2d
from dsa110.science.regions import CircleRegion, EllipseRegion
from tests.science.fits_factory import sin_header, sky_gaussian, write_image

RA, DEC = 150.013, 37.008
PEAK, MAJOR, MINOR = 1.0, 30.0, 15.0
NOISE = 0.01  # SNR 100
BACKGROUND = 0.05


def injected(tmp_path: Path, *, pa_deg: float, rotation_deg: float, seed: int, cell: float = 3.0) -> SkyImage:
    header = sin_header(nx=96, ny=96, cell_arcsec=cell, rotation_deg=rotation_deg)
    data = sky_gaussian(
        header, RA, DEC, peak=PEAK, fwhm_major_arcsec=MAJOR, fwhm_minor_arcsec=MINOR, pa_deg=pa_deg
    )
    data += BACKGROUND + np.random.default_rng(seed).normal(0.0, NOISE, data.shape)
    return open_image(write_image(tmp_path / f"g{seed}_{pa_deg}_{rotation_deg}.fits", data, header))


def pa_difference(a: float, b: float) -> float:
    return (a - b + 90.0) % 180.0 - 90.0


def offsets_arcsec(fit_ra: float, fit_dec: float) -> tuple[float, float]:
    return (fit_ra - RA) * math.cos(math.radians(DEC)) * 3600.0, (fit_dec - DEC) * 3600.0


@pytest.mark.parametrize(("pa_deg", "rotation_deg"), [(40.0, 0.0), (40.0, 25.0), (130.0, -60.0), (5.0, 90.0)])
def test_recovers_an_injected_gaussian_within_two_percent(
    tmp_path: Path, pa_deg: float, rotation_deg: float
) -> None:
    image = injected(tmp_path, pa_deg=pa_deg, rotation_deg=rotation_deg, seed=11)
    fit = fit_gaussian_2d(image, RA + 0.001, DEC - 0.001)  # a seed a few arcsec off
    assert fit.peak == pytest.approx(PEAK, rel=0.02)
    assert fit.fwhm_major_arcsec == pytest.approx(MAJOR, rel=0.02)
    assert fit.fwhm_minor_arcsec == pytest.approx(MINOR, rel=0.02)
    assert abs(pa_difference(fit.pa_deg, pa_deg)) < 0.02 * 180.0
    d_east, d_north = offsets_arcsec(fit.ra_deg, fit.dec_deg)
    assert math.hypot(d_east, d_north) < 0.02 * MINOR
    assert fit.background == pytest.approx(BACKGROUND, abs=3 * NOISE / 10)
    assert 0.0 <= fit.pa_deg < 180.0
    assert fit.unit == "Jy/beam"
    # Each estimate is within 5 sigma of the truth by its own error bar.
    assert abs(fit.peak - PEAK) < 5 * fit.peak_err
    assert abs(fit.fwhm_major_arcsec - MAJOR) < 5 * fit.fwhm_major_err_arcsec
    assert abs(fit.fwhm_minor_arcsec - MINOR) < 5 * fit.fwhm_minor_err_arcsec
    assert abs(pa_difference(fit.pa_deg, pa_deg)) < 5 * fit.pa_err_deg
    assert abs(d_east) < 5 * fit.ra_err_arcsec and abs(d_north) < 5 * fit.dec_err_arcsec
    # A source of exactly the beam's shape has S = peak (Condon 1997): beam here is 30x15 too.
    assert fit.integrated_flux_jy == pytest.approx(PEAK, rel=0.03)
    assert fit.reduced_chi2 == pytest.approx(1.0, rel=0.2)


def test_uncertainties_match_the_scatter_over_noise_realisations(tmp_path: Path) -> None:
    fits_ = [
        fit_gaussian_2d(injected(tmp_path, pa_deg=70.0, rotation_deg=10.0, seed=s), RA, DEC)
        for s in range(20)
    ]
    for value, error in [
        ("peak", "peak_err"),
        ("fwhm_major_arcsec", "fwhm_major_err_arcsec"),
        ("fwhm_minor_arcsec", "fwhm_minor_err_arcsec"),
        ("pa_deg", "pa_err_deg"),
    ]:
        scatter = np.std([getattr(f, value) for f in fits_], ddof=1)
        reported = np.mean([getattr(f, error) for f in fits_])
        assert reported / 1.6 < scatter < reported * 1.6, (value, scatter, reported)


def test_fit_inside_a_region(tmp_path: Path) -> None:
    image = injected(tmp_path, pa_deg=40.0, rotation_deg=0.0, seed=5)
    fit = fit_gaussian_2d(image, region=EllipseRegion(RA, DEC, 60.0, 45.0, 40.0))
    assert fit.peak == pytest.approx(PEAK, rel=0.02)
    assert fit.fwhm_major_arcsec == pytest.approx(MAJOR, rel=0.02)
    assert fit.n_pixels == pytest.approx(math.pi * 60 * 45 / 9, rel=0.05)


def test_fit_without_background(tmp_path: Path) -> None:
    header = sin_header(nx=64, ny=64, cell_arcsec=3.0)
    data = sky_gaussian(header, RA, DEC, peak=2.0, fwhm_major_arcsec=20.0, fwhm_minor_arcsec=20.0, pa_deg=0.0)
    data += np.random.default_rng(2).normal(0.0, 0.02, data.shape)
    fit = fit_gaussian_2d(
        open_image(write_image(tmp_path / "round.fits", data, header)), RA, DEC, fit_background=False
    )
    assert fit.background is None and fit.background_err is None
    assert fit.peak == pytest.approx(2.0, rel=0.02)
    assert fit.fwhm_major_arcsec == pytest.approx(20.0, rel=0.02)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"ra_deg": 10.0, "dec_deg": -20.0}, "OUT_OF_IMAGE"),
        ({"ra_deg": RA, "dec_deg": 100.0}, "BAD_POSITION"),
        ({"ra_deg": RA}, "BAD_POSITION"),
        ({}, "BAD_POSITION"),
        ({"ra_deg": RA, "dec_deg": DEC, "box_arcsec": -3.0}, "BAD_SIZE"),
        ({"ra_deg": RA, "dec_deg": DEC, "box_arcsec": float("nan")}, "BAD_SIZE"),
        ({"ra_deg": RA, "dec_deg": DEC, "box_arcsec": 1e9}, "BAD_SIZE"),
        ({"region": CircleRegion(RA, DEC, 2.0)}, "FIT_FAILED"),
        ({"region": CircleRegion(RA + 40, DEC, 20.0)}, "EMPTY_REGION"),
    ],
)
def test_bad_requests_are_clear_errors(tmp_path: Path, kwargs: dict[str, Any], code: str) -> None:
    image = injected(tmp_path, pa_deg=40.0, rotation_deg=0.0, seed=1)
    if kwargs.get("box_arcsec") == 1e9:
        image = SkyImage(np.zeros((600, 600)), image.wcs, image.header, image.unit, image.beam)
    with pytest.raises(ScienceInputError) as err:
        fit_gaussian_2d(image, **kwargs)
    assert err.value.code == code


def test_blank_box_is_a_fit_failure(tmp_path: Path) -> None:
    image = injected(tmp_path, pa_deg=40.0, rotation_deg=0.0, seed=1)
    blank = SkyImage(np.full(image.shape, np.nan), image.wcs, image.header, image.unit, image.beam)
    with pytest.raises(ScienceInputError) as err:
        fit_gaussian_2d(blank, RA, DEC)
    assert err.value.code == "FIT_FAILED"
