"""ese-drw-3.4's fade fits (``dsa110.science.ese_fade``) and the penalised fade test, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsa110.science.ese_edge import fade_minus_lens, lens_ingress_chi2
from dsa110.science.ese_fade import RAMP_LENGTHS_DAYS, FadeFit, _shapes, best_fade_chi2, fade_chi2

FWHM_PER_SIGMA = 2.3548200450309493


def test_fade_chi2_by_hand() -> None:
    # y = 1, 1, 0.6, 0 on r = 0, 0, 0.5, 1 (unit weights): S0 = 4, S_y = 2.6, S_yy = 2.36,
    # S_r = 1.5, S_rr = 1.25, S_ry = 0.3; det = 4 * 1.25 - 1.5**2 = 2.75;
    # d = (1.5 * 2.6 - 4 * 0.3) / 2.75 = 0.981818, b = (1.25 * 2.6 - 1.5 * 0.3) / 2.75 = 1.018182;
    # chi2 = 2.36 - 1.018182 * 2.6 + 0.981818 * 0.3 = 0.007273 (residuals -0.018182,
    # -0.018182, 0.072727, -0.036364).
    r = np.array([[0.0, 0.0, 0.5, 1.0]])
    w = np.ones(4)
    assert fade_chi2(np.array([1.0, 1.0, 0.6, 0.0]), w, r)[0] == pytest.approx(0.0072727, abs=1e-6)
    # Rising instead (d = -1 < 0): the constrained optimum is the constant, mean 0.375,
    # chi2 = 2 * 0.375**2 + 0.125**2 + 0.625**2 = 0.6875.
    assert fade_chi2(np.array([0.0, 0.0, 0.5, 1.0]), w, r)[0] == pytest.approx(0.6875)
    # Weights count: w = 1, 1, 2, 1 on the first curve: S0 = 5, S_y = 3.2, S_yy = 2.72,
    # S_r = 2, S_rr = 1.5, S_ry = 0.6; det = 7.5 - 4 = 3.5; d = (6.4 - 3) / 3.5 = 0.971429,
    # b = (4.8 - 1.2) / 3.5 = 1.028571; chi2 = 2.72 - 3.291429 + 0.582857 = 0.011429.
    w2 = np.array([1.0, 1.0, 2.0, 1.0])
    assert fade_chi2(np.array([1.0, 1.0, 0.6, 0.0]), w2, r)[0] == pytest.approx(0.0114286, abs=1e-6)


def test_fade_shapes_by_hand() -> None:
    t = np.array([0.0, 1.0, 2.0, 4.0])
    # Ramp from t_s = 1 over L = 2: clip((t - 1) / 2, 0, 1) = 0, 0, 0.5, 1.
    ramp = _shapes(t, np.array([1.0]), np.array([2.0]), ramp=True)
    np.testing.assert_allclose(ramp[0], [0.0, 0.0, 0.5, 1.0])
    # Exponential from t_s = 1, tau = 1: 1 - exp(-(t - 1)) after t_s: 0, 0, 0.632121, 0.950213.
    expo = _shapes(t, np.array([1.0]), np.array([1.0]), ramp=False)
    np.testing.assert_allclose(expo[0], [0.0, 0.0, 1 - math.exp(-1), 1 - math.exp(-3)])


def test_a_ramp_off_the_coarse_grid_is_fitted_by_the_refinement() -> None:
    # A noise-free 30 % ramp from day 33.3 over 77.7 d (neither on the coarse grid), 1 %
    # errors: the coarse grid alone leaves chi2 in the tens; the refined fit is near 0.
    t = np.arange(0.0, 200.0)
    w = np.full(t.size, 1e4)
    y = 1.0 - 0.3 * np.clip((t - 33.3) / 77.7, 0, 1)
    starts = np.quantile(t, np.linspace(0.0, 0.97, 32))
    coarse = fade_chi2(
        y, w, _shapes(t, np.repeat(starts, RAMP_LENGTHS_DAYS.size), np.tile(RAMP_LENGTHS_DAYS, 32), True)
    )
    assert coarse.min() > 10.0
    assert best_fade_chi2(t, y, w) < 0.1 * coarse.min()
    # An exponential decline (tau 40 d from day 50) is a fade too.
    expo = 1.0 - 0.3 * np.where(t > 50.0, -np.expm1(-np.maximum(t - 50.0, 0.0) / 40.0), 0.0)
    assert best_fade_chi2(t, expo, w) < 1.0


def test_fade_fit_cache_is_the_suffix_fit() -> None:
    rng = np.random.default_rng(3)
    t = np.arange(0.0, 120.0)
    y = 1.0 - 0.2 * np.clip((t - 60.0) / 50.0, 0, 1) + 0.01 * rng.standard_normal(t.size)
    w = np.full(t.size, 1e4)
    fits = FadeFit(t, y, w)
    assert fits.chi2_from(40) == best_fade_chi2(t[40:], y[40:], w[40:])
    assert fits.chi2_from(40) == fits.chi2_from(40)  # memoised: the same value, once computed


def test_fade_minus_lens_is_the_bic_difference() -> None:
    # D = min(chi2_plain, chi2_caustic + 2 ln n) - chi2_fade (k = 4 for the plain lens and
    # the fades, 6 with the caustic): with chi2_fade given as 5, by the formula.
    t = np.arange(0.0, 150.0)
    w = np.full(t.size, 400.0)  # 5 % errors
    rng = np.random.default_rng(7)
    y = (
        1.0
        - 0.3 * np.exp(-0.5 * ((t - 160.0) * FWHM_PER_SIGMA / 60.0) ** 2)
        + 0.05 * rng.standard_normal(t.size)
    )
    plain, caustic = lens_ingress_chi2(t, y, w, 60.0, 160.0)
    assert caustic <= plain
    expected = min(plain, caustic + 2.0 * math.log(150)) - 5.0
    assert fade_minus_lens(t, y, w, 60.0, 160.0, fade_chi2=5.0) == pytest.approx(expected)


def test_a_ramp_is_a_fade_and_a_lens_ingress_is_a_lens() -> None:
    # Noise-free, 1 % errors: a ramp is fitted exactly by the fade family (D >= 0: the
    # lens never beats it); a Gaussian ingress (minimum 10 d after the last point) is fitted
    # exactly by the lens and no fade comes within the margin (D <= -2).
    t = np.arange(0.0, 200.0)
    w = np.full(t.size, 1e4)
    ramp = 1.0 - 0.3 * np.clip((t - 120.0) / 100.0, 0, 1)
    assert fade_minus_lens(t, ramp, w, 60.0) >= 0.0
    lens = 1.0 - 0.4 * np.exp(-0.5 * ((t - 210.0) * FWHM_PER_SIGMA / 60.0) ** 2)
    assert fade_minus_lens(t, lens, w, 60.0, 210.0) <= -2.0
