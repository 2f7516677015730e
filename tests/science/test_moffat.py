"""The Moffat profile's FWHM and volume against hand computation and numerical integration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dsa110.science.moffat import EllipticalMoffat2D, fwhm_per_alpha, moffat_1d, volume_per_amplitude


@pytest.mark.parametrize(
    ("beta", "expected"),
    [
        (1.0, 2.0),  # 2 sqrt(2^1 - 1) = 2
        (2.0, 1.2871885),  # 2 sqrt(sqrt(2) - 1) = 2 sqrt(0.4142136) = 2 x 0.6435943
        (2.5, 1.1305006),  # 2 sqrt(2^0.4 - 1) = 2 sqrt(0.3195079) = 2 x 0.5652503
        (4.765, 0.7914008),  # 2^(1/4.765) = 2^0.2098636 = 1.1565788; 2 sqrt(0.1565788) = 2 x 0.3957004
    ],
)
def test_fwhm_per_alpha_by_hand(beta: float, expected: float) -> None:
    assert fwhm_per_alpha(beta) == pytest.approx(expected, rel=1e-6)


def test_the_fwhm_is_at_half_maximum_and_tends_to_the_gaussian() -> None:
    alpha, beta = 7.0, 3.2
    assert moffat_1d(alpha * fwhm_per_alpha(beta) / 2.0, 1.0, 0.0, alpha, beta) == pytest.approx(0.5)
    # beta -> infinity with alpha = sigma sqrt(2 beta): FWHM / sigma -> 2 sqrt(2 ln 2) = 2.3548200
    huge = 1e7
    assert fwhm_per_alpha(huge) * math.sqrt(2.0 * huge) == pytest.approx(2.3548200, rel=1e-6)


def test_volume_matches_a_numerical_integral() -> None:
    """pi ax ay / (beta - 1) against a midpoint sum of the rotated model on a wide grid."""
    ax, ay, beta, theta = 3.0, 1.5, 3.0, 0.7
    step = 0.05
    grid = np.arange(-60.0, 60.0, step) + step / 2
    x, y = np.meshgrid(grid, grid, sparse=True)
    total = float(EllipticalMoffat2D.evaluate(x, y, 1.0, 0.0, 0.0, ax, ay, theta, beta).sum()) * step * step
    # pi * 3 * 1.5 / 2 = 7.0685835. Outside the grid lies less than the volume beyond q = (60/3)^2,
    # a fraction (1 + 400)^-(beta - 1) = 6e-6 of the total.
    assert volume_per_amplitude(ax, ay, beta) == pytest.approx(7.0685835, rel=1e-7)
    assert total == pytest.approx(7.0685835, rel=1e-4)


def test_elliptical_model_axes_follow_theta() -> None:
    """Along the rotated major axis the model falls as the 1-D Moffat of alpha_x."""
    ax, ay, beta, theta = 4.0, 2.0, 2.0, math.radians(30.0)
    r = np.linspace(0.0, 10.0, 11)
    along = EllipticalMoffat2D.evaluate(
        r * math.cos(theta), r * math.sin(theta), 1.0, 0.0, 0.0, ax, ay, theta, beta
    )
    across = EllipticalMoffat2D.evaluate(
        -r * math.sin(theta), r * math.cos(theta), 1.0, 0.0, 0.0, ax, ay, theta, beta
    )
    assert along == pytest.approx(moffat_1d(r, 1.0, 0.0, ax, beta))
    assert across == pytest.approx(moffat_1d(r, 1.0, 0.0, ay, beta))
