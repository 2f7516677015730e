"""The ESE detector on light curves whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from dsa110.science import ese
from dsa110.science.ese import DETECTOR_VERSION, EseInputError, detect_dip

FWHM_PER_SIGMA = 2.3548200450309493


def _curve(seed: int, shape, snr: float = 50.0):
    """A year at ~2 epochs a day, 1 % systematic plus thermal noise at ``snr``."""
    rng = np.random.default_rng(seed)
    t = np.sort(60000.0 + rng.uniform(0, 365, 700))
    truth = shape(t)
    err = np.full(t.size, 1.0 / snr)
    flux = truth * (1 + 0.01 * rng.standard_normal(t.size)) + err * rng.standard_normal(t.size)
    return t, flux, err


def _dip(t0: float, fwhm: float, depth: float):
    return lambda t: 1 - depth * np.exp(-0.5 * ((t - t0) * FWHM_PER_SIGMA / fwhm) ** 2)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_gaussian_dip_is_found_with_its_window_and_depth(seed):
    t, f, e = _curve(seed, _dip(60180.0, 40.0, 0.3))
    found = detect_dip(t, 0.25 * f, 0.25 * e)  # any flux unit: 250 mJy baseline
    assert found is not None
    assert found.detector_version == DETECTOR_VERSION
    assert found.start_mjd < 60180.0 < found.end_mjd
    assert 25.0 <= found.fwhm_days <= 60.0
    assert found.depth == pytest.approx(0.3, abs=0.05)
    assert found.baseline_flux_jy == pytest.approx(0.25, rel=0.03)
    assert found.min_flux_jy == pytest.approx(found.baseline_flux_jy * (1 - found.depth))
    assert found.score >= 1.0 and found.significance >= 4.0


def test_caustic_spikes_do_not_hide_the_dip():
    def lensed(t):
        spikes = sum(0.4 * np.exp(-0.5 * ((t - (60180 + s * 45)) / 3.0) ** 2) for s in (-1, 1))
        return _dip(60180.0, 60.0, 0.4)(t) + spikes

    found = detect_dip(*_curve(4, lensed))
    assert found is not None and found.start_mjd < 60180 < found.end_mjd


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("steady", np.ones_like),
        (
            "flare",
            lambda t: 1 + 1.0 * np.where(t < 60150, np.exp((t - 60150) / 3), np.exp(-(t - 60150) / 30)),
        ),
        ("fade", lambda t: 1 - 0.4 * np.clip((t - 60100) / 120, 0, 1)),
        ("step", lambda t: 1 - 0.3 * (t > 60200)),
        ("short dip", _dip(60200.0, 3.0, 0.7)),
    ],
)
@pytest.mark.parametrize("seed", [1, 2])
def test_things_that_are_not_eses_are_not_flagged(name, shape, seed):
    assert detect_dip(*_curve(seed, shape)) is None, name


def test_single_bad_epochs_are_not_an_event():
    t, f, e = _curve(5, np.ones_like)
    f[[100, 400, 401 + 50]] *= [0.2, 1.8, 0.3]
    assert detect_dip(t, f, e) is None


def test_too_few_points_is_no_answer_not_an_error():
    assert detect_dip([60000.0, 60001.0], [1.0, 0.5], [0.1, 0.1]) is None


@pytest.mark.parametrize(
    ("t", "f", "e"),
    [
        ([1.0, 2.0], [1.0], [0.1, 0.1]),
        ([1.0, 2.0], [1.0, float("nan")], [0.1, 0.1]),
        ([1.0, 2.0], [1.0, 1.0], [0.1, 0.0]),
        ([1.0, 2.0], ["x", "y"], [0.1, 0.1]),
    ],
)
def test_bad_input_is_a_clear_error(t, f, e):
    with pytest.raises(EseInputError):
        detect_dip(t, f, e)


def _drw(seed: int, t: np.ndarray, rms: float, tau: float) -> np.ndarray:
    """An exactly sampled damped random walk (Ornstein-Uhlenbeck), zero mean, rms ``rms``."""
    rng = np.random.default_rng(seed)
    x = np.empty_like(t)
    x[0] = rms * rng.standard_normal()
    for i in range(1, t.size):
        decay = np.exp(-(t[i] - t[i - 1]) / tau)
        x[i] = x[i - 1] * decay + rms * np.sqrt(1 - decay**2) * rng.standard_normal()
    return x


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_red_noise_alone_is_not_an_event(seed):
    # AGN variability (8 % rms on 60 d) wanders by 10-20 % over weeks: not a lens.
    t, f, e = _curve(seed, np.ones_like)
    assert detect_dip(t, f * (1 + _drw(seed, t, 0.08, 60.0)), e) is None


def test_a_dip_on_a_mildly_red_source_is_found():
    t, f, e = _curve(21, _dip(60200.0, 50.0, 0.35))
    found = detect_dip(t, f * (1 + _drw(21, t, 0.02, 100.0)), e)
    assert found is not None and found.start_mjd < 60200.0 < found.end_mjd
    assert found.red_sigma >= 5.0


def test_drw_likelihoods_equal_the_dense_gaussian_process_by_hand():
    """The Kalman recursion against the dense covariance, on six points.

    For each (sigma, tau) on the grid: C = sigma**2 exp(-|dt| / tau) + diag(e**2),
    ln L = -(r' C^-1 r + ln det C) / 2 with r the GLS residual of y about its mean; the
    detector's null log-likelihood is the maximum over the grid.
    """
    t = np.array([0.0, 1.0, 1.5, 4.0, 9.0, 9.2])
    y = np.array([1.0, 0.97, 1.02, 0.9, 1.05, 1.01])
    e = np.array([0.02, 0.03, 0.02, 0.05, 0.02, 0.04])
    best = -np.inf
    for tau in ese.DRW_TAUS_DAYS:
        for sigma in ese.DRW_SIGMAS:
            cov = sigma**2 * np.exp(-np.abs(t[:, None] - t[None, :]) / tau) + np.diag(e**2)
            inv = np.linalg.inv(cov)
            ones = np.ones_like(y)
            mean = (ones @ inv @ y) / (ones @ inv @ ones)
            r = y - mean
            best = max(best, -0.5 * (r @ inv @ r + np.linalg.slogdet(cov)[1]))
    trial = ese._Trial(width=3.0, t0=4.0, a=0.1, b=1.0, s_white=10.0)
    null, dip, _cond = ese._drw_loglikes(t, y, e, trial)
    assert null == pytest.approx(best, rel=1e-9, abs=1e-9)
    assert dip >= null  # the alternative nests the null


def test_detector_version_names_the_drw_test():
    assert DETECTOR_VERSION == "ese-drw-3.5"
