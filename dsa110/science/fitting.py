"""2-D elliptical Gaussian fit of a source, with sky-frame shape and uncertainties.

Model (astropy ``Gaussian2D`` [+ ``Const2D``], fitted in pixel space by ``TRFLSQFitter``):
    I(x, y) = A exp(-1/2 [d^T C_pix^-1 d]) + B,  d = (x - x0, y - y0),
    C_pix = R(theta) diag(sx^2, sy^2) R(theta)^T.

Sky shape. The legacy fit reported FWHM in pixels and theta as the PA (legacy-pipeline-facts
§3.6), wrong whenever pixels are not square or the grid is rotated. Here C_pix is mapped to
the sky with the local Jacobian M of the WCS (arcsec east and north per pixel at the fitted
centre, from the gnomonic offsets of ``dsa110.science.regions``): C_sky = M C_pix M^T.
Its eigenvalues l1 >= l2 give FWHM_major,minor = 2 sqrt(2 ln 2) sqrt(l1,2) arcsec and the
major-axis eigenvector (e, n) gives PA = atan2(e, n), degrees east of north in [0, 180).

Uncertainties. Least-squares covariance Cov(p) = s^2 (J^T J)^-1 with J the Jacobian of the
model at the solution (central differences) and s^2 = sum(residual^2) / (n - k) the reduced
residual variance (e.g. Press et al., Numerical Recipes, §15.4-15.5). Derived quantities
f(p) get Cov(f) = G Cov(p) G^T, G = df/dp by central differences (linear propagation).
Pixels are treated as independent; in a restored image the noise is correlated over a beam,
which makes true errors larger by roughly sqrt(beam area / pixel area) (Condon 1997, PASP
109, 166, §3): read the errors as lower bounds on such images.

Integrated flux (Jy/beam images with a beam): S = A * (maj * min) / (bmaj * bmin)
(Condon 1997, eq. 23 with the restoring beam as the point-spread function).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.modeling import fitting, models
from numpy.typing import NDArray

from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import SkyImage, check_sky_position
from dsa110.science.regions import Region, region_mask, tangent_offsets_arcsec

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
DEFAULT_BOX_BEAMS = 4.0  # fit box side in beam FWHMs when only a position is given
DEFAULT_BOX_PIXELS = 21  # ... and in pixels when the image has no beam
MAX_FIT_PIXELS = 250_000  # a 500 x 500 box; larger fits are not source fits


@dataclass(frozen=True)
class GaussianFit:
    """Fitted source; ``*_err`` are 1-sigma. Flux-like values are in ``unit``."""

    peak: float
    peak_err: float
    ra_deg: float
    dec_deg: float
    ra_err_arcsec: float  # along RA on the sky, i.e. d(RA) cos(Dec)
    dec_err_arcsec: float
    fwhm_major_arcsec: float
    fwhm_major_err_arcsec: float
    fwhm_minor_arcsec: float
    fwhm_minor_err_arcsec: float
    pa_deg: float  # major axis, east of north, [0, 180)
    pa_err_deg: float
    background: float | None
    background_err: float | None
    integrated_flux_jy: float | None
    integrated_flux_err_jy: float | None
    unit: str
    n_pixels: int
    reduced_chi2: (
        float  # residual variance / per-pixel noise^2 when the noise is known, else 1 by construction
    )
    residual_rms: float


def fit_gaussian_2d(
    image: SkyImage,
    ra_deg: float | None = None,
    dec_deg: float | None = None,
    *,
    box_arcsec: float | None = None,
    region: Region | None = None,
    fit_background: bool = True,
) -> GaussianFit:
    """Fit one Gaussian to the pixels of ``region``, or of a square box around (RA, Dec).

    With a region and a position, the position only seeds the fit. Raises
    ``ScienceInputError`` (``BAD_POSITION``, ``OUT_OF_IMAGE``, ``BAD_SIZE``, ``EMPTY_REGION``,
    ``FIT_FAILED``).
    """
    selection = _fit_pixels(image, ra_deg, dec_deg, box_arcsec, region)
    rows, cols = np.nonzero(selection)
    values = np.asarray(image.data[rows, cols], dtype=np.float64)
    good = np.isfinite(values)
    xs, ys, z = cols[good].astype(np.float64), rows[good].astype(np.float64), values[good]
    n_params = 7 if fit_background else 6
    if z.size < 2 * n_params:
        raise ScienceInputError(
            "FIT_FAILED", f"only {z.size} valid pixels to fit; need at least {2 * n_params}"
        )

    seed = (ra_deg, dec_deg) if ra_deg is not None and dec_deg is not None else None
    model = _initial_model(image, xs, ys, z, seed=seed, fit_background=fit_background)
    fitter = fitting.TRFLSQFitter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fitted = fitter(model, xs, ys, z, maxiter=500)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise ScienceInputError("FIT_FAILED", f"the fit did not converge: {exc}") from exc
    params = np.asarray(fitted.parameters, dtype=float)
    if not np.all(np.isfinite(params)) or not fitter.fit_info.get("success", True):
        raise ScienceInputError("FIT_FAILED", "the fit did not converge")
    amplitude, x0, y0 = params[0], params[1], params[2]
    if not (xs.min() - 0.5 <= x0 <= xs.max() + 0.5 and ys.min() - 0.5 <= y0 <= ys.max() + 0.5):
        raise ScienceInputError("FIT_FAILED", "the fitted centre lies outside the fitted pixels")

    def evaluate(p: NDArray[np.float64]) -> NDArray[np.float64]:
        fitted.parameters = p
        return np.asarray(fitted(xs, ys), dtype=np.float64)

    residual = evaluate(params) - z
    fitted.parameters = params
    dof = max(1, z.size - n_params)
    s2 = float(np.sum(residual**2)) / dof
    jac = _central_jacobian(evaluate, params, np.maximum(1e-6, 1e-4 * np.abs(params)))
    fitted.parameters = params
    cov = s2 * np.linalg.pinv(jac.T @ jac)

    ra0, dec0 = (float(v) for v in image.pixel_to_world(x0, y0))
    to_sky = _local_jacobian_arcsec(image, x0, y0, ra0, dec0)
    beam = image.beam
    wants_flux = beam is not None and image.unit.replace(" ", "").lower() == "jy/beam"

    def derived(p: NDArray[np.float64]) -> NDArray[np.float64]:
        east, north = to_sky @ np.array([p[1] - x0, p[2] - y0])
        major, minor, pa = _sky_shape(to_sky, p[3], p[4], p[5])
        flux = p[0] * major * minor / (beam.major_arcsec * beam.minor_arcsec) if wants_flux and beam else 0.0
        bg = p[6] if fit_background else 0.0
        return np.array([p[0], east, north, major, minor, pa, bg, flux])

    centre = derived(params)
    steps = 1e-3 * np.sqrt(np.clip(np.diag(cov), 0.0, None))
    grad = _central_jacobian(derived, params, np.where(steps > 0, steps, 1e-9), wrap_index=5)
    errors = np.sqrt(np.clip(np.diag(grad @ cov @ grad.T), 0.0, None))
    noise = image.noise_estimate()
    return GaussianFit(
        peak=float(amplitude),
        peak_err=float(errors[0]),
        ra_deg=ra0,
        dec_deg=dec0,
        ra_err_arcsec=float(errors[1]),
        dec_err_arcsec=float(errors[2]),
        fwhm_major_arcsec=float(centre[3]),
        fwhm_major_err_arcsec=float(errors[3]),
        fwhm_minor_arcsec=float(centre[4]),
        fwhm_minor_err_arcsec=float(errors[4]),
        pa_deg=float(centre[5]),
        pa_err_deg=float(errors[5]),
        background=float(centre[6]) if fit_background else None,
        background_err=float(errors[6]) if fit_background else None,
        integrated_flux_jy=float(centre[7]) if wants_flux else None,
        integrated_flux_err_jy=float(errors[7]) if wants_flux else None,
        unit=image.unit,
        n_pixels=int(z.size),
        reduced_chi2=s2 / noise**2 if np.isfinite(noise) and noise > 0 else 1.0,
        residual_rms=math.sqrt(float(np.mean(residual**2))),
    )


def _fit_pixels(
    image: SkyImage,
    ra_deg: float | None,
    dec_deg: float | None,
    box_arcsec: float | None,
    region: Region | None,
) -> NDArray[np.bool_]:
    if (ra_deg is None) != (dec_deg is None):
        raise ScienceInputError("BAD_POSITION", "give both ra_deg and dec_deg, or neither")
    if region is not None:
        if ra_deg is not None and dec_deg is not None:
            check_sky_position(ra_deg, dec_deg)
        mask = region_mask(image, region)
        if not mask.any():
            raise ScienceInputError("EMPTY_REGION", "no image pixel lies inside the region")
    elif ra_deg is None or dec_deg is None:
        raise ScienceInputError("BAD_POSITION", "a fit needs a position or a region")
    else:
        x, y = image.pixel_of(ra_deg, dec_deg)
        scale = min(image.pixel_scales_arcsec())
        if box_arcsec is None:
            half = (
                DEFAULT_BOX_BEAMS * image.beam.major_arcsec / scale / 2
                if image.beam
                else DEFAULT_BOX_PIXELS / 2
            )
        elif not math.isfinite(box_arcsec) or box_arcsec <= 0:
            raise ScienceInputError("BAD_SIZE", f"box_arcsec must be positive, got {box_arcsec}")
        else:
            half = box_arcsec / scale / 2
        half = max(half, 3.0)
        ny, nx = image.shape
        mask = np.zeros((ny, nx), dtype=bool)
        mask[
            max(0, math.floor(y - half)) : min(ny, math.ceil(y + half) + 1),
            max(0, math.floor(x - half)) : min(nx, math.ceil(x + half) + 1),
        ] = True
    if mask.sum() > MAX_FIT_PIXELS:
        raise ScienceInputError("BAD_SIZE", f"the fit area exceeds {MAX_FIT_PIXELS} pixels")
    return mask


def _initial_model(
    image: SkyImage,
    xs: NDArray[np.float64],
    ys: NDArray[np.float64],
    z: NDArray[np.float64],
    *,
    seed: tuple[float, float] | None,
    fit_background: bool,
) -> Any:
    """Seed: brightest pixel (or the given position), median background, beam-sized width."""
    background = float(np.median(z)) if fit_background else 0.0
    peak_index = int(np.argmax(z))
    x0, y0 = xs[peak_index], ys[peak_index]
    if seed is not None:
        gx, gy = image.world_to_pixel(*seed)
        if np.isfinite(gx) and np.isfinite(gy) and xs.min() <= gx <= xs.max() and ys.min() <= gy <= ys.max():
            x0, y0 = float(gx), float(gy)
    sigma = image.beam.major_arcsec / min(image.pixel_scales_arcsec()) / FWHM_PER_SIGMA if image.beam else 2.0
    span = float(max(xs.max() - xs.min(), ys.max() - ys.min(), 2.0))
    gaussian = models.Gaussian2D(
        amplitude=float(z[peak_index]) - background,
        x_mean=x0,
        y_mean=y0,
        x_stddev=sigma,
        y_stddev=sigma,
        theta=0.0,
    )
    gaussian.x_stddev.bounds = (0.05, span)
    gaussian.y_stddev.bounds = (0.05, span)
    return gaussian + models.Const2D(amplitude=background) if fit_background else gaussian


def _central_jacobian(
    func: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    params: NDArray[np.float64],
    steps: NDArray[np.float64],
    wrap_index: int | None = None,
) -> NDArray[np.float64]:
    """d func / d params by central differences; column ``wrap_index`` is an angle mod 180."""
    columns = []
    for i, step in enumerate(steps):
        up, down = params.copy(), params.copy()
        up[i] += step
        down[i] -= step
        diff = func(up) - func(down)
        if wrap_index is not None:
            diff[wrap_index] = (diff[wrap_index] + 90.0) % 180.0 - 90.0
        columns.append(diff / (2.0 * step))
    return np.stack(columns, axis=-1)


def _local_jacobian_arcsec(
    image: SkyImage, x0: float, y0: float, ra0: float, dec0: float
) -> NDArray[np.float64]:
    """2x2 matrix: (east, north) arcsec per unit step in (x, y) at (x0, y0)."""
    h = 0.5
    ra, dec = image.pixel_to_world([x0 + h, x0 - h, x0, x0], [y0, y0, y0 + h, y0 - h])
    east, north, _ = tangent_offsets_arcsec(ra0, dec0, ra, dec)
    return np.array(
        [[(east[0] - east[1]) / (2 * h), (east[2] - east[3]) / (2 * h)],
         [(north[0] - north[1]) / (2 * h), (north[2] - north[3]) / (2 * h)]]
    )  # fmt: skip


def _sky_shape(to_sky: NDArray[np.float64], sx: float, sy: float, theta: float) -> tuple[float, float, float]:
    """FWHM major, minor (arcsec) and PA (deg E of N) of the pixel-space Gaussian on the sky."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    cov_pix = rot @ np.diag([sx * sx, sy * sy]) @ rot.T
    cov_sky = to_sky @ cov_pix @ to_sky.T
    values, vectors = np.linalg.eigh(cov_sky)  # ascending
    east, north = vectors[0, 1], vectors[1, 1]
    pa = math.degrees(math.atan2(east, north)) % 180.0
    return (
        FWHM_PER_SIGMA * math.sqrt(max(values[1], 0.0)),
        FWHM_PER_SIGMA * math.sqrt(max(values[0], 0.0)),
        pa,
    )
