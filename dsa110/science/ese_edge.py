"""One-sided ESE dips: events cut by the end of the data (ongoing) or by its start.

An ESE that is still going on has no recovery yet, and one that began before the first
epoch has no ingress; the two-sided detector (``dsa110.science.ese``) needs baseline on
both sides and misses both (issue 12: 17 of 53 misses on the independent set, including
80 %-deep dips at SNR > 100). This module looks for the half of a lens dip that is there.

Template (end of the data, the *ongoing* case), FWHM W, minimum at t0 (s = W / 2.3548):

    g(t) = exp(-(t - t0)**2 / 2 s**2)  for t < t0,    g(t) = 1  for t >= t0,

a Gaussian ingress, then flat: the recovery has not been seen, so nothing is assumed about
it. The Gaussian is a stand-in for a lens's light curve, not Clegg, Fey & Lazio's (1998)
Gaussian plasma lens itself: a weak lens (alpha below ~1) dims a source in a rounded dip
close to it, but a strong one makes a flat floor near zero flux entered through a tall
caustic in a few days, which the step and lens-shaped-bottom tests below take for a step
or a fade; the lens itself is fitted where they refuse (*The physical lens*, below). t0
runs from t_end - ``edge_max_plateau`` W to t_end + W/2 (the ingress half-way through: half
depth reached at t0 - W/2 <= t_end). The
lower end is the confuser guard: a lens's flux is still within 16 % of its depth at
t0 + W/4 (exp(-4 ln 2 / 16) = 0.84) and recovering after that, so a bottom flat for longer
than W/4 before the end of the data is a fade or a step that stays low, not an ongoing lens
(ese-drw-3.1; it was W/2, and fades sat as ``ongoing`` until ``MAX_ONGOING_DAYS``).
The points with t >= t0 - 2 W are fitted by weighted least squares with y = b - a g (closed form from five
weighted sums, as in the two-sided matched filter), S_w = a / sigma_a.

Tests, in the two-sided detector's spirit (module docstring of ``dsa110.science.ese``):

- *Baseline*: >= ``edge_min_side`` points in t0 - 2 W <= t < t0 - 0.75 W.
- *Core support*: >= ``edge_min_core`` points past half depth (t >= t0 - W/2) spanning
  >= ``edge_min_core_days`` (at the start of the data ``start_min_core_days``: ese-drw-3.21,
  below); their median lies below the baseline's by at least ``min_core_support`` of the
  fitted depth and by ``min_depth``.
- *Resolved ingress, not a step*: the template must fit the window with a chi2 lower than
  the best instantaneous step (y = b - a [t >= t_s], t_s at any point of the window) by
  ``edge_step_margin``. A plasma lens of FWHM >= 11 d takes >= 0.72 W to go from 10 % to
  90 % of its depth (Gaussian: 2 s (sqrt(2 ln 10) - sqrt(2 ln(10/9)))); a step takes one
  epoch. The lens is fitted with its caustic too (:func:`lens_chi2`, ese-drw-3.11), as the
  fade and red-noise tests fit it: a lens whose caustic spike precedes its ingress (or
  follows its egress) fitted a step better than a plain Gaussian did, and the lens the
  model includes was refused as a step (the injection bench's misses that this test refused
  on seed 4 and on seed 21 at a daily cadence: 4 of 5 had a caustic on their seen side).
- *Lens-shaped bottom* (ese-drw-3.2): on the points past t0 - W/4 the template's own
  lens (baseline b, minimum b - a, symmetric Gaussian about t0) must not fit worse than a
  constant by more than ``RECOVERY_DECISIVE`` in chi2 (``lens_minus_flat``). A wide
  template put its minimum past the end of a fade's long flat bottom, whose first 8 %
  of depth a constant explains as well; at SNR ~50 the difference is decisive.
- *Not a fade* (ese-drw-3.3, end of the data only): the best lens ingress must beat the
  best fade (ramp or exponential decay, :mod:`dsa110.science.ese_fade`) by ``LENS_MARGIN``
  in BIC, the caustic's two extra parameters penalised (``fade_minus_lens`` <=
  -``LENS_MARGIN``, ese-drw-3.4; 3.3 asked for no worse within 1 in unpenalised chi2).
- *Not a flare* (ese-drw-3.16): the Gaussian lens, with or without its caustic
  (:func:`lens_chi2`), must beat the best flare (:mod:`dsa110.science.ese_flare`) by
  ``LENS_MARGIN`` in BIC, as the physical lens must (below). Seen from the edge of the data, a
  flare's fast rise and slower decay read as an egress and its caustic (or the decay as an
  ingress). Flares of the injection bench's lens seed 21 with a final candidate at live
  FAP <= 0.002 (225: the mix's 25 and ``--confusers 200``): 16 with 3.15 (13 of them
  confirmed egresses), 3 with this test (0.013, 95 % CI 0.003-0.038: a two-sided dip, an
  egress, an ongoing ingress).
  At the start of the data (ese-drw-3.20) both are fitted on the window and on
  ``FLARE_TAIL_DAYS`` of the data after it (the family's slowest decay time; the flare's
  peak is still sought in the window): a flare decays towards the level it rose from, a
  lens's egress stays at the baseline. Within the window alone a flare rising from a deep
  floor, its decay as long as the window, fitted the egress and its shoulder as well as
  the lens did (lens seed 51 of the injection bench, source 328: a 93 %-deep 34-d lens
  whose floor fills the first 6 d, refused as a flare and never a candidate). The lens
  keeps the shape and (t0, W) fitted on the window and refits only its baseline and depth
  (the Gaussian its caustic too) on the longer span, the flare all five of its parameters:
  the comparison leans to the flare.
  Whole-year curves of the bench's seeds (lens 21, 31, 51; dip 21, 31, 41, 51; 709
  targets): 3 more start-cut ESEs found, none lost; 1,320 confusers: one flare fewer
  flagged; 3,000 steady sources: the same 13 flags.
- *Red noise*: the DRW likelihood-ratio test of the two-sided detector, with g as the
  alternative's template (and, since ese-drw-3.3, its caustic pair):
  S_red >= ``min_red_sigma``. Not the conditional test: with the
  recovery unseen, the flat template absorbs the slow part of a red-noise wander at the
  edge, and S_cond was 7-20 on the null bench's DRW sources.

*The physical lens* (ese-drw-3.14, :mod:`dsa110.science.ese_lens`): when the Gaussian's step
or lens-shaped-bottom test refuses a trial, Clegg, Fey & Lazio's lens itself is fitted
(32 shapes, alpha 0.3-40 and beta 0.05-1, each at widths W/2-2W and ingress times around
the trial's, on the points from t0 - ``LENS_WINDOW`` W on, its baseline seen beyond its
shoulders). It replaces the Gaussian when it beats the best step by ``edge_step_margin``
after BIC's charge for its two shape parameters, both in white chi2 and in the DRW
likelihood (the lens against that step under red noise: a wander before a step reads as
a lens's shoulder in white chi2), and beats the best flare (:mod:`dsa110.science.ese_flare`,
whose decay reads as a shoulder and a baseline) by ``LENS_MARGIN`` in BIC. The fade and
red-noise tests then run with its template. No lens-shaped-bottom test on this path: a
strong lens's floor is flat until its egress, which is the shape itself. Why: injected as
such lenses (``bench/ese_injection.py --ese-shape lens``), 44 of 47 misses on seeds 21 and
31 were edge-cut events these two tests refused (module docstring of
``dsa110.science.ese``).

The same comparison, on the data that arrive later, decides an ``ongoing`` candidate the
detector no longer finds (``recovery_shown``, used by ``ese_tracker.transition``): the
flux came back as the lens's does, or it stayed flat (a fade or a step: rejected at once
rather than at the tracker's deadline).

The start of the data is the mirror image (t -> -t): a dip whose ingress happened before
the first epoch and whose recovery is seen (kind ``egress``). There the template is the
whole symmetric Gaussian and its minimum may lie up to ``START_MAX_INSIDE`` W after the
first epoch (ese-drw-3.3: the flat-bottomed template and W/4 guard exist for fades at the
end; at the start they missed dips whose minimum the data show, 3 of 13 live misses on
seed 21). The trials of both ends are ranked by their chi2 on common points
(``_by_fit``), not by S_w. Its window is
[start_mjd, end_mjd] = [t0 - W/2, t0 + W/2] as for every candidate.

The core's span at the start (ese-drw-3.21): ``start_min_core_days`` (3 d), not the end's
``edge_min_core_days`` (4 d). At the end the 4 d keep a young ingress's first days, which an
outlier run, a step or a fade's onset makes as well, from being reported while more data
will tell them apart. At the start no more of the floor will ever come: what the first days
hold is all the detector will see of it, and the egress, the caustic and the baseline after
it are in the data. Two strong lenses of lens seed 51 (86 % and 81 % deep, 29 and 18 d)
whose floors fill the first 3-4 d were refused for their core's span at every look and
never candidates; at 3 d both are egresses (scores 4.3 and 1.4). The core's 6 points, its
depth and every shape and red-noise test stand; 3 d is three transits of the source, no one
night's calibration. Whole-year curves of the bench's seeds (lens 21, 31, 51; dip 21, 31,
41, 51): those 2 found and 1 egress at a lower score (5.6 -> 5.0), every other target's
detection the same; 1,320 confusers and 3,000 steady sources: the same detections.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dsa110.science.dip_wls import dip_wls, lens_family_chi2, trial_rows, windows, windows_wls
from dsa110.science.ese import (
    CAUSTIC_FWHM,
    CAUSTIC_OFFSETS,
    DEFAULT_PARAMS,
    FWHM_PER_SIGMA,
    EseDetection,
    EseInputError,
    EseParams,
    _detection,
    _drw_loglikes,
    _Trial,
    detect_prepared,
    dip_drw_fit,
    gaussian_dip,
    prepare,
    red_margin_of,
    scan_passes,
    trial_window,
)
from dsa110.science.ese_fade import FadeFit, best_fade_chi2
from dsa110.science.ese_far import with_false_alarm_probability
from dsa110.science.ese_flare import DECAY_DAYS, flare_fits_better
from dsa110.science.ese_lens import (
    LENS_MARGIN,
    LensFit,
    best_lens_fit,
    fit_shapes,
    quarter_recovered,
    shape_penalty,
    shapes_at,
)


def edge_template(t: NDArray[np.float64], t0: float, width: float) -> NDArray[np.float64]:
    """g(t): Gaussian ingress of FWHM ``width`` reaching its minimum at ``t0``, then flat."""
    return np.where(t < t0, gaussian_dip(t - t0, width), 1.0)


def _fit(
    t: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64], g: NDArray[np.float64]
) -> tuple[float, float, float, float]:
    """WLS of y = b - a g (:mod:`dsa110.science.dip_wls`): (a, b, S_w = a / sigma_a,
    chi2_min); S_w = -inf and chi2 inf when singular."""
    fit = dip_wls(
        w.sum(), (w * y).sum(), (w * g).sum(), (w * g * g).sum(), (w * g * y).sum(), (w * y * y).sum()
    )
    if not fit.ok:
        return 0.0, 0.0, -np.inf, np.inf
    return float(fit.a), float(fit.b), float(fit.s_white()), float(fit.chi2)


def _edge_scan(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    centres: NDArray[np.float64],
    widths: NDArray[np.float64],
    min_points: int,
    symmetric: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """:func:`_fit` for every (centre, width) row at once: windows [t0 - 2 W, t_end]
    (``symmetric``: the whole Gaussian, :func:`edge_template` otherwise), every width's in
    one pass (:class:`dsa110.science.dip_wls.Windows`)."""
    lo = np.searchsorted(t, centres - 2.0 * widths)
    win = windows(lo, np.full(lo.size, t.size))
    tt, at = t[win.point], centres[win.row]
    gauss = gaussian_dip(tt - at, widths[win.row])
    g = gauss if symmetric else np.where(tt < at, gauss, 1.0)
    fit = windows_wls(win, w, y, g, t.size - lo >= min_points)
    return fit.a, fit.b, fit.s_white(fit.b > 0)


def lens_chi2(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    g: NDArray[np.float64],
    t0: float,
    width: float,
) -> float:
    """The least chi2 of the lens at one trial's (t0, W) on these points, with or without
    its caustic (Clegg, Fey & Lazio 1998):

        plain:    y = b - a g(t)                       (a, b free)
        caustic:  y = b - a g(t) + c h(t),  a, c >= 0,
                  h = exp(-(t - t0 + k W)**2 / 2 s_c**2),  s_c = ``CAUSTIC_FWHM`` W / 2.3548,

    k over ``CAUSTIC_OFFSETS`` (the spike before the dip's minimum: before the ingress at
    the end of the data; on the time-reversed curve of the start, after the egress). The
    caustic's two extra parameters (c, k) are penalised as in :func:`fade_minus_lens`,
    BIC (Schwarz 1978): min(chi2_plain, chi2_caustic + 2 ln n)."""
    plain = _fit(t, y, w, g)[3]
    with_caustic = lens_family_chi2(g[None, :], _caustics(t[None, :] - t0, width), y, w)[1]
    caustic = float(np.min(with_caustic, initial=np.inf))
    return min(plain, caustic + 2.0 * float(np.log(t.size)))


def _caustics(dt: NDArray[np.float64], width: float | NDArray[np.float64]) -> NDArray[np.float64]:
    """h(t) of :func:`lens_chi2` at every offset k of ``CAUSTIC_OFFSETS`` at once, shape
    (offsets, *dt.shape): dt = t - t0 per trial row, ``width`` its FWHM (a column per row)."""
    sigma_c = CAUSTIC_FWHM * width / FWHM_PER_SIGMA
    offsets = np.asarray(CAUSTIC_OFFSETS)[:, None, None]
    return np.asarray(np.exp(-0.5 * ((dt[None] + offsets * width) / sigma_c) ** 2), dtype=np.float64)


def _best_step_chi2(y: NDArray[np.float64], w: NDArray[np.float64]) -> float:
    """min over split points k (1..n-1) of the chi2 of two weighted means (y[:k], y[k:])."""
    return _best_step(y, w)[0]


def _best_step(y: NDArray[np.float64], w: NDArray[np.float64]) -> tuple[float, int]:
    """:func:`_best_step_chi2` and its split point k (0 when there is none)."""
    cw, cwy, cwy2 = np.cumsum(w), np.cumsum(w * y), np.cumsum(w * y * y)
    tw, twy, twy2 = cw[-1], cwy[-1], cwy2[-1]
    lw, lwy, lwy2 = cw[:-1], cwy[:-1], cwy2[:-1]
    rw, rwy, rwy2 = tw - lw, twy - lwy, twy2 - lwy2
    chi2 = (lwy2 - lwy**2 / lw) + (rwy2 - rwy**2 / rw)
    if not chi2.size:
        return np.inf, 0
    k = int(np.argmin(chi2))
    return float(chi2[k]), k + 1


def _end_edge(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    e: NDArray[np.float64],
    base: float,
    params: EseParams,
    start: bool = False,
    refusals: list[str] | None = None,
) -> EseDetection | None:
    """The best one-sided dip at the end of (t, y); ``start``: the curve is the time-reversed
    one, whose end is the data's start (symmetric template, no fade test: module docstring).
    ``refusals``, when given, receives the test each judged trial failed (``REFUSALS``), best
    fitting first, or ``"none"`` when no trial reached the white-significance and depth floors."""
    w = 1.0 / e**2
    t_end = float(t[-1])

    def centres_at(width: float) -> NDArray[np.float64]:
        step = max(width / 6.0, 0.5)
        lo = t_end - (START_MAX_INSIDE if start else params.edge_max_plateau) * width
        return np.arange(lo, t_end + width / 2.0 + step / 2.0, step)

    centre, fwhm = trial_rows((wd for wd in params.widths_days if wd >= params.min_fwhm_days), centres_at)
    a, b, s_w = _edge_scan(t, y, w, centre, fwhm, params.edge_min_side + params.edge_min_core, start)
    trials = [
        _Trial(float(fwhm[i]), float(centre[i]), float(a[i]), float(b[i]), float(s_w[i]))
        for i in np.flatnonzero(scan_passes(a, b, s_w, params))
    ]
    if not trials and refusals is not None:
        refusals.append("none")
    fades = None if start else FadeFit(t, y, w)  # one fade fit per window, shared by the trials
    for trial in _by_fit(t, y, w, trials, start)[: params.n_candidates]:
        found = _judge(t, y, e, w, base, trial, params, start, fades)
        if isinstance(found, EseDetection):
            return found
        if refusals is not None:
            refusals.append(found)
    return None


REFUSALS = (
    "baseline", "core_points", "core_days", "core_support", "step", "flat_bottom", "flare", "fade", "score"
)  # fmt: skip
"""The tests of a one-sided trial in the order :func:`_judge` applies them (module
docstring): the baseline's points, the core's points and span, its robust depth, the step,
the lens-shaped bottom (where the physical lens fails them too, ese-drw-3.14: ``step`` also
when it loses to the step under red noise), the flare (the physical lens's here; the
Gaussian's, ese-drw-3.16, after the fade test), the fade and the white and red-noise
score."""


def _by_fit(
    t: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64], trials: list[_Trial], start: bool
) -> list[_Trial]:
    """The trials ordered by their template's chi2 on one common set of points (ese-drw-3.3).

    Ranked by S_w (3.2), the widest templates came first: S_w grows with the points a
    window spans, and a 160-d half-Gaussian outranked the 60-d dip the data show, then
    failed the red-noise test on its own misfit. Here every trial's best fit y = b - a g
    is evaluated on the points of the widest window (t >= min(t0 - 2 W)), where chi2 is
    comparable, and the least chi2 goes first.
    """
    if not trials:
        return []
    lo = int(np.searchsorted(t, min(tr.t0 - 2.0 * tr.width for tr in trials)))
    tt, yy, ww = t[lo:], y[lo:], w[lo:]
    t0 = np.array([tr.t0 for tr in trials])[:, None]
    width = np.array([tr.width for tr in trials])[:, None]
    g = gaussian_dip(tt[None, :] - t0, width)
    if not start:
        g = np.where(tt[None, :] < t0, g, 1.0)
    fit = dip_wls(
        ww.sum(),
        (ww * yy).sum(),
        (ww * g).sum(1),
        (ww * g * g).sum(1),
        (ww * g * yy).sum(1),
        (ww * yy * yy).sum(),
    )
    return [trials[i] for i in np.argsort(np.where(fit.ok, fit.chi2, np.inf), kind="stable")]


def _judge(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    e: NDArray[np.float64],
    w: NDArray[np.float64],
    base: float,
    trial: _Trial,
    params: EseParams,
    start: bool = False,
    fades: FadeFit | None = None,
) -> EseDetection | str:
    """The shape and red-noise tests of one trial (module docstring): its detection, or the
    name of the first test it failed (``REFUSALS``); ``fades``: the curve's cached fade fits
    (end of the data only: no fade test at the start)."""
    width, t0 = trial.width, trial.t0

    def gaussian(times: NDArray[np.float64]) -> NDArray[np.float64]:
        if start:
            return gaussian_dip(times - t0, width)
        return edge_template(times, t0, width)

    lo = int(np.searchsorted(t, t0 - 2.0 * width))
    unsupported = _support_refusal(t, y, trial, params, start)
    if unsupported is not None:
        return unsupported
    tw, yw, ww = t[lo:], y[lo:], w[lo:]
    step_chi2 = _best_step_chi2(yw, ww)
    template: Callable[[NDArray[np.float64]], NDArray[np.float64]] = gaussian
    physical: LensFit | None = None
    gaussian_chi2 = lens_chi2(tw, yw, ww, gaussian(tw), t0, width)
    refused = _gaussian_shape_refusal(t, y, e, trial, gaussian_chi2, step_chi2, params)
    if refused is not None:
        # The Gaussian is a stand-in; the physical lens (ese-drw-3.14, ``ese_lens``) must
        # beat the best step by the same margin, its two shape parameters penalised (BIC),
        # on a window reaching further back: its shoulders are wider than the Gaussian's
        # and its baseline must be seen beyond them.
        lo = int(np.searchsorted(t, t0 - LENS_WINDOW * width))
        tw, yw, ww = t[lo:], y[lo:], w[lo:]
        step_chi2, split = _best_step(yw, ww)
        physical = best_lens_fit(
            tw, yw, ww, t0, width, params.edge_min_side, (params.min_fwhm_days, max(params.widths_days))
        )
        if physical is None or physical.chi2 + shape_penalty(tw.size) + params.edge_step_margin > step_chi2:
            return refused
        trial = _Trial(physical.width, physical.t0, physical.a, physical.b, physical.s_white)
        # its own baseline and core, as the Gaussian trial's above (its centre and width
        # may lie elsewhere: the half depth up to the last epoch, W from W/2 to 2W)
        unsupported = _support_refusal(t, y, trial, params, start)
        if unsupported is not None:
            return unsupported
        template = physical.template
        # Nor a flare: its decay reads as the lens's shoulder and baseline (``ese_flare``);
        # BIC, the lens's six parameters against the flare's five.
        tf, yf, wf, window_from = _flare_points(t, y, w, lo, start)
        # (a refit on the longer span that is no dip of the family: chi2 inf, a flare)
        chi2 = float(fit_shapes(tf, yf, wf, physical.template(tf)[None, :])[3][0]) if start else physical.chi2
        if flare_fits_better(chi2, 1, -tf if start else tf, yf, wf, window_from):
            return "flare"
    # A lens ingress must beat every fade by a BIC margin (ese-drw-3.3; penalised, 3.4).
    if fades is not None and (
        fade_minus_lens(
            tw,
            yw,
            ww,
            width,
            t0,
            fades.chi2_from(lo),
            None if physical is None else physical.chi2 + shape_penalty(tw.size),
        )
        > -LENS_MARGIN
    ):
        return "fade"
    if physical is None:
        tf, yf, wf, window_from = _flare_points(t, y, w, lo, start)
        # (The plain fit's depth is free in sign on the longer span, as on the window: the
        # dip in the window keeps it a dip.)
        chi2 = lens_chi2(tf, yf, wf, gaussian(tf), t0, width) if start else gaussian_chi2
        if flare_fits_better(chi2, -1, -tf if start else tf, yf, wf, window_from):
            # Nor is the Gaussian lens a flare (ese-drw-3.16): a flare near the start of the
            # data read as an egress, its rise the recovery and its decay the caustic, and one
            # near the end as an ingress. BIC, the Gaussian's four parameters against the
            # flare's five (``lens_chi2`` charges its caustic's two). After the fade test: the
            # tracker's follow-up looks read the first refusal (``ese_tracker.ingress_pending``,
            # ``ingress_unsettled``), which stays a fade where it was one. Known cost: at the end
            # of the data it has refused no synthetic flare the score test did not (192 tried),
            # and it refused a young lens ingress's floor (lens seed 31, source 327, 26 d before
            # the end): "flare" was not ``ese_tracker.UNSETTLED``, so that source got no further
            # look and was never a candidate. Since ese-drw-3.17 it is.
            return "flare"
    if physical is None:
        fit = _drw_loglikes(t, y, e, trial, template(t), caustics=True)
    else:
        # ... and the physical lens beats the step under red noise too: the DRW likelihood's
        # ratio, the lens against that step (a source's wander before a step reads as the
        # lens's shoulder in white chi2), from the same Kalman pass as the red-noise test.
        fit = _drw_loglikes(
            t, y, e, trial, template(t), caustics=False, rival=(t >= tw[split]).astype(np.float64)
        )
        if 2.0 * (fit.dip_loglike - fit.rival_loglike) < shape_penalty(t.size) + params.edge_step_margin:
            return "step"
    s_red = fit.s_red
    # No conditional branch here: with the recovery unseen, the flat template absorbs the
    # slow part of any red-noise wander at the edge and S_cond is large for DRW sources.
    red_margin = s_red / params.min_red_sigma
    if min(trial.s_white / params.min_white_sigma, red_margin) < params.min_score:
        return "score"
    return _detection(trial, base, red_margin, s_red, fit, "ongoing", params)


def _support_refusal(
    t: NDArray[np.float64], y: NDArray[np.float64], trial: _Trial, params: EseParams, start: bool
) -> str | None:
    """The baseline and core tests of one trial (module docstring): ``"baseline"``,
    ``"core_points"``, ``"core_days"``, ``"core_support"`` or None when it passes them;
    ``start``: the curve is the time-reversed one (the core's span asked for there:
    ``start_min_core_days``)."""
    t0, width = trial.t0, trial.width
    side = (t >= t0 - 2.0 * width) & (t < t0 - params.side_start * width)
    core = t >= t0 - width / 2.0
    if np.count_nonzero(side) < params.edge_min_side:
        return "baseline"
    if np.count_nonzero(core) < params.edge_min_core:
        return "core_points"
    min_days = params.start_min_core_days if start else params.edge_min_core_days
    if float(np.ptp(t[core])) < min_days:
        return "core_days"
    side_level = float(np.median(y[side]))
    robust = 1.0 - float(np.median(y[core])) / side_level if side_level > 0 else 0.0
    if robust < params.min_depth or robust < params.min_core_support * trial.a / trial.b:
        return "core_support"
    return None


def _flare_points(
    t: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64], lo: int, start: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], int]:
    """The points the flare test compares the lens and the flare on, and the index among
    them where the lens's window (``t[lo:]``) begins: the window alone at the end of the
    data; at the start (the time-reversed curve) also the ``FLARE_TAIL_DAYS`` of data after
    it (module docstring, *Not a flare*). The flare's peak is sought in the window only
    (``ese_flare.flare_fits_better``'s ``peaks_from``), where it would read as the egress or
    the ingress: the tail only tests where its decay goes; and the start's times are given
    to it negated, so that the flare is fitted on the times running forward."""
    if not start:
        return t[lo:], y[lo:], w[lo:], 0
    first = int(np.searchsorted(t, t[lo] - FLARE_TAIL_DAYS))
    return t[first:], y[first:], w[first:], lo - first


def _gaussian_shape_refusal(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    e: NDArray[np.float64],
    trial: _Trial,
    gaussian_chi2: float,
    step_chi2: float,
    params: EseParams,
) -> str | None:
    """The step and lens-shaped-bottom tests of the Gaussian ingress (module docstring):
    ``"step"``, ``"flat_bottom"`` or None when it passes both. ``gaussian_chi2``: the
    Gaussian lens's :func:`lens_chi2` on the trial's window, ``step_chi2`` the best step's."""
    if gaussian_chi2 + params.edge_step_margin > step_chi2:
        return "step"
    # The bottom, where the data reach it, is the lens's (ese-drw-3.2): not decisively flatter.
    bottom = t > trial.t0 + RECOVERY_FROM * trial.width
    if np.count_nonzero(bottom) >= RECOVERY_MIN_POINTS and (
        lens_minus_flat(
            y[bottom], e[bottom], gaussian_lens(t[bottom], trial.t0, trial.width, trial.b, trial.b - trial.a)
        )
        > RECOVERY_DECISIVE
    ):
        return "flat_bottom"
    return None


LENS_WINDOW = 3.0
"""The physical lens's window: points from t0 - this many of the Gaussian trial's FWHM on."""
FLARE_TAIL_DAYS = float(DECAY_DAYS[-1])
"""Start of the data: the flare test's points reach this far past the lens's window (the
flare family's slowest decay, ``ese_flare.DECAY_DAYS``; module docstring, *Not a flare*)."""
START_MAX_INSIDE = 0.75
"""Start of the data: the dip's minimum may lie up to this many FWHM after the first epoch
(its ingress partly seen: the symmetric Gaussian is fitted there, ese-drw-3.3)."""
RECOVERY_FROM = -0.25
"""Recovery check: points later than t0 + this many FWHM (the lens's bottom: within 16 % of
its depth from t0 - W/4 to t0 + W/4, then coming back)."""
RECOVERY_BY = 0.5
"""Recovery check: decided by the sign alone once the data reach t0 + this many FWHM."""
RECOVERY_DECISIVE = 9.0
"""Recovery check: decided earlier when the chi2 difference exceeds this (3 sigma)."""
RECOVERY_MIN_POINTS = 5


RETRACT_MARGIN = 0.0
"""Fade test, hysteresis (ese-drw-3.4): an open ongoing candidate the detector no longer
reports is retracted once the fade is preferred (D > ``RETRACT_MARGIN``), not as soon as the
lens's lead drops below ``LENS_MARGIN``."""


def fade_minus_lens(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    width: float,
    t0: float | None = None,
    fade_chi2: float | None = None,
    physical_bic: float | None = None,
) -> float:
    """D = BIC_lens - BIC_fade on the points of a one-sided dip's window (end of the data).

    fade (the confuser, a decline that need not recover): the ramp and exponential
    families of :mod:`dsa110.science.ese_fade` (4 parameters: b, d, t_s and L or tau),
    chi2_fade their least chi2 (``fade_chi2`` when the caller has it cached, ``FadeFit``);
    lens (Clegg, Fey & Lazio 1998), :func:`lens_ingress_chi2`: y = b - a g(t) (4 parameters:
    b, a, FWHM, t0), and with an ingress caustic y = b - a g(t) + c h(t) (6: and c, k).
    BIC = chi2 + k ln n (Schwarz 1978) on the n points, so

        D = min(chi2_plain, chi2_caustic + 2 ln n) - chi2_fade.

    D <= -``LENS_MARGIN`` says the decline is a lens's (a smooth Gaussian ingress), not a
    fade's (a ramp with a kink where it starts, or a decay that slows from its start).
    ese-drw-3.3 compared the lens with caustic, unpenalised, against a coarse ramp grid and
    let the lens through when D <= 1: the caustic's two free parameters absorb noise
    (chi2 4-10 on pure fades) and the grid's misfit at SNR 35-190 made real fades look
    worse than a lens; fades flagged 0.16-0.28 on seeds 21, 31, 41. Low-SNR fades and
    early ingresses stay ambiguous (|D| < 2): no alert until the data decide.
    ``physical_bic``: the physical lens's chi2 plus its shape penalty on these points
    (``ese_lens``, ese-drw-3.14), when the trial's lens is the physical one: then it is the lens.
    """
    if physical_bic is not None:
        lens = physical_bic
    else:
        plain, caustic = lens_ingress_chi2(t, y, w, width, t0)
        lens = min(plain, caustic + 2.0 * float(np.log(t.size)))
    fade = best_fade_chi2(t, y, w) if fade_chi2 is None else fade_chi2
    return float(lens - fade)


def lens_ingress_chi2(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    width: float,
    t0: float | None = None,
) -> tuple[float, float]:
    """(plain, with caustic): the least chi2 of the lens family of :func:`fade_minus_lens`
    without and with its ingress caustic h, over FWHMs from W/3 to 3 W on the detector's
    grid (and W) and minima from t_end - 1.5 FWHM to t_end + FWHM/2 (and ``t0`` at W), the
    whole Gaussian and, for minima near the end, its ingress alone; every trial in one batch
    of closed-form fits (:func:`dsa110.science.dip_wls.lens_family_chi2`)."""
    t_end = float(t[-1])
    grid = [
        wd
        for wd in DEFAULT_PARAMS.widths_days
        if wd >= DEFAULT_PARAMS.min_fwhm_days and width / 3.0 <= wd <= 3.0 * width
    ]

    def centres_at(wd: float) -> NDArray[np.float64]:
        at = np.arange(t_end - 1.5 * wd, t_end + wd / 2.0, max(wd / 12.0, 0.5))
        return np.append(at, t0) if t0 is not None and wd == width else at

    rows = trial_rows(dict.fromkeys((width, *grid)), centres_at)  # W first; once if on the grid
    centre, fwhm = rows[0][:, None], rows[1][:, None]
    dt = t[None, :] - centre
    gauss = gaussian_dip(dt, fwhm)
    edge = centre[:, 0] >= t_end - DEFAULT_PARAMS.edge_max_plateau * fwhm[:, 0]
    h = _caustics(dt, fwhm)
    ingress = np.where(dt[edge] < 0, gauss[edge], 1.0)
    plain, caustic = lens_family_chi2(
        np.concatenate([gauss, ingress]), np.concatenate([h, h[:, edge]], axis=1), y, w
    )
    best_plain = float(np.min(plain, initial=np.inf))
    return best_plain, min(best_plain, float(np.min(caustic, initial=np.inf)))


def gaussian_lens(
    t: NDArray[np.float64], t0: float, width: float, high: float, low: float
) -> NDArray[np.float64]:
    """The Gaussian lens dip from ``high`` down to ``low`` at ``t0``, FWHM ``width``."""
    return np.asarray(high - (high - low) * gaussian_dip(t - t0, width))


def lens_minus_flat(
    y: NDArray[np.float64], e: NDArray[np.float64], lens: NDArray[np.float64]
) -> NDArray[np.float64]:
    """D = chi2_lens - chi2_flat on these points (:func:`recovery_shown` states the models),
    one per lens model: ``lens`` is one model's values or several models' rows."""
    w = 1.0 / e**2
    flat = np.sum(w * y) / np.sum(w)
    return np.asarray(np.sum(w * (y - lens) ** 2, axis=-1) - np.sum(w * (y - flat) ** 2))


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

    D = chi2_lens - chi2_flat, chi2 = sum((y - model)**2 / e**2). Since ese-drw-3.14 the lens
    is the better of that Gaussian and the physical lens's 32 shapes (``ese_lens``) with the
    same t0, W, B and m: a strong lens's floor is flat until its sharp egress, so a Gaussian
    read it as "no recovery". The choice among fixed shapes is not charged, as the fixed
    Gaussian is not: nothing is fitted. When a physical shape is the lens, the sign decides
    from t0 + max(``RECOVERY_BY``, its three-quarter recovery) W on (``quarter_recovered``).
    False (no lens: a fade or
    a step) when D > ``RECOVERY_DECISIVE``, or D > 0 once the data reach t0 + ``RECOVERY_BY`` W;
    True (the lens's shape) when D < -``RECOVERY_DECISIVE``, or D <= 0 from t0 + W/2 on;
    None while undecided or with fewer than ``RECOVERY_MIN_POINTS`` such points. Before
    that, False when the points from t0 - 2 W on fit a fade better than any lens ingress
    (:func:`fade_minus_lens` > ``RETRACT_MARGIN``, ese-drw-3.3/3.4) and than the physical lens
    on its wider window (:func:`_physical_minus_fade`, ese-drw-3.14): the candidate the
    detector no longer reports is retracted as the decline reveals itself, not kept to its
    deadline.
    """
    prepared = prepare(mjd, flux, err, params)
    if prepared is None:
        return None
    t, y, e, base = prepared
    t0, width = d.center_mjd, d.fwhm_days
    # Hysteresis (ese-drw-3.3): the decline, as it stands now, is a fade's, not a lens's.
    window = t >= t0 - 2.0 * width
    if (
        np.count_nonzero(window) >= params.min_points
        and fade_minus_lens(t[window], y[window], 1.0 / e[window] ** 2, width, t0) > RETRACT_MARGIN
        and _physical_minus_fade(t, y, 1.0 / e**2, t0, width, params) > RETRACT_MARGIN
    ):
        return False
    after = t > t0 + RECOVERY_FROM * width
    if np.count_nonzero(after) < RECOVERY_MIN_POINTS:
        return None
    high, low = d.baseline_flux_jy / base, d.min_flux_jy / base
    ta = t[after]
    diff = float(lens_minus_flat(y[after], e[after], gaussian_lens(ta, t0, width, high, low)))
    decided_by = RECOVERY_BY
    # The physical lens's bottom (ese-drw-3.14): flat where the Gaussian's is rounded; when
    # one of its shapes fits better, it is the lens, and its own recovery time decides.
    physical = lens_minus_flat(y[after], e[after], high - (high - low) * shapes_at(ta, t0, width))
    k = int(np.argmin(physical))
    if physical[k] < diff:
        diff, decided_by = float(physical[k]), max(RECOVERY_BY, float(quarter_recovered()[k]))
    if abs(diff) > RECOVERY_DECISIVE:
        return diff < 0
    if t[-1] >= t0 + decided_by * width:
        return diff <= 0
    return None


def _physical_minus_fade(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    t0: float,
    width: float,
    params: EseParams,
) -> float:
    """D = BIC of the physical lens (``ese_lens``) - the best fade's on the points from
    t0 - ``LENS_WINDOW`` W on (the physical lens's window in :func:`_judge`); +inf when
    no member of the family fits there."""
    lo = int(np.searchsorted(t, t0 - LENS_WINDOW * width))
    tw, yw, ww = t[lo:], y[lo:], w[lo:]
    physical = best_lens_fit(
        tw, yw, ww, t0, width, params.edge_min_side, (params.min_fwhm_days, max(params.widths_days))
    )
    if physical is None:
        return np.inf
    return physical.chi2 + shape_penalty(tw.size) - best_fade_chi2(tw, yw, ww)


_Answer = TypeVar("_Answer")


def _on_curve(
    test: Callable[[ArrayLike, ArrayLike, ArrayLike, EseDetection, EseParams], _Answer],
    mjd: ArrayLike,
    flux: ArrayLike,
    err: ArrayLike,
    params: EseParams,
) -> Callable[[EseDetection], _Answer | None]:
    """``test`` bound to one curve, for ``ese_tracker.transition``; None on a curve the
    detector refuses (the failure is recorded where the detector ran)."""

    def check(d: EseDetection) -> _Answer | None:
        try:
            return test(mjd, flux, err, d, params)
        except EseInputError:
            return None

    return check


def recovery_check(
    mjd: ArrayLike, flux: ArrayLike, err: ArrayLike, params: EseParams = DEFAULT_PARAMS
) -> Callable[[EseDetection], bool | None]:
    """:func:`recovery_shown` on one curve, for ``ese_tracker.transition``; None on a curve
    the detector refuses (the failure is recorded where the detector ran)."""
    return _on_curve(recovery_shown, mjd, flux, err, params)


def refit(
    mjd: ArrayLike, flux: ArrayLike, err: ArrayLike, d: EseDetection, params: EseParams = DEFAULT_PARAMS
) -> EseDetection | None:
    """A confirmed candidate's own dip re-tested on the current curve (ese-drw-3.3), or None.

    The search reports one two-sided dip per curve and ranks its trials afresh at every
    look, so a real event it found before can drop out of a later search (a stronger
    wander elsewhere, a trial grid that now lands beside it); 3.2 then rejected it (seed
    21: 4 of 13 live misses, start-cut dips confirmed and later rejected). Here the
    candidate's (t0, W) are kept, the symmetric lens dip is fitted there (white
    significance S_w on |t - t0| <= 2 W, as the scan) and the red-noise likelihood ratio
    computed with caustics (:func:`dsa110.science.ese._drw_loglikes`; for a ``dip`` the
    detector's own test, :func:`dsa110.science.ese.dip_drw_fit`, whose H1 may be a strong
    lens, ese-drw-3.22, and the long-dip margin of
    :func:`dsa110.science.ese.red_margin_of`); the candidate stands, with
    this fit and its calibrated false-alarm probability, when the score is >= ``min_score``
    and the probability <= ``max_false_alarm``: support is re-measured, not re-searched
    (hysteresis), and a dip that more data explain away still loses it. A one-sided
    candidate (``egress``, ese-drw-3.14) is re-tested with the physical lens's shape that fits
    best at its (t0, W) when that beats the Gaussian after BIC's 2 ln n for the shape (then
    without caustic columns: the shape has its own).
    """
    prepared = prepare(mjd, flux, err, params)
    if prepared is None:
        return None
    t, y, e, base = prepared
    t0, width = d.center_mjd, d.fwhm_days
    tn, yn, en = trial_window(t, y, e, t0, width)
    if tn.size < params.edge_min_side + params.edge_min_core:
        return None
    wn = 1.0 / en**2
    a, b, s_w, chi2 = _fit(tn, yn, wn, gaussian_dip(tn - t0, width))
    template: NDArray[np.float64] | None = None
    if d.kind != "dip":
        # A one-sided detection may be the physical lens's (ese-drw-3.14): re-tested with
        # the family's shape that fits best there, when it beats the Gaussian after BIC.
        shapes = shapes_at(tn, t0, width)
        pa, pb, ps_w, pchi2 = fit_shapes(tn, yn, wn, shapes)
        k = int(np.argmin(pchi2))  # inf where the shape is not a dip (a <= 0): fit_shapes
        if pchi2[k] + shape_penalty(tn.size) < chi2:
            a, b, s_w = float(pa[k]), float(pb[k]), float(ps_w[k])
            template = shapes_at(t, t0, width)[k]
    if not (a > 0 and b > 0 and a / b >= params.min_depth):
        return None
    trial = _Trial(width, t0, a, b, s_w)
    if d.kind == "dip":  # as the detector tested it (ese-drw-3.22: the Gaussian or the lens)
        fit = dip_drw_fit(t, y, e, trial, params)
        margin = red_margin_of(fit.s_red, fit.cond_sigma, width, params)
    else:
        fit = _drw_loglikes(t, y, e, trial, template, caustics=template is None)
        margin = fit.s_red / params.min_red_sigma
    s_red = fit.s_red
    if min(s_w / params.min_white_sigma, margin) < params.min_score:
        return None
    rated = with_false_alarm_probability(_detection(trial, base, margin, s_red, fit, d.kind, params))
    return rated if (rated.false_alarm_probability or 0.0) <= params.max_false_alarm else None


def refit_check(
    mjd: ArrayLike, flux: ArrayLike, err: ArrayLike, params: EseParams = DEFAULT_PARAMS
) -> Callable[[EseDetection], EseDetection | None]:
    """:func:`refit` on one curve, for ``ese_tracker.transition``."""
    return _on_curve(refit, mjd, flux, err, params)


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
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    e: NDArray[np.float64],
    base: float,
    params: EseParams,
    refusals: list[str] | None = None,
) -> list[EseDetection]:
    """Ongoing (end-cut) and egress (start-cut) dips on prepared arrays; ``refusals``, when
    given, receives why the end of the data's trials were refused (:func:`_end_edge`)."""
    out = []
    end = _end_edge(t, y, e, base, params, refusals=refusals)
    if end is not None:
        out.append(end)
    start = _end_edge(-t[::-1], y[::-1], e[::-1], base, params, start=True)
    if start is not None:
        out.append(_mirror(start))
    return out


def edge_refusals(
    mjd: ArrayLike,
    flux: ArrayLike,
    err: ArrayLike,
    params: EseParams = DEFAULT_PARAMS,
    *,
    start: bool = False,
) -> list[str]:
    """Why the one-sided test at the end of the data (``start``: at its start) reports no dip
    on this curve: the test each trial it judged failed (``REFUSALS``), best fitting first,
    ending with ``"passed"`` when a trial passed, ``["none"]`` when no trial reached the
    white-significance and depth floors, ``[]`` on a curve the detector does not test
    (too few points). For reading misses (the injection bench's ``ese_live_miss`` lines):
    the detection itself is :func:`detect_all`'s."""
    prepared = prepare(mjd, flux, err, params)
    if prepared is None:
        return []
    t, y, e, base = prepared
    refusals: list[str] = []
    if start:
        found = _end_edge(-t[::-1], y[::-1], e[::-1], base, params, start=True, refusals=refusals)
    else:
        found = _end_edge(t, y, e, base, params, refusals=refusals)
    return [*refusals, "passed"] if found is not None else refusals


def _overlaps(a: EseDetection, b: EseDetection) -> bool:
    return a.start_mjd <= b.end_mjd and a.end_mjd >= b.start_mjd


ESTABLISHED_FAP = DEFAULT_PARAMS.max_false_alarm
"""A two-sided dip whose one-look false-alarm probability is at most this (the detector's
default operating point) describes its event: it hides the one-sided detections that
overlap it (:func:`one_per_event`)."""


def one_per_event(dip: EseDetection | None, edges: list[EseDetection]) -> list[EseDetection]:
    """One detection per event, from rated detections (one-look ``false_alarm_probability``).

    An established two-sided dip (FAP <= ``ESTABLISHED_FAP``) hides the one-sided detections
    that overlap it: the recovery is seen, and a two-sided detection is what confirms an
    ``ongoing`` candidate (``ese_tracker.transition``). A weaker dip is one description of
    its event among others: it yields to an overlapping one-sided detection with a lower
    FAP, and the one-sided ones that do not overlap it are kept. Why (ese-drw-3.8): a dip cut
    by the start of the data whose minimum the data show is seen by the two-sided test
    without its left side, at score 1.0-1.4 (one-look FAP 0.001-0.004), and by the egress
    test at 2.0-2.4; the dip came first, hid the egress, and was then refused by the cap,
    so the event had no candidate at any look (seed 21 of the injection bench: two 52-74 %
    deep start-cut dips at SNR 15 and 114).
    """
    if dip is None:
        return list(edges)
    dip_fap = _fap(dip)
    rivals = [e for e in edges if _overlaps(e, dip)]
    if dip_fap > ESTABLISHED_FAP and rivals and min(_fap(e) for e in rivals) < dip_fap:
        return list(edges)
    return [dip, *(e for e in edges if not _overlaps(e, dip))]


def _fap(d: EseDetection) -> float:
    return 1.0 if d.false_alarm_probability is None else d.false_alarm_probability


def detect_all(
    mjd: ArrayLike,
    flux: ArrayLike,
    err: ArrayLike,
    params: EseParams = DEFAULT_PARAMS,
    *,
    refusals: list[str] | None = None,
) -> list[EseDetection]:
    """Every ESE-like event in one light curve, one detection per event
    (:func:`one_per_event`: the two-sided dip, or a one-sided detection of the same event the
    null calls less likely), each with its one-look false-alarm probability, those at most
    ``params.max_false_alarm``. ``refusals``, when given, receives the tests that refused the
    trials of the end of the data (as :func:`edge_refusals`, without ``"passed"``): the
    live tracker reads there an ingress still coming in (``ese_tracker.ingress_pending``).

    Raises ``EseInputError`` like :func:`dsa110.science.ese.detect_dip` on unusable input.
    """
    prepared = prepare(mjd, flux, err, params)
    if prepared is None:
        return []
    dip = detect_prepared(*prepared, params)
    edges = [with_false_alarm_probability(d) for d in detect_edges_prepared(*prepared, params, refusals)]
    found = one_per_event(None if dip is None else with_false_alarm_probability(dip), edges)
    return [d for d in found if _fap(d) <= params.max_false_alarm]
