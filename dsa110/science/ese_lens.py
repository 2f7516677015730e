"""The physical lens family: Clegg, Fey & Lazio's (1998) Gaussian plasma lens fitted to the
half of a dip the data show (the one-sided detector, ``best_lens_fit``) and, its strong
members, to a whole dip (the two-sided detector's red-noise test, ``centred_lens_fit``,
ese-drw-3.22).

Why: the one-sided tests (``dsa110.science.ese_edge``) judge an ongoing ingress, or an egress
whose ingress came before the first epoch, against a Gaussian ingress. A real lens is not
Gaussian (``dsa110.science.plasma_lens``): a weak one (alpha ~0.3-1) has a flatter bottom,
a steeper ingress (10-90 % of its depth in ~0.45 FWHM, the Gaussian's 0.72) and shoulders
10-80 % above the baseline; a strong one (alpha > 2.24) drops to a flat floor near zero flux
within a few per cent of its FWHM, just after a caustic spike 2-5 times the baseline. The
Gaussian misfits both, and the step and flat-bottom tests refused them: on the injection
bench's lens events (``--ese-shape lens``, seed 21) 22 of 30 edge-cut targets were missed,
every one refused as a step or a flat bottom.

The family (shape ``k`` of ``SHAPES``, a lens of strength alpha seen against a source of
size beta, both in lens radii):

    y(t) = b - a s_k((t - t_c) / W),   s_k(x) = (1 - G_k(x u_k)) / d_k,

G_k the lens's gain (``plasma_lens.gain_curve``), d_k = 1 - min G_k its depth and u_k its
FWHM in lens radii, so that s_k = 1 at the minimum, 1/2 at x = +-1/2 and negative on the
caustics and shoulders; W is the dip's FWHM in days and t_c its centre. a, b by weighted
least squares (closed form, as the Gaussian templates); k, W and t_c on a grid. What makes
it a lens and not a step (:func:`best_lens_fit`'s caller compares it with the best step) is
that the brightening is part of the shape: its height is fixed by the depth the data show
(flux is conserved: the rays the lens pushes off its axis land on its flanks), so a drop
with no brightening before it fits the lens no better than the step, while a caustic or a
shoulder seen before the drop decides for the lens.

Grid (end of the data; the start is the time-reversed curve, the lens being symmetric):
the ingress's half-depth time t_h = t_c - W/2 no later than the last epoch and no earlier
than one FWHM before it; W over the trial's width times ``WIDTH_FACTORS``; t_h in steps of
W/12 (``COARSE_STEPS``), then, for the best shape of the ``REFINED`` best widths, refined in
steps of W/200 (at least ``FINE_STEP_DAYS``) around its best coarse point (a strong lens's
caustic and drop span about 1 % of W: ~1 d at W = 100 d).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Final

import numpy as np
from numpy.typing import NDArray

from dsa110.science.dip_wls import dip_wls
from dsa110.science.plasma_lens import gain_curve

ALPHAS: Final = (0.3, 0.6, 1.2, 2.5, 5.0, 10.0, 20.0, 40.0)
"""Lens strengths of the family: from a rounded 22 % dip to a 97 % floor with caustics."""
BETAS: Final = (0.05, 0.15, 0.4, 1.0)
"""Source sizes (lens radii): from tall, one-day caustics to smooth shoulders."""
SHAPES: Final = tuple((alpha, beta) for alpha in ALPHAS for beta in BETAS)
WIDTH_FACTORS: Final = (0.5, 0.71, 1.0, 1.41, 2.0)
"""The family's FWHM W as multiples of the Gaussian trial's (a lens's flat floor makes the
Gaussian's half-depth width an estimate, not a measurement)."""
COARSE_STEPS: Final = 12
"""The ingress time's coarse grid: W / this."""
FINE_STEPS: Final = 200
"""... and its refinement: W / this (half the width of a beta = 0.05 caustic, ~1 % of W),
and never finer than ``FINE_STEP_DAYS``."""
FINE_STEP_DAYS: Final = 0.25
REFINED: Final = 2
"""How many widths' best coarse fits are refined (the best first)."""
_X_MAX: Final = 6.0
_DX: Final = 0.002


BASELINE_SPAN: Final = 0.5
"""The baseline a member needs, in its FWHM: from the first point to where its shoulders
begin must be at least this (besides the points' count)."""
BASELINE_TOLERANCE: Final = 0.1
"""A shape's baseline begins where it stays within this fraction of its depth from 1
(:func:`baseline_offsets`)."""


@cache
def baseline_offsets() -> NDArray[np.float64]:
    """Per shape, x_k > 0 such that |s_k(x)| <= ``BASELINE_TOLERANCE`` for every |x| >= x_k:
    where the lens's shoulders end and its baseline begins, in FWHM from the minimum."""
    profiles = _profiles()
    x = np.arange(-_X_MAX, _X_MAX + _DX / 2.0, _DX)
    outside = np.abs(profiles) > BASELINE_TOLERANCE
    # beyond the outermost tabulated point of the left half still off it (lookups round to
    # the nearest point: two steps)
    left = x <= 0
    last = np.where(outside[:, left].any(axis=1), np.argmax(outside[:, left], axis=1), left.sum() - 1)
    return np.asarray(-(x[left][last] - 2.0 * _DX), dtype=np.float64)


@cache
def _profiles() -> NDArray[np.float64]:
    """s_k(x) on x = -6..6 FWHM in steps of 0.002, one row per shape of ``SHAPES`` (computed
    once per process: ~1 s of ray shooting)."""
    x = np.arange(-_X_MAX, _X_MAX + _DX / 2.0, _DX)
    rows = []
    for alpha, beta in SHAPES:
        lens = gain_curve(alpha, beta)
        rows.append((1.0 - lens.at(x * lens.fwhm_u)) / lens.depth)
    table = np.asarray(rows)
    table[:, [0, -1]] = 0.0  # beyond 6 FWHM (``_lookup`` clips there): the baseline
    return table


def shapes_at(t: NDArray[np.float64], t0: float, width: float) -> NDArray[np.float64]:
    """Every shape of the family at the points t, minimum at t0, FWHM ``width``: one row each."""
    return _lookup(_profiles(), (t - t0) / width)


@cache
def quarter_recovered() -> NDArray[np.float64]:
    """Per shape, the x > 0 (FWHM past the minimum) where s_k first falls to 1/4: three
    quarters of the depth recovered (the Gaussian's is 0.71; a strong lens's, whose floor is
    flat to its sharp egress, ~0.5)."""
    x = np.arange(-_X_MAX, _X_MAX + _DX / 2.0, _DX)
    after = x > 0
    profiles = _profiles()[:, after]
    return np.asarray(x[after][np.argmax(profiles <= 0.25, axis=1)], dtype=np.float64)


def lens_shape(k: int, x: NDArray[np.float64]) -> NDArray[np.float64]:
    """s_k at ``x`` FWHM from the minimum (module docstring); 0 beyond 6 FWHM."""
    return np.asarray(_lookup(_profiles()[k : k + 1], x)[0], dtype=np.float64)


def _lookup(profiles: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
    """profiles[:, x] by nearest tabulated point (0.002 FWHM: far finer than any cadence);
    zero outside the table (its first and last columns are zero: indices are clipped there)."""
    idx = np.clip(np.rint((x + _X_MAX) / _DX).astype(np.int64), 0, profiles.shape[1] - 1)
    return np.asarray(profiles[:, idx], dtype=np.float64)


@dataclass(frozen=True)
class LensFit:
    """The best member of the family on a window: shape index, centre, FWHM (days), the
    linear parameters and S_w = a / sigma_a, and its chi2."""

    shape: int
    t0: float
    width: float
    a: float
    b: float
    s_white: float
    chi2: float

    def template(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """s((t - t0) / W) of this fit: y = b - a s."""
        return lens_shape(self.shape, (t - self.t0) / self.width)


def shape_penalty(n: int) -> float:
    """BIC's charge (Schwarz 1978) for the family's two shape parameters (alpha, beta) over
    the Gaussian's, on n points: 2 ln n."""
    return 2.0 * float(np.log(n))


def fit_shapes(
    t: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64], s: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """WLS of y = b - a s for every template s[..., :] at once (:mod:`dsa110.science.dip_wls`):
    (a, b, S_w, chi2); chi2 = inf where the fit is singular or not a dip of a positive source
    (a <= 0: the shape turned over, a brightening; or b <= 0). Every caller wants the
    family's dips only, so the mask is here, once (ese-drw-3.19 found one caller without it)."""
    # matrix-vector products: one pass over the templates each, and one for s**2
    fit = dip_wls(w.sum(), (w * y).sum(), s @ w, (s * s) @ w, s @ (w * y), (w * y * y).sum())
    return fit.a, fit.b, fit.s_white(), np.where(fit.ok & (fit.a > 0) & (fit.b > 0), fit.chi2, np.inf)


def best_lens_fit(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    t0: float,
    width: float,
    min_baseline: int,
    widths: tuple[float, float],
) -> LensFit | None:
    """The family member that best fits (t, y) (weights ``w``) with its ingress seen at the
    end of the data (module docstring's grid), near a Gaussian trial of centre ``t0`` and FWHM
    ``width``, its FWHM within ``widths`` (least, greatest; days), with at least
    ``min_baseline`` points on its baseline, from the first point to ``BASELINE_SPAN`` FWHM
    or more before its shoulders (:func:`baseline_offsets`; a gap in the data counts in that
    span): otherwise its baseline, and so its depth, is an extrapolation, and a flare's decay
    or a fade's start passes for the shoulder of a lens whose floor is the source's real
    level. So the window limits the family: a member whose shoulders reach further back than
    the points given cannot be fitted (with the one-sided test's window of 3 trial FWHM, the
    alpha = 40 shapes need W at most ~0.7 of the trial's; at twice the trial's, 13 of the 32
    shapes fit). None when no member fits a dip (a > 0, b > 0)."""
    profiles = _profiles()
    t_end = float(t[-1])
    coarse: list[tuple[LensFit, float]] = []
    for factor in WIDTH_FACTORS:
        wd = factor * width
        if not widths[0] <= wd <= widths[1]:
            continue
        step = max(wd / COARSE_STEPS, FINE_STEP_DAYS)
        halves = _in_range(
            np.arange(t_end, t_end - wd - step / 2.0, -step), t_end, wd, t0 - width / 2.0, width
        )
        fit = _best_on(t, y, w, profiles, halves, wd, min_baseline) if halves.size else None
        if fit is not None:
            coarse.append((fit, step))
    coarse.sort(key=lambda found: found[0].chi2)
    best = coarse[0][0] if coarse else None
    # refine the best widths' best shapes: their ingress in fine steps around the coarse one
    for fit, step in coarse[:REFINED]:
        fine_step = max(fit.width / FINE_STEPS, FINE_STEP_DAYS)
        half = fit.t0 - fit.width / 2.0
        fine = _in_range(
            np.arange(half - step, half + step + 1e-9, fine_step), t_end, fit.width, t0 - width / 2.0, width
        )
        refined = (
            _best_on(t, y, w, profiles[fit.shape : fit.shape + 1], fine, fit.width, min_baseline, fit.shape)
            if fine.size
            else None
        )
        if refined is not None and best is not None and refined.chi2 < best.chi2:
            best = refined
    return best


LENS_MARGIN: Final = 2.0
"""The lens's margin in BIC over a rival shape: the fade an ongoing ingress must beat
(``ese_edge``, ese-drw-3.4: D <= -``LENS_MARGIN``) and the flare (``ese_flare``) that the
one-sided physical lens (ese-drw-3.14) and the two-sided one (``ese.dip_drw_fit``,
ese-drw-3.22) must beat. 2 is the lower edge of "positive" evidence on the Kass & Raftery
(1995) scale. Chosen on seeds 21, 31, 41."""
STRONG_FROM: Final = next(k for k, (alpha, _) in enumerate(SHAPES) if alpha > 2.24)
"""The first strong shape of ``SHAPES`` (alpha > 2.24, Clegg et al. 1998: a flat floor between
caustics); :func:`centred_lens_fit` tries these only. A weak lens's rounded dip and smooth
shoulders the Gaussian with its caustic pair stands in for (``ese._gaussian_lens_chi2``), and
their shoulders fitted a flare's decay or a fade's step beside a dip that is not there."""
CENTRED_WIDTHS: Final = (0.85, 0.92, 1.0, 1.08, 1.18)
"""A two-sided dip's lens FWHM as multiples of its Gaussian trial's (:func:`centred_lens_fit`;
the trial was refined already, ``ese.refine_trial``): a shape refined around one of these
(``FINE_WIDTHS``) reaches +-5 % of it, so together they span 0.81 to 1.24 of the trial's FWHM
(only the best coarse point of each refined shape is refined, so not every FWHM of that span
is tried)."""
CENTRED_SHIFTS: Final = (-2, -1, 0, 1, 2)
"""... and its centre's offsets from the trial's, in 1/24 of the member's own FWHM."""
CENTRED_REFINED: Final = 3
"""How many shapes, the best-fitting first, are refined around their best coarse point."""
FINE_WIDTHS: Final = tuple(np.round(np.arange(0.95, 1.0501, 0.005), 3))
"""A coarse member's FWHM refined within +-5 % in 0.5 % steps."""
FINE_CENTRE_SPAN: Final = 1.0 / 48.0
"""... and its centre from - this many FWHM, in steps of W / ``FINE_STEPS`` (at least
``FINE_STEP_DAYS``), to within half a step past + this many (the coarse centre itself is on
this grid only by chance; the coarse fit stands when none of the grid's beats it)."""


def centred_lens_fit(
    t: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64], t0: float, width: float
) -> LensFit | None:
    """The strong member of the family that best fits a two-sided dip on (t, y) (weights
    ``w``) near a Gaussian trial of centre ``t0`` and FWHM ``width`` (ese-drw-3.22): every
    strong shape (``STRONG_FROM``) at FWHM W' = ``CENTRED_WIDTHS`` x ``width`` and centre ``t0``
    + ``CENTRED_SHIFTS`` x W' / 24; then the ``CENTRED_REFINED`` best shapes, each at its FWHM x
    ``FINE_WIDTHS`` and its centre over ``FINE_CENTRE_SPAN``'s grid. Why so fine: a
    strong lens's walls and caustics each span ~1 % of its FWHM, and a member a few per cent
    off misfits them by hundreds of sigma at high SNR (a 96 %-deep 52-d lens at SNR 150: chi2
    72,000 on 429 points at the trial's own (t0, W), 8,000 refined); and why several shapes:
    off the right FWHM another shape fits best (a noise-free alpha = 10 lens 3 % wider than
    the grid's point fitted alpha = 40 better there). None when no member fits a dip (a > 0,
    b > 0)."""
    widths = np.repeat(width * np.asarray(CENTRED_WIDTHS), len(CENTRED_SHIFTS))
    centres = t0 + np.tile(np.asarray(CENTRED_SHIFTS) / 24.0, len(CENTRED_WIDTHS)) * widths
    strong = _best_per_shape(t, y, w, STRONG_FROM, len(SHAPES) - STRONG_FROM, centres, widths)
    coarse = sorted(strong, key=lambda f: f.chi2)[:CENTRED_REFINED]
    if not coarse:
        return None
    best = coarse[0]
    for fit in coarse:
        step = max(fit.width / FINE_STEPS, FINE_STEP_DAYS)
        shifts = np.arange(-FINE_CENTRE_SPAN * fit.width, FINE_CENTRE_SPAN * fit.width + step / 2.0, step)
        fine_widths = np.repeat(fit.width * np.asarray(FINE_WIDTHS), shifts.size)
        fine_centres = fit.t0 + np.tile(shifts, len(FINE_WIDTHS))
        for fine in _best_per_shape(t, y, w, fit.shape, 1, fine_centres, fine_widths):
            if fine.chi2 < best.chi2:
                best = fine
    return best


def _best_per_shape(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    first_shape: int,
    n_shapes: int,
    centres: NDArray[np.float64],
    widths: NDArray[np.float64],
) -> list[LensFit]:
    """For each of the ``n_shapes`` shapes from ``first_shape`` on that fits a dip at any of
    the (centre, FWHM) pairs given, its best fit there."""
    profiles = _profiles()[first_shape : first_shape + n_shapes]
    s = _lookup(profiles, (t[None, :] - centres[:, None]) / widths[:, None])  # (shapes, pairs, points)
    fits = fit_shapes(t, y, w, s)
    best = np.argmin(fits[3], axis=1)
    return [
        _lens_fit(fits, first_shape, i, j, centres, widths)
        for i, j in enumerate(best)
        if np.isfinite(fits[3][i, j])
    ]


def _lens_fit(
    fits: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
    first_shape: int,
    i: int,
    j: int,
    centres: NDArray[np.float64],
    widths: NDArray[np.float64],
) -> LensFit:
    """The :class:`LensFit` of row ``i`` (shape ``first_shape`` + i), column ``j`` (centre
    and FWHM) of :func:`fit_shapes`'s (a, b, S_w, chi2)."""
    a, b, s_w, chi2 = fits
    return LensFit(
        first_shape + int(i),
        float(centres[j]),
        float(widths[j]),
        float(a[i, j]),
        float(b[i, j]),
        float(s_w[i, j]),
        float(chi2[i, j]),
    )


def _in_range(
    halves: NDArray[np.float64], t_end: float, wd: float, trial_half: float, trial_width: float
) -> NDArray[np.float64]:
    """The ingress half-depth times the grid allows (module docstring): from one FWHM ``wd``
    before the last epoch to it, and within one trial FWHM of the trial's own."""
    keep = (halves <= t_end) & (halves >= t_end - wd) & (np.abs(halves - trial_half) <= trial_width)
    return halves[keep]


def _best_on(
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    profiles: NDArray[np.float64],
    halves: NDArray[np.float64],
    width: float,
    min_baseline: int,
    first_shape: int = 0,
) -> LensFit | None:
    """The best (shape, ingress half-depth time) of ``profiles`` x ``halves`` at FWHM ``width``
    with a > 0 and ``min_baseline`` points on the baseline; shape indices count from
    ``first_shape``."""
    centres = halves + width / 2.0
    s = _lookup(profiles, (t[None, :] - centres[:, None]) / width)  # (shapes, centres, points)
    a, b, s_w, chi2 = fit_shapes(t, y, w, s)
    offsets = baseline_offsets()[first_shape : first_shape + profiles.shape[0]]
    base_end = centres[None, :] - offsets[:, None] * width
    on_baseline = np.searchsorted(t, base_end)
    spans = base_end - t[0] >= BASELINE_SPAN * width
    chi2 = np.where((on_baseline >= min_baseline) & spans, chi2, np.inf)  # a > 0: fit_shapes
    k, j = np.unravel_index(int(np.argmin(chi2)), chi2.shape)
    if not np.isfinite(chi2[k, j]):
        return None
    return _lens_fit((a, b, s_w, chi2), first_shape, int(k), int(j), centres, np.full(centres.size, width))
