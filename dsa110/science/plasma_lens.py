"""The light curve of a source behind a Gaussian plasma lens (Clegg, Fey & Lazio 1998).

The benches' default ESE is a Gaussian *dip* in flux, 1 - d g(t), with optional narrow
caustic spikes (``bench/ese_sim.py``); this model is the other shape they inject
(``--ese-shape lens``) and the family the one-sided detector fits
(``dsa110.science.ese_lens``). The physical model the ESE literature fits is a Gaussian
*lens*: a one-dimensional cloud of free electrons with column density
N_e(x) = N_0 exp(-(x / a)^2) moving across the line of sight (Clegg, Fey & Lazio 1998,
ApJ 496, 253). Plasma's refractive index is below one where the density is higher, so the
cloud bends rays away from its centre (a diverging lens). In units of the lens's size a, a
ray crossing the lens plane at x reaches the observer's plane at

    u = x (1 + alpha exp(-x^2)),   alpha = lambda^2 r_e N_0 D / (pi a^2),

(r_e the classical electron radius, D the lens's distance) and the flux a point source
shows at u is the sum over the rays arriving there of the gain 1 / |du/dx|:

    G(u) = sum_i 1 / |1 + alpha (1 - 2 x_i^2) exp(-x_i^2)|,   u(x_i) = u.

Where the bracket vanishes the gain diverges: caustics, which exist once
alpha > e^(3/2) / 2 = 2.24 (the bracket's least value over x is 1 - 2 alpha e^(-3/2), at
x^2 = 3/2). A point source on the lens's axis is dimmed to 1 / (1 + alpha); flux is
conserved, so the rays pushed out of the centre brighten its flanks. A source of finite
angular size (a Gaussian of width beta in units of a) sees G convolved with its profile,
which rounds the caustics into spikes of finite height. The lens moves at a constant speed,
so u = (t - t_0) / tau.

What it looks like, against the Gaussian dip: for alpha below ~1 a rounded dip 20-50 %
deep with broad shoulders above the baseline; for alpha of several, a deep dip with a flat
floor near zero flux and a sharp, tall spike at each edge (2-5 times the baseline for
beta ~0.1). ``gain_curve`` computes G by shooting rays: evenly spaced x, binned by the u
they reach; the count per bin times dx / du is G (the sum above, one term per branch of x).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

CAUSTIC_ALPHA: Final = float(np.exp(1.5) / 2.0)
"""alpha above which a point source's gain has caustics (module docstring)."""

MAX_ALPHA: Final = 40.0
"""The strongest lens tabulated: the rays it throws furthest land at |u| <= 17.9 (u's
greatest value over x), inside the table."""
_RAYS: Final = np.linspace(-24.0, 24.0, 960_001)
_U: Final = np.linspace(-20.0, 20.0, 8_001)
"""Where the gain is tabulated (lens radii); beyond +-20 it is 1 to better than 1e-100."""


@dataclass(frozen=True)
class LensCurve:
    """G(u) on ``u`` (lens radii), and the dip it makes: ``depth`` = 1 - min G and the
    width in u over which G < 1 - depth / 2 (``fwhm_u``)."""

    u: NDArray[np.float64]
    gain: NDArray[np.float64]
    depth: float
    fwhm_u: float

    def at(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        """G at ``u``, linearly interpolated; 1 outside the table."""
        return np.asarray(np.interp(u, self.u, self.gain, left=1.0, right=1.0), dtype=np.float64)


def gain_curve(alpha: float, beta: float) -> LensCurve:
    """A source of Gaussian width ``beta`` behind a lens of strength ``alpha`` (both in lens
    radii; module docstring). Rays every 5e-5 lens radii, gain tabulated every 0.005."""
    if not 0 <= alpha <= MAX_ALPHA or beta <= 0:
        raise ValueError(f"alpha must be in [0, {MAX_ALPHA:g}] and beta > 0")
    du = float(_U[1] - _U[0])
    reached = _RAYS * (1.0 + alpha * np.exp(-(_RAYS**2)))
    edges = np.append(_U - du / 2.0, _U[-1] + du / 2.0)
    counts, _ = np.histogram(reached, bins=edges)
    point = counts * float(_RAYS[1] - _RAYS[0]) / du
    half = int(np.ceil(5.0 * beta / du))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * du / beta) ** 2)
    # the table's edges are far from the lens (G = 1 there): pad with ones, not zeros
    padded = np.concatenate((np.ones(half), point, np.ones(half)))
    gain = np.convolve(padded, kernel / kernel.sum(), mode="valid")
    depth = 1.0 - float(gain.min())
    below = _U[gain < 1.0 - depth / 2.0]
    return LensCurve(_U, gain, depth, float(np.ptp(below)) if below.size else 0.0)
