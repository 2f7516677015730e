"""The best flare on a window of one light curve: a confuser of the physical lens family.

A flare (an AGN outburst) brightens a source fast and decays back to its level. Seen through
a window that ends in its decay, a flare looks like a lens's caustic and shoulder followed by
a floor (``dsa110.science.ese_lens``): the decaying tail reads as the lens's baseline and
the source's true level as the floor below it. The physical lens family is kept only when it
fits better than every flare (``dsa110.science.ese_edge``), and since ese-drw-3.16 the
Gaussian's one-sided trials too (a flare in the first weeks of the data read as an egress).
The family, with the fast-rise, exponential-decay shape fitted to radio flares of AGN
(Valtaoja et al. 1999, Hovatta et al. 2009: exponential rise and decay, the decay usually
the slower):

    y = b + A f(t),  A >= 0,
    f = exp((t - t_p) / tau_r) for t < t_p,   exp(-(t - t_p) / tau_d) for t >= t_p.

The grid does not force tau_r <= tau_d (a slow rise with a fast decay is fitted too: a
wider family makes the lens's test against it stricter, not looser).
(b, A) by weighted least squares (``ese_fade.fade_chi2`` with r = -f: y = b - d r, d >= 0);
the peak time t_p on the times of the window's ``PEAK_CANDIDATES`` highest points and a day
either side of each (a flare's peak is where the flux is highest, to within its rise), tau_r
and tau_d on ``RISE_DAYS`` x ``DECAY_DAYS``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from dsa110.science.ese_fade import fade_chi2
from dsa110.science.ese_lens import LENS_MARGIN

PEAK_CANDIDATES: Final = 8
RISE_DAYS: Final = np.array([0.5, 1.5, 4.0, 10.0])
DECAY_DAYS: Final = np.geomspace(2.0, 200.0, 11)


def best_flare_chi2(
    t: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64], peaks_from: int = 0
) -> float:
    """The least chi2 of any flare of the family (module docstring) on these points; the
    constant's chi2 when no flare fits better. ``t`` in any order (the start of the data is
    fitted on the time-reversed curve's times negated back); the peak is sought among the
    points from index ``peaks_from`` on."""
    top = t[peaks_from:][np.argsort(y[peaks_from:])[-PEAK_CANDIDATES:]]
    peaks = np.unique(np.concatenate((top - 1.0, top, top + 1.0)))
    dt = t[None, :] - peaks[:, None]
    # The rise depends on (t_p, tau_r) and the decay on (t_p, tau_d) only: each is evaluated
    # once and broadcast over the other's grid, not once per (t_p, tau_r, tau_d) as a
    # meshgrid would (the same exp of the same arguments: the same values, ~6x fewer exps).
    rise = np.exp(np.minimum(dt, 0.0)[:, None, :] / RISE_DAYS[None, :, None])
    decay = np.exp(-np.maximum(dt, 0.0)[:, None, :] / DECAY_DAYS[None, :, None])
    shape = np.where((dt < 0.0)[:, None, None, :], rise[:, :, None, :], decay[:, None, :, :])
    return float(np.min(fade_chi2(y, w, -shape.reshape(-1, t.size))))


def flare_fits_better(
    chi2: float,
    extra_params: int,
    t: NDArray[np.float64],
    y: NDArray[np.float64],
    w: NDArray[np.float64],
    peaks_from: int = 0,
) -> bool:
    """Does the best flare (:func:`best_flare_chi2`) beat a lens fit of chi-square ``chi2`` on
    these points by ``LENS_MARGIN`` in BIC? BIC = chi2 + k ln n (Schwarz 1978), so the lens is
    charged ``extra_params`` ln n for its parameters beyond the flare's five (the physical
    lens's six: 1; the Gaussian's four: -1), n = the points fitted."""
    penalty = extra_params * float(np.log(t.size))
    return chi2 + penalty + LENS_MARGIN > best_flare_chi2(t, y, w, peaks_from)
