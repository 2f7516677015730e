"""One-sided (ongoing) ESE dips: found while the ingress is seen, not for fades that stay low."""

from __future__ import annotations

import numpy as np
import pytest

from dsa110.science.ese import EseDetection
from dsa110.science.ese_edge import detect_all, recovery_check, recovery_shown
from dsa110.science.ese_tracker import Candidate, transition

FWHM_PER_SIGMA = 2.3548200450309493
END = 60365.0


def _curve(seed: int, shape, snr: float = 50.0):
    """A year at ~2 epochs a day ending at ``END``, 1 % systematic plus thermal noise."""
    rng = np.random.default_rng(seed)
    t = np.sort(END - rng.uniform(0, 365, 700))
    err = np.full(t.size, 1.0 / snr)
    flux = shape(t) * (1 + 0.01 * rng.standard_normal(t.size)) + err * rng.standard_normal(t.size)
    return t, flux, err


def _lens(t0: float, fwhm: float, depth: float):
    return lambda t: 1 - depth * np.exp(-0.5 * ((t - t0) * FWHM_PER_SIGMA / fwhm) ** 2)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_lens_ingress_cut_by_the_end_of_the_data_is_ongoing(seed: int) -> None:
    found = detect_all(*_curve(seed, _lens(END + 5.0, 60.0, 0.4)))
    assert [d.kind for d in found] == ["ongoing"]
    # 39 % of the depth is seen by the end; the minimum is extrapolated, so at least that.
    assert found[0].depth >= 0.3
    assert found[0].false_alarm_probability is not None and found[0].false_alarm_probability < 0.01


@pytest.mark.parametrize("seed", [1, 2])
def test_a_fade_that_stays_low_is_rejected_once_the_data_show_no_recovery(seed: int) -> None:
    # 40 % over 60 d to a bottom at END - 120, then flat. Seen 10 d after the bottom it is
    # what an ongoing lens looks like; 120 d later the flux has not come back.
    t, f, e = _curve(seed, lambda t: 1 - 0.4 * np.clip((t - (END - 180.0)) / 60.0, 0, 1))
    early = t <= END - 110.0
    opened = detect_all(t[early], f[early], e[early])
    assert [d.kind for d in opened] == ["ongoing"]
    assert recovery_shown(t, f, e, opened[0]) is False
    cands: list[Candidate] = []
    transition(cands, opened, END - 110.0)
    later = detect_all(t, f, e)
    assert not any(d.kind == "ongoing" for d in later)
    assert [new for _, _, new in transition(cands, later, END, recovery_check(t, f, e))] == ["rejected"]
    # A lens seen past its minimum is coming back.
    t, f, e = _curve(seed, _lens(END - 60.0, 60.0, 0.4))
    assert recovery_shown(t, f, e, _ongoing(END - 60.0, 60.0)) is True


def _ongoing(t0: float, fwhm: float, high: float = 1.0, low: float = 0.6) -> EseDetection:
    return EseDetection(
        score=1.2, significance=9.0, start_mjd=t0 - fwhm / 2, end_mjd=t0 + fwhm / 2, center_mjd=t0,
        fwhm_days=fwhm, depth=1 - low / high, baseline_flux_jy=high, min_flux_jy=low, white_sigma=9.0,
        red_sigma=6.0, kind="ongoing",
    )  # fmt: skip


def test_recovery_by_hand() -> None:
    t = np.arange(0.0, 40.0)
    err = np.full(t.size, 0.01)
    d = _ongoing(t0=20.0, fwhm=8.0)  # compared on the points t > t0 - W/4 = 18: 19..39
    lens = _lens(20.0, 8.0, 0.4)(t)
    fade = np.where(t < 16, 1.0, 0.6)
    assert recovery_shown(t, lens, err, d) is True  # chi2_lens = 0 < chi2_flat
    assert recovery_shown(t, fade, err, d) is False  # chi2_flat = 0 < chi2_lens
    # Data to t = 23 (< t0 + W/2 = 24): 5 points 19..23; the lens there is 0.6 + 0.4 (1 - g),
    # g = exp(-4 ln 2 ((t - 20) / 8)**2): 0.9576, 1, 0.9576, 0.8409, 0.6771, i.e.
    # y = 0.6170, 0.6, 0.6170, 0.6636, 0.7292. Units of the median (0.6663 of the 24 points
    # up to 23: the 12th/13th values) and errors hypot(0.01 / 0.6663, 0.01) = 0.018022.
    # chi2_flat = sum((y - mean)**2) / (0.6663 * 0.018022)**2 = 0.011846 / 1.44205e-4 = 82.1
    # > 9: decided early, True. A flat curve at 0.6 there: chi2_lens = 0.010232 / ... = 71 > 9:
    # False.
    assert recovery_shown(t[:24], lens[:24], err[:24], d) is True
    assert recovery_shown(t[:24], np.where(t < 19, lens, 0.6)[:24], err[:24], d) is False
    # Too few points past t0 - W/4: undecided.
    assert recovery_shown(t[:22], lens[:22], err[:22], d) is None
