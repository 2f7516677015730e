"""The dip template's closed-form weighted least squares against values computed by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dsa110.science.dip_wls import dip_wls, lens_family_chi2


def _sums(g: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, ...]:
    return (w.sum(), (w * y).sum(), (w * g).sum(), (w * g * g).sum(), (w * g * y).sum(), (w * y * y).sum())


def test_a_three_point_fit_by_hand() -> None:
    # g = (0, 0.5, 1), y = (1, 0.9, 0.6), w = 1: S_1 = 3, S_y = 2.5, S_g = 1.5, S_gg = 1.25,
    # S_gy = 1.05, S_yy = 2.17; det = 3 x 1.25 - 1.5**2 = 1.5;
    # a = (1.5 x 2.5 - 3 x 1.05) / 1.5 = 0.4, b = (1.25 x 2.5 - 1.5 x 1.05) / 1.5 = 1.033333;
    # sigma_a**2 = 3 / 1.5 = 2; chi2 = 2.17 - 1.033333 x 2.5 + 0.4 x 1.05 = 0.0066667
    # (the residuals -1/30, 2/30, -1/30 squared and summed); S_w = 0.4 / sqrt 2 = 0.282843.
    g, y, w = np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.9, 0.6]), np.ones(3)
    fit = dip_wls(*_sums(g, y, w))
    assert fit.ok
    assert fit.a == pytest.approx(0.4) and fit.b == pytest.approx(1.0333333, abs=1e-7)
    assert fit.s0 / fit.det == pytest.approx(2.0) and fit.chi2 == pytest.approx(0.0066667, abs=1e-7)
    assert fit.s_white() == pytest.approx(0.282843, abs=1e-6)
    # Refused by the caller (say b <= 0 wanted): -inf.
    assert fit.s_white(False) == -np.inf


def test_many_templates_at_once_and_a_singular_one() -> None:
    # Rows: the template above, a flat one (g = 0.5 everywhere: det = 3 x 0.75 - 1.5**2 = 0,
    # the baseline itself, singular), and the first scaled by 2 (a halves, b and chi2 stay).
    g = np.array([[0.0, 0.5, 1.0], [0.5, 0.5, 0.5], [0.0, 1.0, 2.0]])
    y, w = np.array([1.0, 0.9, 0.6]), np.ones(3)
    s0, sy, syy = w.sum(), (w * y).sum(), (w * y * y).sum()
    fit = dip_wls(s0, sy, g @ w, (g * g) @ w, g @ (w * y), syy)
    assert fit.ok.tolist() == [True, False, True]
    assert fit.a[2] == pytest.approx(0.2) and fit.b[2] == pytest.approx(fit.b[0])
    assert fit.chi2[2] == pytest.approx(fit.chi2[0])
    s_w = fit.s_white()
    assert s_w[1] == -np.inf and s_w[2] == pytest.approx(s_w[0])  # S_w does not depend on g's scale
    # Without S_yy the scan's fits have no chi2.
    assert np.isnan(dip_wls(s0, sy, g @ w, (g * g) @ w, g @ (w * y)).chi2).all()


def test_a_refused_or_far_away_template_is_computed_without_overflow() -> None:
    # The caller's own refusal (valid False): not ok, a and b formed with det = 1
    # (g, y as above: a = 1.5 x 2.5 - 3 x 1.05 = 0.6, b = 1.25 x 2.5 - 1.5 x 1.05 = 1.55).
    g, y, w = np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.9, 0.6]), np.ones(3)
    refused = dip_wls(*_sums(g, y, w), valid=False)
    assert not refused.ok and refused.a == pytest.approx(0.6) and refused.b == pytest.approx(1.55)
    assert refused.s_white() == -np.inf
    # A template 1e-155 high (a narrow Gaussian far from the points): S_gg ~ 1e-309, det
    # ~ 1e-310, so S_1 / det overflows; a chi2-only fit never forms it (no warning raised).
    tiny = np.array([1e-155, 2e-155, 3e-155])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = dip_wls(*_sums(tiny, y, w))
        assert np.isfinite(fit.chi2)


def test_the_lens_with_a_caustic_by_hand() -> None:
    # g and h each non-zero on one point (2 and 3 of 4), w = 1, y = (1, 0.6, 1.2, 1.1).
    # Plain y = b - a g fits point 2 exactly: b = mean(1, 1.2, 1.1) = 1.1, a = 0.5,
    # chi2 = 0.1**2 + 0.1**2 = 0.02. With the caustic, points 2 and 3 are fitted exactly:
    # b = mean(1, 1.1) = 1.05, a = 0.45, c = 0.15, chi2 = 2 x 0.05**2 = 0.005.
    g = np.array([[0.0, 1.0, 0.0, 0.0]])
    h = np.array([[[0.0, 0.0, 1.0, 0.0]]])
    w = np.ones(4)
    plain, caustic = lens_family_chi2(g, h, np.array([1.0, 0.6, 1.2, 1.1]), w)
    assert plain[0] == pytest.approx(0.02) and caustic[0, 0] == pytest.approx(0.005)
    # Point 3 below the baseline (0.9): the caustic would need c = 0.9 - 1.05 < 0, not a
    # caustic: inf. A bump instead of a dip (point 2 at 1.4) is refused by both: a < 0.
    assert lens_family_chi2(g, h, np.array([1.0, 0.6, 0.9, 1.1]), w)[1][0, 0] == np.inf
    bump_plain, bump_caustic = lens_family_chi2(g, h, np.array([1.0, 1.4, 1.2, 1.1]), w)
    assert bump_plain[0] == np.inf and bump_caustic[0, 0] == np.inf
    # Weights count: w = (1, 1, 1, 3): b = (1 + 3 x 1.1) / 4 = 1.075, chi2 = 0.075**2 + 3 x 0.025**2.
    weighted = lens_family_chi2(g, h, np.array([1.0, 0.6, 1.2, 1.1]), np.array([1.0, 1.0, 1.0, 3.0]))
    assert weighted[1][0, 0] == pytest.approx(0.075**2 + 3 * 0.025**2)
    # A caustic that is zero on every point, or the dip itself, is singular: inf.
    flat = np.stack([np.zeros((1, 4)), g])
    assert (lens_family_chi2(g, flat, np.array([1.0, 0.6, 1.2, 1.1]), w)[1] == np.inf).all()


def test_a_caustic_far_from_the_points_explains_one_point_without_losing_digits() -> None:
    # h = 1e-40 on point 3 only (a caustic ~13 of its sigmas away): least squares puts
    # c = 1.7e39 there and fits that point; the chi2 is that of the others about their mean
    # b = (1 + 1 + 1.1) / 3 = 1.0333...: 2 x (1/30)**2 + (2/30)**2 = 0.0066667, times w = 1e4.
    g = np.array([[0.0, 1.0, 0.0, 0.0, 0.0]])
    h = np.array([[[0.0, 0.0, 1e-40, 0.0, 0.0]]])
    w = np.full(5, 1e4)
    caustic = lens_family_chi2(g, h, np.array([1.0, 0.6, 1.2, 1.0, 1.1]), w)[1][0, 0]
    assert caustic == pytest.approx(1e4 * (2 * (1 / 30) ** 2 + (2 / 30) ** 2), rel=1e-9)
