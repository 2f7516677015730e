"""The Moffat profile: a Gaussian-like core with power-law wings, in 1-D and elliptical 2-D.

Moffat (1969, A&A 3, 455): I(r) = A [1 + (r / alpha)^2]^(-beta), with alpha the core width
and beta the power index. Half maximum is where (r / alpha)^2 = 2^(1/beta) - 1, so
    FWHM = 2 alpha sqrt(2^(1/beta) - 1)
(as in Trujillo et al. 2001, MNRAS 328, 977, §2). As beta -> infinity with
alpha = sigma sqrt(2 beta) the profile tends to a Gaussian of standard deviation sigma.

Elliptical form, for 2-D fits: (r / alpha)^2 becomes the quadratic form
    q = (u / alpha_x)^2 + (v / alpha_y)^2,
    u = cos(theta) dx + sin(theta) dy,  v = -sin(theta) dx + cos(theta) dy,  d = (x - x0, y - y0),
the same axes and angle convention as astropy's ``Gaussian2D``. Its integral over the plane
is pi A alpha_x alpha_y / (beta - 1) for beta > 1 (polar coordinates in the (u/alpha_x,
v/alpha_y) frame: 2 pi alpha_x alpha_y * integral of (1 + s^2)^(-beta) s ds = 1 / (2 (beta - 1))).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from astropy.modeling import Fittable2DModel, Parameter

# beta > 1 keeps the integrated flux finite; at the upper bound the source is, for a fit,
# indistinguishable from a Gaussian (the Moffat's beta -> infinity limit).
BETA_MIN = 1.01
BETA_MAX = 100.0
BETA_SEED = 2.5


def fwhm_per_alpha(beta: float) -> float:
    """FWHM / alpha = 2 sqrt(2^(1/beta) - 1)."""
    return 2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0)


def moffat_1d(x: Any, amplitude: float, center: float, alpha: float, beta: float) -> Any:
    """A [1 + ((x - center) / alpha)^2]^(-beta)."""
    return amplitude * (1.0 + ((np.asarray(x, dtype=np.float64) - center) / alpha) ** 2) ** (-beta)


def volume_per_amplitude(alpha_x: float, alpha_y: float, beta: float) -> float:
    """Integral of the elliptical Moffat over the plane, per unit amplitude: pi ax ay / (beta - 1)."""
    return math.pi * alpha_x * alpha_y / (beta - 1.0)


class EllipticalMoffat2D(Fittable2DModel):
    """A (1 + q)^(-beta), q the elliptical quadratic form of the module docstring (pixels)."""

    amplitude = Parameter(default=1.0)
    x_0 = Parameter(default=0.0)
    y_0 = Parameter(default=0.0)
    alpha_x = Parameter(default=1.0)
    alpha_y = Parameter(default=1.0)
    theta = Parameter(default=0.0)
    beta = Parameter(default=BETA_SEED)

    @property
    def input_units(self) -> None:
        """No units: astropy would otherwise read ``evaluate``'s type hints as input units."""
        return None

    @staticmethod
    def evaluate(
        x: Any,
        y: Any,
        amplitude: Any,
        x_0: Any,
        y_0: Any,
        alpha_x: Any,
        alpha_y: Any,
        theta: Any,
        beta: Any,
    ) -> Any:
        cos, sin = np.cos(theta), np.sin(theta)
        dx, dy = x - x_0, y - y_0
        u = (cos * dx + sin * dy) / alpha_x
        v = (-sin * dx + cos * dy) / alpha_y
        return amplitude * (1.0 + u * u + v * v) ** (-beta)
