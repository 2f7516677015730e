"""The closed-form weighted least-squares fit of a dip template, y = b - a g, from its sums.

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


def band_wls(
    w: NDArray[np.float64], y: NDArray[np.float64], g: NDArray[np.float64], valid: NDArray[np.bool_]
) -> DipWls:
    """:func:`dip_wls` per row of a padded band of windows (one row per trial centre, weight 0
    on the padding), without chi2 (a scan ranks by S_w)."""
    wg = w * g
    return dip_wls(
        w.sum(axis=1),
        (w * y).sum(axis=1),
        wg.sum(axis=1),
        (wg * g).sum(axis=1),
        (wg * y).sum(axis=1),
        valid=valid,
    )
