"""1-D Gaussian and Moffat fits of profiles, against values computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import open_image
from dsa110.science.profile_fit import MAX_FIT_POINTS, fit_curve, fit_profile
from dsa110.science.profiles import Pixel, line_profile, radial_profile
from tests.science.error_bars import assert_errors_match_scatter
from tests.science.fits_factory import sin_header, sky_gaussian, sky_moffat, write_image

X = np.arange(0.0, 200.0, 2.0)


def gaussian(x: np.ndarray, amplitude: float, center: float, sigma: float, background: float) -> np.ndarray:
    return amplitude * np.exp(-0.5 * ((x - center) / sigma) ** 2) + background


def moffat(
    x: np.ndarray, amplitude: float, center: float, alpha: float, beta: float, background: float
) -> np.ndarray:
    return amplitude * (1.0 + ((x - center) / alpha) ** 2) ** (-beta) + background


def test_a_noiseless_gaussian_is_recovered_with_its_fwhm() -> None:
    fit = fit_curve(X, list(gaussian(X, 2.0, 90.0, 12.0, 0.3)), [0.1] * X.size, "gaussian")
    assert (fit.amplitude, fit.center, fit.width, fit.background) == pytest.approx((2.0, 90.0, 12.0, 0.3))
    # FWHM = 2 sqrt(2 ln 2) sigma = 2 * 1.1774100 * 12 = 28.257840
    assert fit.fwhm == pytest.approx(28.257840, rel=1e-6)
    assert fit.beta is None and fit.beta_err is None
    assert fit.r_squared == pytest.approx(1.0) and fit.chi2 == pytest.approx(0.0, abs=1e-12)
    assert fit.n_points == X.size and fit.weighted


def test_a_noiseless_moffat_is_recovered_with_its_fwhm() -> None:
    fit = fit_curve(X, list(moffat(X, 2.0, 90.0, 15.0, 3.0, 0.3)), None, "moffat")
    assert (fit.amplitude, fit.center, fit.width, fit.beta, fit.background) == pytest.approx(
        (2.0, 90.0, 15.0, 3.0, 0.3), rel=1e-6
    )
    # FWHM = 2 alpha sqrt(2^(1/beta) - 1) = 30 sqrt(2^(1/3) - 1) = 30 sqrt(0.2599210) = 15.294736
    assert fit.fwhm == pytest.approx(15.294736, rel=1e-6)
    assert not fit.weighted  # no errors given


def test_the_moffat_fwhm_is_where_the_curve_is_at_half_its_peak() -> None:
    fit = fit_curve(X, list(moffat(X, 1.0, 100.0, 8.0, 1.7, 0.0)), None, "moffat")
    half = fit.center + fit.fwhm / 2.0
    assert moffat(np.array([half]), fit.amplitude, fit.center, fit.width, fit.beta or 0.0, 0.0)[
        0
    ] == pytest.approx(fit.amplitude / 2.0, rel=1e-9)


def test_statistics_follow_their_definitions() -> None:
    rng = np.random.default_rng(3)
    y = gaussian(X, 1.0, 100.0, 10.0, 0.1) + rng.normal(0.0, 0.05, X.size)
    errors = np.full(X.size, 0.05)
    fit = fit_curve(X, list(y), list(errors), "gaussian")
    model = np.array(fit.model_values)
    chi2 = float(np.sum(((y - model) / errors) ** 2))
    assert fit.chi2 == pytest.approx(chi2, rel=1e-9)
    assert fit.reduced_chi2 == pytest.approx(chi2 / (X.size - 4), rel=1e-9)
    assert fit.r_squared == pytest.approx(1.0 - np.sum((y - model) ** 2) / np.sum((y - y.mean()) ** 2))
    assert fit.reduced_chi2 == pytest.approx(1.0, abs=0.35)  # the errors given are the true noise
    # Gaussian: FWHM error = 2 sqrt(2 ln 2) x sigma error (the only non-zero derivative)
    assert fit.fwhm_err == pytest.approx(2.0 * math.sqrt(2.0 * math.log(2.0)) * (fit.width_err or 0.0))


def test_moffat_errors_match_the_scatter_over_noise_realisations() -> None:
    truth = (1.0, 100.0, 12.0, 2.5, 0.2)
    fits = [
        fit_curve(
            X, list(moffat(X, *truth) + np.random.default_rng(s).normal(0, 0.03, X.size)), None, "moffat"
        )
        for s in range(40)
    ]
    assert_errors_match_scatter(fits, [("fwhm", "fwhm_err"), ("beta", "beta_err"), ("center", "center_err")])


def test_blanks_are_skipped_and_the_curve_covers_every_point() -> None:
    y: list[float | None] = list(gaussian(X, 2.0, 90.0, 12.0, 0.3))
    y[10] = y[50] = None
    fit = fit_curve(X, y, None, "gaussian")
    assert fit.n_points == X.size - 2 and len(fit.model_values) == X.size
    assert fit.model_values[50] == pytest.approx(float(gaussian(X[50:51], 2.0, 90.0, 12.0, 0.3)[0]))


def test_a_radial_profile_is_fitted_about_zero_radius(tmp_path: Path) -> None:
    header = sin_header(nx=64, ny=64, cell_arcsec=2.0, beam=None)
    data = sky_gaussian(
        header, 150.0, 37.0, peak=3.0, fwhm_major_arcsec=20.0, fwhm_minor_arcsec=20.0, pa_deg=0.0
    )
    image = open_image(write_image(tmp_path / "round.fits", data, header))
    fit = fit_profile(radial_profile(image, (150.0, 37.0), 50.0, n_annuli=25, noise=0.01), "gaussian")
    assert fit.center == pytest.approx(0.0, abs=0.3)
    # Annulus means of a Gaussian are a little lower than its value at the mid-radius: 3 %.
    assert fit.fwhm == pytest.approx(20.0, rel=0.03)


@pytest.mark.parametrize("pa_deg", [0.0, 60.0])
def test_a_line_across_a_source_measures_its_fwhm_on_the_sky(tmp_path: Path, pa_deg: float) -> None:
    """A line along the major axis of a Moffat source: the 1-D fit returns the 2-D shape's FWHM."""
    header = sin_header(nx=120, ny=120, cell_arcsec=2.0, rotation_deg=20.0)
    ra, dec = 150.0, 37.0
    data = sky_moffat(
        header, ra, dec, peak=1.0, fwhm_major_arcsec=24.0, fwhm_minor_arcsec=12.0, pa_deg=pa_deg, beta=3.0
    )
    image = open_image(write_image(tmp_path / f"m{pa_deg}.fits", data, header))
    # End points 90 arcsec either side of the source along the major axis (small-angle offsets).
    d_east, d_north = 90.0 * math.sin(math.radians(pa_deg)), 90.0 * math.cos(math.radians(pa_deg))
    cos_dec = math.cos(math.radians(dec))
    start = (ra - d_east / 3600.0 / cos_dec, dec - d_north / 3600.0)
    end = (ra + d_east / 3600.0 / cos_dec, dec + d_north / 3600.0)
    fit = fit_profile(line_profile(image, start, end, noise=0.01), "moffat")
    assert fit.fwhm == pytest.approx(24.0, rel=0.02)
    assert fit.beta == pytest.approx(3.0, rel=0.05)
    assert fit.center == pytest.approx(90.0, abs=0.5)


@pytest.mark.parametrize(
    ("x", "y", "model", "code"),
    [
        (X, list(X), "lorentzian", "BAD_MODEL"),
        (X[:4], [1.0, 2.0, 1.0, 0.5], "gaussian", "FIT_FAILED"),
        (X[:5], [1.0, 2.0, 1.0, 0.5, 0.1], "moffat", "FIT_FAILED"),
        (X, [None] * X.size, "gaussian", "FIT_FAILED"),
        (X, [float("nan")] * X.size, "moffat", "FIT_FAILED"),
        (X[:3], [1.0, 2.0], "gaussian", "FIT_FAILED"),
        (np.arange(MAX_FIT_POINTS + 1.0), [1.0] * (MAX_FIT_POINTS + 1), "gaussian", "BAD_SIZE"),
    ],
)
def test_bad_fits_are_clear_errors(x: np.ndarray, y: list[float | None], model: str, code: str) -> None:
    with pytest.raises(ScienceInputError) as err:
        fit_curve(x, y, None, model)
    assert err.value.code == code


@pytest.mark.parametrize("model", ["gaussian", "moffat"])
def test_a_flat_profile_fits_no_source(model: str) -> None:
    fit = fit_curve(X, [1.0] * X.size, None, model)
    assert fit.amplitude == pytest.approx(0.0, abs=1e-9) and fit.background == pytest.approx(1.0)
    assert fit.r_squared is None  # R^2 = 1 - SS_res / SS_tot is undefined when SS_tot = 0


def test_pixel_and_sky_lines_give_the_same_fit(tmp_path: Path) -> None:
    header = sin_header(nx=80, ny=80, cell_arcsec=2.0)
    data = sky_gaussian(
        header, 150.0, 37.0, peak=1.0, fwhm_major_arcsec=16.0, fwhm_minor_arcsec=16.0, pa_deg=0.0
    )
    image = open_image(write_image(tmp_path / "g.fits", data, header))
    a, b = Pixel(10.0, 39.5), Pixel(70.0, 39.5)
    by_pixel = fit_profile(line_profile(image, a, b, noise=0.01), "gaussian")
    sky = [tuple(float(v) for v in image.pixel_to_world(p.x, p.y)) for p in (a, b)]
    by_sky = fit_profile(line_profile(image, sky[0], sky[1], noise=0.01), "gaussian")
    assert by_pixel.fwhm == pytest.approx(by_sky.fwhm, rel=1e-6)
    assert by_pixel.fwhm == pytest.approx(16.0, rel=0.02)
