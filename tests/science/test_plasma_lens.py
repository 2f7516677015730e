"""The Gaussian plasma lens the ESE injection bench can inject (``dsa110.science.plasma_lens``),
against values worked by hand from its lens equation u = x (1 + alpha exp(-x^2))."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.ese_sim import ESE_SHAPES, simulate
from dsa110.science.plasma_lens import CAUSTIC_ALPHA, gain_curve


def test_a_weak_lens_dims_the_axis_to_one_over_one_plus_alpha() -> None:
    # du/dx at x = 0 is 1 + alpha: one image, gain 1 / (1 + alpha); alpha = 1 gives 0.5.
    # The source (beta = 0.05) is small against the curvature of G there (a few 1e-3).
    lens = gain_curve(1.0, 0.05)
    assert lens.at(np.array([0.0]))[0] == pytest.approx(0.5, abs=0.01)
    assert lens.depth == pytest.approx(0.5, abs=0.01)


def test_flux_is_conserved() -> None:
    # Every ray lands somewhere: the mean gain over a span much wider than the lens is 1.
    for alpha, beta in ((0.5, 0.1), (3.0, 0.1), (20.0, 0.5)):
        assert gain_curve(alpha, beta).gain.mean() == pytest.approx(1.0, abs=1e-3)


def test_below_the_caustic_alpha_the_flanks_peak_where_hand_worked() -> None:
    # The bracket 1 + alpha (1 - 2x^2) exp(-x^2) is least at x^2 = 3/2: 1 - 2 alpha e^-1.5,
    # so alpha = 1 peaks at 1 / (1 - 2 e^-1.5) = 1.8096, a caustic at alpha = e^1.5 / 2.
    assert abs(CAUSTIC_ALPHA - 2.2408) < 1e-4
    peak = 1.0 / (1.0 - 2.0 * math.exp(-1.5))
    assert gain_curve(1.0, 0.05).gain.max() == pytest.approx(peak, rel=0.02)


def test_a_strong_lens_has_a_flat_floor_and_caustic_spikes() -> None:
    lens = gain_curve(10.0, 0.1)
    floor = lens.at(np.linspace(-0.5, 0.5, 11))
    assert lens.depth > 0.85 and np.ptp(floor) < 0.05  # 1 / (1 + 10) on the axis
    assert lens.gain.max() > 2.0  # spikes, rounded by the source's size
    assert gain_curve(10.0, 1.0).gain.max() < lens.gain.max()  # a larger source: lower spikes


def test_bad_lens_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        gain_curve(-1.0, 0.1)
    with pytest.raises(ValueError):
        gain_curve(1.0, 0.0)


def test_the_simulation_injects_lens_events_with_their_depth_and_width() -> None:
    assert ESE_SHAPES == ("dip", "lens")
    sim = simulate(5, 60, ese_shape="lens")
    eses = [s for s in sim.sources if s.kind == "ese"]
    assert eses and all({"alpha", "beta", "depth", "fwhm", "t0"} <= s.params.keys() for s in eses)
    for src in eses:
        assert src.params["depth"] == pytest.approx(gain_curve(src.params["alpha"], src.params["beta"]).depth)
    # the default shape is unchanged by the option: the same seed gives the same dips
    assert np.array_equal(simulate(5, 60).flux, simulate(5, 60, ese_shape="dip").flux, equal_nan=True)
    with pytest.raises(ValueError):
        simulate(5, 60, ese_shape="boxcar")
