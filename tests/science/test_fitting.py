"""The 2-D Gaussian and Moffat fits recover injected sources, in sky units, on rotated grids."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import SkyImage, open_image
from dsa110.science.fitting import fit_source_2d
from dsa110.science.regions import CircleRegion, EllipseRegion
from tests.science.error_bars import assert_errors_match_scatter
from tests.science.fits_factory import sin_header, sky_gaussian, sky_moffat, write_image

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
    fit = fit_source_2d(image, RA + 0.001, DEC - 0.001)  # a seed a few arcsec off
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
        fit_source_2d(injected(tmp_path, pa_deg=70.0, rotation_deg=10.0, seed=s), RA, DEC) for s in range(20)
    ]
    assert_errors_match_scatter(
        fits_,
        [
            ("peak", "peak_err"),
            ("fwhm_major_arcsec", "fwhm_major_err_arcsec"),
            ("fwhm_minor_arcsec", "fwhm_minor_err_arcsec"),
            ("pa_deg", "pa_err_deg"),
        ],
    )


def test_fit_inside_a_region(tmp_path: Path) -> None:
    image = injected(tmp_path, pa_deg=40.0, rotation_deg=0.0, seed=5)
    fit = fit_source_2d(image, region=EllipseRegion(RA, DEC, 60.0, 45.0, 40.0))
    assert fit.peak == pytest.approx(PEAK, rel=0.02)
    assert fit.fwhm_major_arcsec == pytest.approx(MAJOR, rel=0.02)
    assert fit.n_pixels == pytest.approx(math.pi * 60 * 45 / 9, rel=0.05)


def test_fit_without_background(tmp_path: Path) -> None:
    header = sin_header(nx=64, ny=64, cell_arcsec=3.0)
    data = sky_gaussian(header, RA, DEC, peak=2.0, fwhm_major_arcsec=20.0, fwhm_minor_arcsec=20.0, pa_deg=0.0)
    data += np.random.default_rng(2).normal(0.0, 0.02, data.shape)
    fit = fit_source_2d(
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
        ({"ra_deg": RA, "dec_deg": DEC, "model": "sersic"}, "BAD_MODEL"),
        ({"region": CircleRegion(RA, DEC, 4.0), "model": "moffat"}, "FIT_FAILED"),
    ],
)
def test_bad_requests_are_clear_errors(tmp_path: Path, kwargs: dict[str, Any], code: str) -> None:
    image = injected(tmp_path, pa_deg=40.0, rotation_deg=0.0, seed=1)
    if kwargs.get("box_arcsec") == 1e9:
        image = SkyImage(np.zeros((600, 600)), image.wcs, image.header, image.unit, image.beam)
    with pytest.raises(ScienceInputError) as err:
        fit_source_2d(image, **kwargs)
    assert err.value.code == code


def test_blank_box_is_a_fit_failure(tmp_path: Path) -> None:
    image = injected(tmp_path, pa_deg=40.0, rotation_deg=0.0, seed=1)
    blank = SkyImage(np.full(image.shape, np.nan), image.wcs, image.header, image.unit, image.beam)
    with pytest.raises(ScienceInputError) as err:
        fit_source_2d(blank, RA, DEC)
    assert err.value.code == "FIT_FAILED"


# --- Moffat ------------------------------------------------------------------------------

BETA = 2.5


def injected_moffat(
    tmp_path: Path, *, pa_deg: float, rotation_deg: float, noise: float, seed: int = 0
) -> SkyImage:
    header = sin_header(nx=96, ny=96, cell_arcsec=3.0, rotation_deg=rotation_deg)
    data = sky_moffat(
        header, RA, DEC, peak=PEAK, fwhm_major_arcsec=MAJOR, fwhm_minor_arcsec=MINOR, pa_deg=pa_deg, beta=BETA
    )
    data += BACKGROUND + np.random.default_rng(seed).normal(0.0, noise, data.shape) * (noise > 0)
    name = f"m{seed}_{pa_deg}_{rotation_deg}_{noise}.fits"
    return open_image(write_image(tmp_path / name, data, header))


@pytest.mark.parametrize(("pa_deg", "rotation_deg"), [(40.0, 0.0), (130.0, 25.0), (5.0, -60.0)])
def test_recovers_a_noiseless_moffat_and_its_flux(tmp_path: Path, pa_deg: float, rotation_deg: float) -> None:
    image = injected_moffat(tmp_path, pa_deg=pa_deg, rotation_deg=rotation_deg, noise=0.0)
    fit = fit_source_2d(image, RA + 0.001, DEC - 0.001, box_arcsec=240.0, model="moffat")
    assert fit.model == "moffat"
    assert fit.peak == pytest.approx(PEAK, rel=1e-3)
    assert fit.beta == pytest.approx(BETA, rel=1e-3)
    assert fit.fwhm_major_arcsec == pytest.approx(MAJOR, rel=1e-3)
    assert fit.fwhm_minor_arcsec == pytest.approx(MINOR, rel=1e-3)
    assert abs(pa_difference(fit.pa_deg, pa_deg)) < 1.0
    assert math.hypot(*offsets_arcsec(fit.ra_deg, fit.dec_deg)) < 0.05
    assert fit.background == pytest.approx(BACKGROUND, abs=1e-4)
    # S = A Omega_src / Omega_beam, Omega_src = pi a1 a2 / (beta - 1), Omega_beam = pi B1 B2 / (4 ln 2):
    # a = FWHM / (2 sqrt(2^(1/2.5) - 1)) = FWHM / 1.1305006: a1 = 26.536917, a2 = 13.268458 arcsec;
    # S = 4 ln 2 x 26.536917 x 13.268458 / (1.5 x 30 x 15) = 2.7725887 x 352.10367 / 675 = 1.446294
    assert fit.integrated_flux_jy == pytest.approx(1.446294, rel=2e-3)


def test_moffat_uncertainties_match_the_scatter_over_noise_realisations(tmp_path: Path) -> None:
    fits_ = [
        fit_source_2d(
            injected_moffat(tmp_path, pa_deg=70.0, rotation_deg=10.0, noise=NOISE, seed=s),
            RA,
            DEC,
            box_arcsec=240.0,
            model="moffat",
        )
        for s in range(20)
    ]
    assert np.mean([f.beta for f in fits_]) == pytest.approx(BETA, rel=0.1)
    assert np.mean([f.fwhm_major_arcsec for f in fits_]) == pytest.approx(MAJOR, rel=0.02)
    assert_errors_match_scatter(
        fits_, [("peak", "peak_err"), ("fwhm_major_arcsec", "fwhm_major_err_arcsec"), ("beta", "beta_err")]
    )


@pytest.mark.parametrize("model", ["gaussian", "moffat"])
def test_a_box_smaller_than_the_beam_is_still_fitted(tmp_path: Path, model: str) -> None:
    """The seed width (the beam) is clipped into the box, so the fit starts inside its bounds."""
    image = injected(tmp_path, pa_deg=40.0, rotation_deg=0.0, seed=1)
    fit = fit_source_2d(image, RA, DEC, box_arcsec=1.0, model=model)  # the smallest box: 8 x 8 pixels
    assert fit.n_pixels == 64 and fit.model == model
    assert math.hypot(*offsets_arcsec(fit.ra_deg, fit.dec_deg)) < 1.0


def test_a_gaussian_source_fitted_with_a_moffat_runs_beta_up(tmp_path: Path) -> None:
    """Moffat -> Gaussian as beta -> infinity: the fit of a Gaussian finds a large beta, same FWHM."""
    image = injected(tmp_path, pa_deg=40.0, rotation_deg=0.0, seed=3)
    fit = fit_source_2d(image, RA, DEC, model="moffat")
    assert fit.beta is not None and fit.beta > 8.0
    assert fit.fwhm_major_arcsec == pytest.approx(MAJOR, rel=0.03)
    gaussian = fit_source_2d(image, RA, DEC)
    assert gaussian.model == "gaussian" and gaussian.beta is None and gaussian.beta_err is None
