"""The closed-form weighted least-squares fit of a dip template, y = b - a g, from its sums
(and of the lens with one caustic, y = b - a g + c h: :func:`caustic_chi2`).

Every search and test of the ESE detector fits this two-parameter model, to one template
or to thousands at once (a scan's centres, the physical lens's shapes, a trial set); they
differ only in how they form the weighted sums (gathered windows, matrix products). The
solution of the normal equations, with S_x = sum(w x) over the points (S_1 = sum w):

    det = S_1 S_gg - S_g**2
    a = (S_g S_y - S_1 S_gy) / det,   b = (S_gg S_y - S_g S_gy) / det
    sigma_a**2 = S_1 / det
    chi2_min = S_yy - b S_y + a S_gy

A template is singular for the fit (``ok`` False) when det <= 1e-12 S_1 max(S_gg, 1e-300): g constant
over the points (a flat template is the baseline itself), or no points; or when the
caller's own condition (``valid``: enough points in a window, say) refuses it. Where not
``ok`` the fit is computed with det = 1 (finite, meaningless, never an overflow).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

Sum = float | NDArray[np.float64]


class DipWls(NamedTuple):
    """One fit per template (arrays, or 0-d arrays for one template from float sums); where
    ``ok`` is False, ``a``, ``b`` and ``chi2`` are finite and meaningless."""

    ok: NDArray[np.bool_]
    a: NDArray[np.float64]
    b: NDArray[np.float64]
    chi2: NDArray[np.float64]
    s0: Sum
    det: NDArray[np.float64]
    """det where ``ok``, 1 elsewhere."""

    def s_white(self, valid: NDArray[np.bool_] | bool = True) -> NDArray[np.float64]:
        """S_w = a / sigma_a where the fit is ``ok`` and ``valid``, -inf elsewhere. sigma_a is
        formed only there (a refused template far from the points has a det small enough to
        overflow S_1 / det). An accepted fit with det under ~1e-308 S_1 overflows it still
        and reads S_w = 0, as before; no caller's templates come near (their values stay
        above ~1e-14 where they count)."""
        use = self.ok & valid
        var_a = self.s0 / np.where(use, self.det, np.inf)
        return np.where(use, self.a / np.sqrt(np.where(use, var_a, 1.0)), -np.inf)


def dip_wls(
    s0: Sum, sy: Sum, sg: Sum, sgg: Sum, sgy: Sum, syy: Sum = np.nan, valid: NDArray[np.bool_] | bool = True
) -> DipWls:
    """The fit from the weighted sums S_1, S_y, S_g, S_gg, S_gy (module docstring); chi2
    needs S_yy too (NaN without it: a scan that ranks by S_w does not form it)."""
    det = s0 * sgg - sg * sg
    ok = np.asarray((det > 1e-12 * s0 * np.maximum(sgg, 1e-300)) & valid)
    safe = np.where(ok, det, 1.0)
    a = (sg * sy - s0 * sgy) / safe
    b = (sgg * sy - sg * sgy) / safe
    return DipWls(ok, a, b, syy - b * sy + a * sgy, s0, safe)


class Windows(NamedTuple):
    """Windows of points, one per trial (row): row r holds the points lo[r] .. hi[r] - 1, laid
    end to end (no padding), so a scan over many templates' windows costs the points it
    covers, in one pass whatever the number of template widths."""

    point: NDArray[np.intp]
    """The point of each entry."""
    row: NDArray[np.intp]
    """The row of each entry."""
    starts: NDArray[np.intp]
    """Each row's first entry."""
    size: NDArray[np.intp]
    """Each row's number of points."""

    def sums(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """sum of ``x`` (one value per entry) over each row; 0 for an empty row."""
        # reduceat reads the entry at an empty row's start, which for a last empty row is one
        # past the end: pad so that it exists (the read value is then discarded).
        padded = np.append(x, 0.0)
        return np.where(self.size > 0, np.add.reduceat(padded, self.starts), 0.0)


def trial_rows(
    widths: Iterable[float], centres_at: Callable[[float], NDArray[np.float64]]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(centre, width) per trial: ``centres_at(W)`` for each width W in turn (width-major),
    for one pass over every width's windows."""
    centres: list[NDArray[np.float64]] = [np.empty(0)]
    fwhms: list[NDArray[np.float64]] = [np.empty(0)]
    for width in widths:
        centres.append(centres_at(width))
        fwhms.append(np.full(centres[-1].size, width))
    return np.concatenate(centres), np.concatenate(fwhms)


def windows(lo: NDArray[np.intp], hi: NDArray[np.intp]) -> Windows:
    """The :class:`Windows` of points [lo, hi) per row."""
    size = np.maximum(hi - lo, 0)
    starts = np.cumsum(size) - size
    row = np.repeat(np.arange(size.size), size)
    return Windows(np.arange(row.size) - starts[row] + lo[row], row, starts, size)


def windows_wls(
    win: Windows,
    w: NDArray[np.float64],
    y: NDArray[np.float64],
    g: NDArray[np.float64],
    valid: NDArray[np.bool_],
) -> DipWls:
    """:func:`dip_wls` per row of ``win`` with the template's values ``g`` per entry, without
    chi2 (a scan ranks by S_w)."""
    ww, yy = w[win.point], y[win.point]
    wg = ww * g
    return dip_wls(
        win.sums(ww), win.sums(ww * yy), win.sums(wg), win.sums(wg * g), win.sums(wg * yy), valid=valid
    )


def caustic_chi2(
    plain: DipWls, sg: Sum, sgg: Sum, sh: Sum, shh: Sum, shy: Sum, sgh: Sum
) -> NDArray[np.float64]:
    """Least chi2 of y = b - a g + c h with a, c >= 0 (the lens with one caustic h, Clegg, Fey
    & Lazio 1998), from the ``plain`` fit of y = b - a g (:func:`dip_wls`, with S_yy) and the
    sums of h; inf where singular or where a or c < 0.

    By elimination: h's projection on the plain fit's columns (1, -g), beta = N2^-1 (S_h, -S_gh)
    with N2 = [[S_1, -S_g], [-S_g, S_gg]], leaves h_perp; with the plain fit's residual r,

        beta_1 = (S_gg S_h - S_g S_gh) / det,   beta_g = (S_g S_h - S_1 S_gh) / det
        S_hh_perp = S_hh - beta_1 S_h + beta_g S_gh,   S_hr = S_hy - b S_h + a S_gh
        c = S_hr / S_hh_perp,   a' = a - c beta_g,   b' = b - c beta_1
        chi2' = chi2 - S_hr**2 / S_hh_perp

    (the normal equations of all three columns, solved in two steps). The 3x3 determinant is
    det S_hh_perp; singular when it is <= 1e-12 S_1 S_gg S_hh (a caustic the lens explains,
    or none on the points). chi2 drops by a square, so a caustic that explains one point from
    far away (h ~ 1e-40 there) keeps its digits: solving the 3x3 system at once (LU, the batched
    least squares before) scattered such fits' chi2 by ~1e-4 on random curves.
    """
    det2 = plain.det
    beta_1 = (sgg * sh - sg * sgh) / det2
    beta_g = (sg * sh - plain.s0 * sgh) / det2
    shh_perp = shh - beta_1 * sh + beta_g * sgh
    s_hr = shy - plain.b * sh + plain.a * sgh
    ok = plain.ok & (det2 * shh_perp > 1e-12 * plain.s0 * sgg * shh)
    c = s_hr / np.where(ok, shh_perp, 1.0)
    chi2 = plain.chi2 - c * s_hr
    return np.asarray(np.where(ok & (plain.a - c * beta_g >= 0) & (c >= 0), chi2, np.inf), dtype=np.float64)


def lens_family_chi2(
    g: NDArray[np.float64], h: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(plain, caustic): per template row of ``g`` (m, n) the least chi2 of y = b - a g with
    a >= 0 (:func:`dip_wls`), and per caustic row of ``h`` (k, m, n), the caustic at each of k
    places for each template, that of y = b - a g + c h with a, c >= 0 (:func:`caustic_chi2`);
    inf where singular or a coefficient is < 0. The sums by matrix products over the n points."""
    wy = w * y
    s0, sy, syy = w.sum(), wy.sum(), float(wy @ y)
    sg, sgy = g @ w, g @ wy
    sgg = (g * g) @ w
    fit = dip_wls(s0, sy, sg, sgg, sgy, syy)
    plain = np.where(fit.ok & (fit.a >= 0), fit.chi2, np.inf)
    caustic = caustic_chi2(fit, sg, sgg, h @ w, (h * h) @ w, h @ wy, (h * g) @ w)
    return np.asarray(plain, dtype=np.float64), caustic
