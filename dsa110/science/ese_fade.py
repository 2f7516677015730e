"""The best fade on the end of one light curve: the confuser of an ongoing ESE (ese-drw-3.4).

A source that fades (an AGN's decline) and a plasma lens's ingress both lower the flux at
the end of the data. ``dsa110.science.ese_edge`` keeps an ``ongoing`` dip only when a lens
ingress fits better than every fade; this module fits the fades. Two families, each with
a kink at the start time t_s, two linear coefficients (b, d >= 0) and two shape parameters:

    ramp (a straight decline over L days, then flat):
        y = b - d r(t),   r = clip((t - t_s) / L, 0, 1)
    exponential (a decline that slows: y -> b - d with e-folding time tau, the shape of
    AGN light-curve decays, e.g. the exponential flux decays of blazar flares fitted by
    Valtaoja et al. 1999, Hovatta et al. 2009):
        y = b - d r(t),   r = 1 - exp(-(t - t_s) / tau) for t > t_s,  0 before.

Each (t_s, L or tau) is fitted by weighted least squares (closed form from five weighted
sums, chi2 = S_yy - b S_y + d S_ry; a fit with d < 0 is replaced by the constant's chi2,
the constrained optimum at d = 0). The shape parameters are found on a coarse grid, then
refined twice around the best grid point (ese-drw-3.3 used the coarse grid alone, 60 start
quantiles x 18 lengths: at SNR 35-190 its misfit, tens to hundreds in chi2, let a lens
ingress "fit better" than the fade that the source really was; seeds 21, 31, 41).

``FadeFit`` caches per curve: every window is a suffix of the curve (the points from the
window's start to the last epoch), and a window's result is kept, so the 12 trials of one
search and the tracker's hysteresis on the same curve pay once per distinct window.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

COARSE_STARTS = 32
"""Coarse grid: start times at this many quantiles (0 to 0.97) of the window's times."""
RAMP_LENGTHS_DAYS = np.geomspace(2.0, 400.0, 14)
"""Coarse grid: ramp lengths (t_s + L may lie past the last point: still fading)."""
EXP_TAUS_DAYS = np.geomspace(2.0, 200.0, 9)
"""Coarse grid: e-folding times of the exponential family."""
REFINE_STEPS = 9
"""Refinement: points per shape parameter (two rounds, each spanning +- the previous step)."""


def _shapes(
    t: NDArray[np.float64], starts: NDArray[np.float64], scales: NDArray[np.float64], ramp: bool
) -> NDArray[np.float64]:
    """r(t) for every (t_s, scale) pair (rows), the family's shape at the points t."""
    dt = t[None, :] - starts[:, None]
    if ramp:
        return np.asarray(np.clip(dt / scales[:, None], 0.0, 1.0), dtype=np.float64)
    return np.asarray(
        np.where(dt > 0.0, -np.expm1(-np.maximum(dt, 0.0) / scales[:, None]), 0.0), dtype=np.float64
    )


def fade_chi2(y: NDArray[np.float64], w: NDArray[np.float64], r: NDArray[np.float64]) -> NDArray[np.float64]:
    """chi2 of the weighted least-squares fit y = b - d r, d >= 0, for each row of ``r``.

    Normal equations: det = S0 S_rr - S_r**2, d = (S_r S_y - S0 S_ry) / det,
    b = (S_rr S_y - S_r S_ry) / det, chi2 = S_yy - b S_y + d S_ry. Where d < 0 or the
    system is singular (r constant on the points), the constant's chi2 S_yy - S_y**2 / S0.
    """
    s0, sy, syy = w.sum(), (w * y).sum(), (w * y * y).sum()
    wr = w[None, :] * r
    sr, srr, sry = wr.sum(1), (wr * r).sum(1), (wr * y[None, :]).sum(1)
    det = s0 * srr - sr * sr
    ok = det > 1e-12 * s0 * np.maximum(srr, 1e-300)
    safe = np.where(ok, det, 1.0)
    d = (sr * sy - s0 * sry) / safe
    b = (srr * sy - sr * sry) / safe
    flat = syy - sy * sy / s0
    return np.asarray(np.where(ok & (d >= 0.0), syy - b * sy + d * sry, flat), dtype=np.float64)


def best_fade_chi2(t: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64]) -> float:
    """The least chi2 of any ramp or exponential fade on these points (module docstring)."""
    starts = np.quantile(t, np.linspace(0.0, 0.97, COARSE_STARTS))
    start_step = float(np.ptp(t)) * 0.97 / (COARSE_STARTS - 1)
    best = np.inf
    for ramp, scales in ((True, RAMP_LENGTHS_DAYS), (False, EXP_TAUS_DAYS)):
        ts, sc = np.repeat(starts, scales.size), np.tile(scales, starts.size)
        chi2 = fade_chi2(y, w, _shapes(t, ts, sc, ramp))
        j = int(np.argmin(chi2))
        t_s, scale, chi2_j = float(ts[j]), float(sc[j]), float(chi2[j])
        ratio = float(scales[1] / scales[0])
        step = start_step
        for _ in range(2):  # refine: +- one coarse step in t_s, +- one ratio in scale
            grid_t = t_s + step * np.linspace(-1.0, 1.0, REFINE_STEPS)
            grid_s = scale * ratio ** np.linspace(-1.0, 1.0, REFINE_STEPS)
            ts_f, sc_f = np.repeat(grid_t, grid_s.size), np.tile(grid_s, grid_t.size)
            fine = fade_chi2(y, w, _shapes(t, ts_f, sc_f, ramp))
            k = int(np.argmin(fine))
            if fine[k] < chi2_j:
                t_s, scale, chi2_j = float(ts_f[k]), float(sc_f[k]), float(fine[k])
            step *= 2.0 / (REFINE_STEPS - 1)
            ratio **= 2.0 / (REFINE_STEPS - 1)
        best = min(best, chi2_j)
    return best


class FadeFit:
    """:func:`best_fade_chi2` on the suffixes of one curve, each computed once."""

    def __init__(self, t: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64]) -> None:
        self._t, self._y, self._w = t, y, w
        self._memo: dict[int, float] = {}

    def chi2_from(self, lo: int) -> float:
        """The best fade's chi2 on the points t[lo:]."""
        if lo not in self._memo:
            self._memo[lo] = best_fade_chi2(self._t[lo:], self._y[lo:], self._w[lo:])
        return self._memo[lo]
