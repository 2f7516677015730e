"""1-D fits of an image profile: a Gaussian or a Moffat on a constant background.

Models, with x the distance along the profile, A the amplitude above the background B and
x0 the centre:
    gaussian  f(x) = A exp(-(x - x0)^2 / (2 sigma^2)) + B,    FWHM = 2 sqrt(2 ln 2) sigma
    moffat    f(x) = A [1 + ((x - x0) / alpha)^2]^(-beta) + B,  FWHM = 2 alpha sqrt(2^(1/beta) - 1)
(Moffat 1969, A&A 3, 455; the FWHM as in Trujillo et al. 2001, MNRAS 328, 977; see
``dsa110.science.moffat``). The legacy fit reported the same parameters (legacy-pipeline-facts
§3.6); here its error bars are propagated to the FWHM as well.

Fit: least squares (``scipy.optimize.curve_fit``, trust-region reflective, with bounds),
weights 1/error^2 when every point has a positive finite error, else unweighted.
Covariance Cov = s^2 (J^T W J)^-1 with s^2 = chi2 / (n - k): error bars scaled by the fit's
own scatter, because samples closer than a beam are correlated and their nominal errors are
not independent (Press et al., Numerical Recipes, §15.4-15.5).
FWHM error by linear propagation, var = g^T Cov g, g = dFWHM/dp:
    gaussian  g_sigma = 2 sqrt(2 ln 2)
    moffat    g_alpha = 2 sqrt(2^(1/beta) - 1),
              g_beta  = -alpha ln 2 2^(1/beta) / (beta^2 sqrt(2^(1/beta) - 1)).
Statistics: chi2 = sum w r^2 (w = 1 unweighted), reduced chi2 = chi2 / (n - k),
R^2 = 1 - sum r^2 / sum (y - mean(y))^2.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import OptimizeWarning, curve_fit

from dsa110.science import moffat
from dsa110.science.errors import ScienceInputError
from dsa110.science.fitting import FWHM_PER_SIGMA, MODELS
from dsa110.science.profiles import Profile

MAX_FIT_POINTS = 100_000


@dataclass(frozen=True)
class ProfileFit:
    """A fitted 1-D model; ``*_err`` are 1-sigma (None when the covariance is undefined).

    Positions and widths are in the unit of ``x``; amplitude and background in that of ``y``.
    """

    model: str
    amplitude: float
    amplitude_err: float | None
    center: float
    center_err: float | None
    width: float  # sigma (gaussian) or alpha (moffat)
    width_err: float | None
    beta: float | None  # moffat only
    beta_err: float | None
    background: float
    background_err: float | None
    fwhm: float
    fwhm_err: float | None
    chi2: float
    reduced_chi2: float
    r_squared: float | None  # None when y is constant
    n_points: int
    weighted: bool
    model_values: list[float]  # the fitted curve at every x given, missing y included


def _gaussian(x: Any, amplitude: float, center: float, sigma: float, background: float) -> Any:
    return amplitude * np.exp(-0.5 * ((x - center) / sigma) ** 2) + background


def _moffat(x: Any, amplitude: float, center: float, alpha: float, beta: float, background: float) -> Any:
    return moffat.moffat_1d(x, amplitude, center, alpha, beta) + background


def fit_profile(profile: Profile, model: str) -> ProfileFit:
    """Fit ``model`` to a profile's values against its distances (arcsec); blanks are skipped."""
    points = profile.points
    return fit_curve(
        [p.distance_arcsec for p in points], [p.value for p in points], [p.error for p in points], model
    )


def fit_curve(
    x: Sequence[float], y: Sequence[float | None], error: Sequence[float | None] | None, model: str
) -> ProfileFit:
    """Fit ``model`` ("gaussian" or "moffat") to the points (x, y) whose y is a finite number.

    Raises ``ScienceInputError``: ``BAD_MODEL``, ``BAD_SIZE`` (over ``MAX_FIT_POINTS``),
    ``FIT_FAILED`` (too few points, or no convergence).
    """
    if model not in MODELS:
        raise ScienceInputError("BAD_MODEL", f"model must be one of {', '.join(MODELS)}")
    all_x = np.asarray(x, dtype=np.float64)
    values = np.array([np.nan if v is None else v for v in y], dtype=np.float64)
    errors = np.array(
        [np.nan if e is None else e for e in (error if error is not None else [None] * len(values))],
        dtype=np.float64,
    )
    if not all_x.shape == values.shape == errors.shape:
        raise ScienceInputError("FIT_FAILED", "x, y and error must have the same length")
    keep = np.isfinite(values) & np.isfinite(all_x)
    xs, ys, es = all_x[keep], values[keep], errors[keep]
    if xs.size > MAX_FIT_POINTS:
        raise ScienceInputError("BAD_SIZE", f"at most {MAX_FIT_POINTS} points can be fitted")
    function: Any = _moffat if model == "moffat" else _gaussian
    n_params = 5 if model == "moffat" else 4
    if xs.size <= n_params:
        raise ScienceInputError(
            "FIT_FAILED", f"only {xs.size} points with a value; a {model} fit needs {n_params + 1}"
        )
    weighted = bool(np.all(np.isfinite(es) & (es > 0)))
    seed, lower, upper = _seed_and_bounds(xs, ys, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        try:
            params, cov = curve_fit(
                function,
                xs,
                ys,
                p0=seed,
                sigma=es if weighted else None,
                absolute_sigma=False,
                bounds=(lower, upper),
                maxfev=20_000,
            )
        except (RuntimeError, ValueError) as exc:
            raise ScienceInputError("FIT_FAILED", f"the {model} fit did not converge: {exc}") from exc
    if not np.all(np.isfinite(params)):
        raise ScienceInputError("FIT_FAILED", f"the {model} fit did not converge")

    residual = ys - function(xs, *params)
    weights = 1.0 / es**2 if weighted else np.ones_like(ys)
    chi2 = float(np.sum(weights * residual**2))
    spread = float(np.sum((ys - ys.mean()) ** 2))
    fwhm, gradient = _fwhm_and_gradient(params, model)
    errors_of = _standard_errors(cov)
    fwhm_var = float(gradient @ cov @ gradient) if np.all(np.isfinite(cov)) else math.nan
    is_moffat = model == "moffat"
    return ProfileFit(
        model=model,
        amplitude=float(params[0]),
        amplitude_err=errors_of[0],
        center=float(params[1]),
        center_err=errors_of[1],
        width=float(params[2]),
        width_err=errors_of[2],
        beta=float(params[3]) if is_moffat else None,
        beta_err=errors_of[3] if is_moffat else None,
        background=float(params[-1]),
        background_err=errors_of[-1],
        fwhm=fwhm,
        fwhm_err=math.sqrt(fwhm_var) if math.isfinite(fwhm_var) and fwhm_var >= 0 else None,
        chi2=chi2,
        reduced_chi2=chi2 / (xs.size - n_params),
        r_squared=1.0 - float(np.sum(residual**2)) / spread if spread > 0 else None,
        n_points=int(xs.size),
        weighted=weighted,
        model_values=[float(v) for v in function(all_x, *params)],
    )


def _seed_and_bounds(
    xs: NDArray[np.float64], ys: NDArray[np.float64], model: str
) -> tuple[list[float], list[float], list[float]]:
    """Seed: background the lower quartile, peak the highest point, width from the half-maximum run."""
    background = float(np.percentile(ys, 25))
    peak = int(np.argmax(ys))
    amplitude = float(ys[peak]) - background
    span = float(xs.max() - xs.min()) or 1.0
    steps = np.diff(np.sort(xs))
    spacing = float(steps[steps > 0].min()) if np.any(steps > 0) else span
    fwhm = _half_maximum_width(xs, ys, peak, background + amplitude / 2.0) or span / 4.0
    fwhm = min(max(fwhm, spacing), span)
    # The centre may lie off the sampled range by up to its length: a radial profile samples
    # only r > 0 of a source centred on r = 0.
    lower = [-np.inf, float(xs.min()) - span, spacing / 10.0]
    upper = [np.inf, float(xs.max()) + span, 10.0 * span]
    seed = [amplitude, float(xs[peak])]
    if model == "moffat":
        seed += [fwhm / moffat.fwhm_per_alpha(moffat.BETA_SEED), moffat.BETA_SEED]
        lower.append(moffat.BETA_MIN)
        upper.append(moffat.BETA_MAX)
    else:
        seed.append(fwhm / FWHM_PER_SIGMA)
    return [*seed, background], [*lower, -np.inf], [*upper, np.inf]


def _half_maximum_width(xs: NDArray[np.float64], ys: NDArray[np.float64], peak: int, half: float) -> float:
    """Extent in x of the run of points above ``half`` that contains the peak (in x order)."""
    order = np.argsort(xs)
    above = ys[order] > half
    i = j = int(np.nonzero(order == peak)[0][0])
    while i > 0 and above[i - 1]:
        i -= 1
    while j < above.size - 1 and above[j + 1]:
        j += 1
    return float(xs[order][j] - xs[order][i])


def _fwhm_and_gradient(params: NDArray[np.float64], model: str) -> tuple[float, NDArray[np.float64]]:
    """FWHM and its gradient with respect to the parameters (formulas in the module docstring)."""
    gradient = np.zeros(params.size)
    if model == "moffat":
        alpha, beta = float(params[2]), float(params[3])
        root = math.sqrt(2.0 ** (1.0 / beta) - 1.0)
        gradient[2] = 2.0 * root
        gradient[3] = -alpha * math.log(2.0) * 2.0 ** (1.0 / beta) / (beta**2 * root)
        return 2.0 * alpha * root, gradient
    gradient[2] = FWHM_PER_SIGMA
    return FWHM_PER_SIGMA * float(params[2]), gradient


def _standard_errors(cov: NDArray[np.float64]) -> list[float | None]:
    diagonal = np.diag(cov)
    return [math.sqrt(v) if math.isfinite(v) and v >= 0 else None for v in diagonal]
