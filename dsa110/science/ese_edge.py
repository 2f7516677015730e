"""One-sided ESE dips: events cut by the end of the data (ongoing) or by its start.

An ESE that is still going on has no recovery yet, and one that began before the first
epoch has no ingress; the two-sided detector (``dsa110.science.ese``) needs baseline on
both sides and misses both (issue 12: 17 of 53 misses on the independent set, including
80 %-deep dips at SNR > 100). This module looks for the half of a lens dip that is there.

Template (end of the data, the *ongoing* case), FWHM W, minimum at t0 (s = W / 2.3548):

    g(t) = exp(-(t - t0)**2 / 2 s**2)  for t < t0,    g(t) = 1  for t >= t0,

the Gaussian ingress of the Clegg, Fey & Lazio (1998) profile, then flat: the recovery has
not been seen, so nothing is assumed about it. t0 runs from t_end - ``edge_max_plateau`` W
to t_end + W/2 (the ingress half-way through: half depth reached at t0 - W/2 <= t_end). The
lower end is the confuser guard: a lens's flux is still within 16 % of its depth at
t0 + W/4 (exp(-4 ln 2 / 16) = 0.84) and recovering after that, so a bottom flat for longer
than W/4 before the end of the data is a fade or a step that stays low, not an ongoing lens
(ese-drw-3.1; it was W/2, and fades sat as ``ongoing`` until ``MAX_ONGOING_DAYS``).
The points with t >= t0 - 2 W are fitted by weighted least squares with y = b - a g (closed form from five
weighted sums, as in the two-sided matched filter), S_w = a / sigma_a.

Tests, in the two-sided detector's spirit (module docstring of ``dsa110.science.ese``):

- *Baseline*: >= ``edge_min_side`` points in t0 - 2 W <= t < t0 - 0.75 W.
- *Core support*: >= ``edge_min_core`` points past half depth (t >= t0 - W/2) spanning
  >= ``edge_min_core_days``; their median lies below the baseline's by at least
  ``min_core_support`` of the fitted depth and by ``min_depth``.
- *Resolved ingress, not a step*: the template must fit the window with a chi2 lower than
  the best instantaneous step (y = b - a [t >= t_s], t_s at any point of the window) by
  ``edge_step_margin``. A plasma lens of FWHM >= 11 d takes >= 0.72 W to go from 10 % to
  90 % of its depth (Gaussian: 2 s (sqrt(2 ln 10) - sqrt(2 ln(10/9)))); a step takes one
  epoch.
- *Lens-shaped bottom* (ese-drw-3.2): on the points past t0 - W/4 the template's own
  lens (baseline b, minimum b - a, symmetric Gaussian about t0) must not fit worse than a
  constant by more than ``RECOVERY_DECISIVE`` in chi2 (``lens_minus_flat``). A wide
  template put its minimum past the end of a fade's long flat bottom, whose first 8 %
  of depth a constant explains as well; at SNR ~50 the difference is decisive.
- *Red noise*: the DRW likelihood-ratio test of the two-sided detector, with g as the
  alternative's template: S_red >= ``min_red_sigma``. Not the conditional test: with the
  recovery unseen, the flat template absorbs the slow part of a red-noise wander at the
  edge, and S_cond was 7-20 on the null bench's DRW sources.

The same comparison, on the data that arrive later, decides an ``ongoing`` candidate the
detector no longer finds (``recovery_shown``, used by ``ese_tracker.transition``): the
flux came back as the lens's does, or it stayed flat (a fade or a step: rejected at once
rather than at the tracker's deadline).

The start of the data is the mirror image (t -> -t): a dip whose ingress happened before
the first epoch and whose recovery is seen (kind ``egress``). Its window is
[start_mjd, end_mjd] = [t0 - W/2, t0 + W/2] as for every candidate.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dsa110.science.ese import (
    DEFAULT_PARAMS,
    FWHM_PER_SIGMA,
    EseDetection,
    EseInputError,
    EseParams,
    _detection,
    _drw_loglikes,
    _Trial,
    detect_prepared,
    prepare,
)
from dsa110.science.ese_far import with_false_alarm_probability


def edge_template(t: NDArray[np.float64], t0: float, width: float) -> NDArray[np.float64]:
    """g(t): Gaussian ingress of FWHM ``width`` reaching its minimum at ``t0``, then flat."""
    return np.where(t < t0, np.exp(-0.5 * ((t - t0) * FWHM_PER_SIGMA / width) ** 2), 1.0)


def _fit(
    t: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64], g: NDArray[np.float64]
) -> tuple[float, float, float, float]:
    """WLS of y = b - a g: (a, b, S_w = a / sigma_a, chi2_min); S_w = -inf when singular."""
    s0, sy, syy = w.sum(), (w * y).sum(), (w * y * y).sum()
    sg, sgg, sgy = (w * g).sum(), (w * g * g).sum(), (w * g * y).sum()
    det = s0 * sgg - sg * sg
    if not det > 1e-12 * s0 * max(sgg, 1e-300):
        return 0.0, 0.0, -np.inf, np.inf
    a = (sg * sy - s0 * sgy) / det
    b = (sgg * sy - sg * sgy) / det
    return float(a), float(b), float(a / np.sqrt(s0 / det)), float(syy - b * sy + a * sgy)


def _edge_scan(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    centres: NDArray[np.float64],
    width: float,
    min_points: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """:func:`_fit` for every centre at once: windows [t0 - 2 W, t_end] as a padded band."""
    lo = np.searchsorted(t, centres - 2.0 * width)
    span = int(t.size - lo.min())
    idx = lo[:, None] + np.arange(span)[None, :]
    inside = idx < t.size
    idx = np.minimum(idx, t.size - 1)
    tt = t[idx]
    g = np.where(
        tt < centres[:, None], np.exp(-0.5 * ((tt - centres[:, None]) * FWHM_PER_SIGMA / width) ** 2), 1.0
    )
    ww = np.where(inside, w[idx], 0.0)
    yy = y[idx]
    s0, wg = ww.sum(axis=1), ww * g
    sg, sgg, sy, sgy = wg.sum(axis=1), (wg * g).sum(axis=1), (ww * yy).sum(axis=1), (wg * yy).sum(axis=1)
    det = s0 * sgg - sg * sg
    ok = (det > 1e-12 * np.maximum(s0 * sgg, 1e-300)) & (t.size - lo >= min_points)
    safe = np.where(ok, det, 1.0)
    a = (sg * sy - s0 * sgy) / safe
    b = (sgg * sy - sg * sgy) / safe
    s_w = np.where(ok & (b > 0), a / np.sqrt(np.where(ok, s0 / safe, np.inf)), -np.inf)
    return a, b, s_w


def _best_step_chi2(y: NDArray[np.float64], w: NDArray[np.float64]) -> float:
    """min over split points k (1..n-1) of the chi2 of two weighted means (y[:k], y[k:])."""
    cw, cwy, cwy2 = np.cumsum(w), np.cumsum(w * y), np.cumsum(w * y * y)
    tw, twy, twy2 = cw[-1], cwy[-1], cwy2[-1]
    lw, lwy, lwy2 = cw[:-1], cwy[:-1], cwy2[:-1]
    rw, rwy, rwy2 = tw - lw, twy - lwy, twy2 - lwy2
    chi2 = (lwy2 - lwy**2 / lw) + (rwy2 - rwy**2 / rw)
    return float(np.min(chi2)) if chi2.size else np.inf


def _end_edge(
    t: NDArray[np.float64], y: NDArray[np.float64], e: NDArray[np.float64], base: float, params: EseParams
) -> EseDetection | None:
    w = 1.0 / e**2
    t_end = float(t[-1])
    trials: list[_Trial] = []
    for width in params.widths_days:
        if width < params.min_fwhm_days:
            continue
        step = max(width / 6.0, 0.5)
        lo = t_end - params.edge_max_plateau * width
        centres = np.arange(lo, t_end + width / 2.0 + step / 2.0, step)
        a, b, s_w = _edge_scan(t, y, w, centres, width, params.edge_min_side + params.edge_min_core)
        depth = np.divide(a, b, out=np.zeros_like(a), where=b > 0)
        for i in np.flatnonzero(
            (depth >= params.min_depth) & (s_w >= params.min_score * params.min_white_sigma)
        ):
            trials.append(_Trial(width, float(centres[i]), float(a[i]), float(b[i]), float(s_w[i])))
    for trial in sorted(trials, key=lambda tr: -tr.s_white)[: params.n_candidates]:
        found = _judge(t, y, e, w, base, trial, params)
        if found is not None:
            return found
    return None


def _judge(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    e: NDArray[np.float64],
    w: NDArray[np.float64],
    base: float,
    trial: _Trial,
    params: EseParams,
) -> EseDetection | None:
    width, t0 = trial.width, trial.t0
    lo = int(np.searchsorted(t, t0 - 2.0 * width))
    side = (t >= t0 - 2.0 * width) & (t < t0 - params.side_start * width)
    core = t >= t0 - width / 2.0
    n_core = int(np.count_nonzero(core))
    if np.count_nonzero(side) < params.edge_min_side or n_core < params.edge_min_core:
        return None
    if float(np.ptp(t[core])) < params.edge_min_core_days:
        return None
    side_level = float(np.median(y[side]))
    robust = 1.0 - float(np.median(y[core])) / side_level if side_level > 0 else 0.0
    if robust < params.min_depth or robust < params.min_core_support * trial.a / trial.b:
        return None
    tw, yw, ww = t[lo:], y[lo:], w[lo:]
    g = edge_template(tw, t0, width)
    _, _, _, chi2_edge = _fit(tw, yw, ww, g)
    if chi2_edge + params.edge_step_margin > _best_step_chi2(yw, ww):
        return None
    # The bottom, where the data reach it, is the lens's (ese-drw-3.2): not decisively flatter.
    bottom = t > t0 + RECOVERY_FROM * width
    if np.count_nonzero(bottom) >= RECOVERY_MIN_POINTS and (
        lens_minus_flat(t[bottom], y[bottom], e[bottom], t0, width, trial.b, trial.b - trial.a)
        > RECOVERY_DECISIVE
    ):
        return None
    null_ll, dip_ll, s_cond = _drw_loglikes(t, y, e, trial, edge_template(t, t0, width))
    s_red = float(np.sqrt(max(2.0 * (dip_ll - null_ll), 0.0)))
    # No conditional branch here: with the recovery unseen, the flat template absorbs the
    # slow part of any red-noise wander at the edge and S_cond is large for DRW sources.
    red_margin = s_red / params.min_red_sigma
    if min(trial.s_white / params.min_white_sigma, red_margin) < params.min_score:
        return None
    return _detection(trial, base, red_margin, s_red, s_cond, "ongoing", params)


RECOVERY_FROM = -0.25
"""Recovery check: points later than t0 + this many FWHM (the lens's bottom: within 16 % of
its depth from t0 - W/4 to t0 + W/4, then coming back)."""
RECOVERY_BY = 0.5
"""Recovery check: decided by the sign alone once the data reach t0 + this many FWHM."""
RECOVERY_DECISIVE = 9.0
"""Recovery check: decided earlier when the chi2 difference exceeds this (3 sigma)."""
RECOVERY_MIN_POINTS = 5


def lens_minus_flat(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    e: NDArray[np.float64],
    t0: float,
    width: float,
    high: float,
    low: float,
) -> float:
    """D = chi2_lens - chi2_flat on these points (:func:`recovery_shown` states the models)."""
    w = 1.0 / e**2
    lens = high - (high - low) * np.exp(-0.5 * ((t - t0) * FWHM_PER_SIGMA / width) ** 2)
    flat = float(np.sum(w * y) / np.sum(w))
    return float(np.sum(w * (y - lens) ** 2) - np.sum(w * (y - flat) ** 2))


def recovery_shown(
    mjd: ArrayLike, flux: ArrayLike, err: ArrayLike, d: EseDetection, params: EseParams = DEFAULT_PARAMS
) -> bool | None:
    """Does the flux around and after an ongoing dip's minimum follow the lens, or stay flat?

    A lens dip is symmetric about its minimum t0 (Clegg, Fey & Lazio 1998): it reaches its
    bottom and comes back; a fade or a step that stays low is flat there. On the points with
    t > t0 + ``RECOVERY_FROM`` W (prepared as the detector prepares them: units of the
    median, errors with the systematic floor), two models are compared:

        lens:  y = B - (B - m) g(t),  g = exp(-(t - t0)**2 / 2 s**2),  s = W / 2.3548,
               with the candidate's own t0, W, baseline B and minimum m (nothing refitted);
        flat:  y = c, c the weighted mean of those points (stays where it is).

    D = chi2_lens - chi2_flat, chi2 = sum((y - model)**2 / e**2). False (no lens: a fade or
    a step) when D > ``RECOVERY_DECISIVE``, or D > 0 once the data reach t0 + ``RECOVERY_BY`` W;
    True (the lens's shape) when D < -``RECOVERY_DECISIVE``, or D <= 0 from t0 + W/2 on;
    None while undecided or with fewer than ``RECOVERY_MIN_POINTS`` such points.
    """
    prepared = prepare(mjd, flux, err, params)
    if prepared is None:
        return None
    t, y, e, base = prepared
    t0, width = d.center_mjd, d.fwhm_days
    after = t > t0 + RECOVERY_FROM * width
    if np.count_nonzero(after) < RECOVERY_MIN_POINTS:
        return None
    diff = lens_minus_flat(
        t[after], y[after], e[after], t0, width, d.baseline_flux_jy / base, d.min_flux_jy / base
    )
    if abs(diff) > RECOVERY_DECISIVE:
        return diff < 0
    if t[-1] >= t0 + RECOVERY_BY * width:
        return diff <= 0
    return None


def recovery_check(
    mjd: ArrayLike, flux: ArrayLike, err: ArrayLike, params: EseParams = DEFAULT_PARAMS
) -> Callable[[EseDetection], bool | None]:
    """:func:`recovery_shown` on one curve, for ``ese_tracker.transition``; None on a curve
    the detector refuses (the failure is recorded where the detector ran)."""

    def check(d: EseDetection) -> bool | None:
        try:
            return recovery_shown(mjd, flux, err, d, params)
        except EseInputError:
            return None

    return check


def _mirror(d: EseDetection) -> EseDetection:
    """A detection on the time-reversed curve, expressed in forward time (kind ``egress``)."""
    centre = -d.center_mjd
    return EseDetection(
        **{
            **d.__dict__,
            "center_mjd": centre,
            "start_mjd": centre - d.fwhm_days / 2.0,
            "end_mjd": centre + d.fwhm_days / 2.0,
            "kind": "egress",
        }
    )


def detect_edges_prepared(
    t: NDArray[np.float64], y: NDArray[np.float64], e: NDArray[np.float64], base: float, params: EseParams
) -> list[EseDetection]:
    """Ongoing (end-cut) and egress (start-cut) dips on prepared arrays."""
    out = []
    end = _end_edge(t, y, e, base, params)
    if end is not None:
        out.append(end)
    start = _end_edge(-t[::-1], y[::-1], e[::-1], base, params)
    if start is not None:
        out.append(_mirror(start))
    return out


def _overlaps(a: EseDetection, b: EseDetection) -> bool:
    return a.start_mjd <= b.end_mjd and a.end_mjd >= b.start_mjd


def detect_all(
    mjd: ArrayLike, flux: ArrayLike, err: ArrayLike, params: EseParams = DEFAULT_PARAMS
) -> list[EseDetection]:
    """Every ESE-like event in one light curve: the two-sided dip (if any), then one-sided
    ones that do not overlap it; each with its calibrated false-alarm probability.

    Raises ``EseInputError`` like :func:`dsa110.science.ese.detect_dip` on unusable input.
    """
    prepared = prepare(mjd, flux, err, params)
    if prepared is None:
        return []
    found: list[EseDetection] = []
    dip = detect_prepared(*prepared, params)
    if dip is not None:
        found.append(dip)
    for edge in detect_edges_prepared(*prepared, params):
        if not any(_overlaps(edge, d) for d in found):
            found.append(edge)
    rated = [with_false_alarm_probability(d) for d in found]
    return [d for d in rated if (d.false_alarm_probability or 0.0) <= params.max_false_alarm]
