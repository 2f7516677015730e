"""2-D fit of a source (elliptical Gaussian or Moffat), with sky-frame shape and uncertainties.

Models (fitted in pixel space by astropy's ``TRFLSQFitter``, + ``Const2D`` for a background B),
with d = (x - x0, y - y0) and C_pix = R(theta) diag(wx^2, wy^2) R(theta)^T:
    gaussian  I = A exp(-1/2 d^T C_pix^-1 d) + B        (astropy ``Gaussian2D``, w = sigma)
    moffat    I = A (1 + d^T C_pix^-1 d)^(-beta) + B     (``moffat.EllipticalMoffat2D``, w = alpha)

Sky shape. The legacy fit reported FWHM in pixels and theta as the PA (legacy-pipeline-facts
§3.6), wrong whenever pixels are not square or the grid is rotated. Here C_pix is mapped to
the sky with the local Jacobian M of the WCS (arcsec east and north per pixel at the fitted
centre, from the gnomonic offsets of ``dsa110.science.regions``): C_sky = M C_pix M^T.
Its eigenvalues l1 >= l2 are the squared widths w_major,minor on the sky (arcsec), and the
major-axis eigenvector (e, n) gives PA = atan2(e, n), degrees east of north in [0, 180).
FWHM = k w, with k = 2 sqrt(2 ln 2) for the Gaussian and k = 2 sqrt(2^(1/beta) - 1) for the
Moffat (Moffat 1969; see ``dsa110.science.moffat``).

Uncertainties. Least-squares covariance Cov(p) = s^2 (J^T J)^-1 with J the Jacobian of the
model at the solution (central differences) and s^2 = sum(residual^2) / (n - k) the reduced
residual variance (e.g. Press et al., Numerical Recipes, §15.4-15.5). Derived quantities
f(p) get Cov(f) = G Cov(p) G^T, G = df/dp by central differences (linear propagation).
Pixels are treated as independent; in a restored image the noise is correlated over a beam,
which makes true errors larger by roughly sqrt(beam area / pixel area) (Condon 1997, PASP
109, 166, §3): read the errors as lower bounds on such images.

Integrated flux (Jy/beam images with a beam): S = A Omega_src / Omega_beam, the model's
volume per unit amplitude over the beam's, Omega_beam = pi bmaj bmin / (4 ln 2) (FWHMs).
Gaussian: Omega_src = 2 pi w_major w_minor, so S = A (maj * min) / (bmaj * bmin) (Condon 1997,
eq. 23 with the restoring beam as the point-spread function). Moffat: Omega_src =
pi w_major w_minor / (beta - 1) (``moffat.volume_per_amplitude``); beta is bounded to
[1.01, 100], where that volume is finite.
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

from dsa110.science import moffat
from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import SkyImage, check_sky_position
from dsa110.science.regions import Region, region_mask, tangent_offsets_arcsec

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
MODELS = ("gaussian", "moffat")
SHAPE_PARAMETERS = {"gaussian": 6, "moffat": 7}  # amplitude, x0, y0, wx, wy, theta [, beta]
DEFAULT_BOX_BEAMS = 4.0  # fit box side in beam FWHMs when only a position is given
DEFAULT_BOX_PIXELS = 21  # ... and in pixels when the image has no beam
MAX_FIT_PIXELS = 250_000  # a 500 x 500 box; larger fits are not source fits


@dataclass(frozen=True)
class SourceFit:
    """Fitted source; ``*_err`` are 1-sigma. Flux-like values are in ``unit``."""

    model: str  # one of MODELS
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
    beta: float | None  # the Moffat's power index; None for a Gaussian
    beta_err: float | None


def fit_source_2d(
    image: SkyImage,
    ra_deg: float | None = None,
    dec_deg: float | None = None,
    *,
    box_arcsec: float | None = None,
    region: Region | None = None,
    fit_background: bool = True,
    model: str = "gaussian",
) -> SourceFit:
    """Fit one source ``model`` to the pixels of ``region``, or of a square box around (RA, Dec).

    With a region and a position, the position only seeds the fit. Raises
    ``ScienceInputError`` (``BAD_MODEL``, ``BAD_POSITION``, ``OUT_OF_IMAGE``, ``BAD_SIZE``,
    ``EMPTY_REGION``, ``FIT_FAILED``).
    """
    if model not in MODELS:
        raise ScienceInputError("BAD_MODEL", f"model must be one of {', '.join(MODELS)}")
    selection = _fit_pixels(image, ra_deg, dec_deg, box_arcsec, region)
    rows, cols = np.nonzero(selection)
    values = np.asarray(image.data[rows, cols], dtype=np.float64)
    good = np.isfinite(values)
    xs, ys, z = cols[good].astype(np.float64), rows[good].astype(np.float64), values[good]
    n_shape = SHAPE_PARAMETERS[model]
    n_params = n_shape + 1 if fit_background else n_shape
    if z.size < 2 * n_params:
        raise ScienceInputError(
            "FIT_FAILED", f"only {z.size} valid pixels to fit; need at least {2 * n_params}"
        )

    seed = (ra_deg, dec_deg) if ra_deg is not None and dec_deg is not None else None
    initial = _initial_model(image, xs, ys, z, seed=seed, fit_background=fit_background, model=model)
    fitter = fitting.TRFLSQFitter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fitted = fitter(initial, xs, ys, z, maxiter=500)
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

    beam_volume = math.pi * beam.major_arcsec * beam.minor_arcsec / (4.0 * math.log(2.0)) if beam else 0.0
    is_moffat = model == "moffat"

    def derived(p: NDArray[np.float64]) -> NDArray[np.float64]:
        """(peak, east, north, FWHM major, FWHM minor, PA, background, flux, beta) of parameters p."""
        east, north = to_sky @ np.array([p[1] - x0, p[2] - y0])
        w_major, w_minor, pa = _sky_widths(to_sky, p[3], p[4], p[5])
        beta = p[6] if is_moffat else 0.0
        fwhm_per_width, volume = _fwhm_per_width_and_volume(is_moffat, w_major, w_minor, beta)
        flux = p[0] * volume / beam_volume if wants_flux else 0.0
        bg = p[n_shape] if fit_background else 0.0
        return np.array(
            [p[0], east, north, fwhm_per_width * w_major, fwhm_per_width * w_minor, pa, bg, flux, beta]
        )

    centre = derived(params)
    steps = 1e-3 * np.sqrt(np.clip(np.diag(cov), 0.0, None))
    grad = _central_jacobian(derived, params, np.where(steps > 0, steps, 1e-9), wrap_index=5)
    errors = np.sqrt(np.clip(np.diag(grad @ cov @ grad.T), 0.0, None))
    noise = image.noise_estimate()
    return SourceFit(
        model=model,
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
        beta=float(centre[8]) if is_moffat else None,
        beta_err=float(errors[8]) if is_moffat else None,
    )


def _fwhm_per_width_and_volume(
    is_moffat: bool, w_major: float, w_minor: float, beta: float
) -> tuple[float, float]:
    """FWHM / width, and the volume per unit amplitude, of a source with sky widths ``w``."""
    if is_moffat:
        return moffat.fwhm_per_alpha(beta), moffat.volume_per_amplitude(w_major, w_minor, beta)
    return FWHM_PER_SIGMA, 2.0 * math.pi * w_major * w_minor


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
    model: str,
) -> Any:
    """Seed: brightest pixel (or the given position), median background, beam-sized FWHM."""
    background = float(np.median(z)) if fit_background else 0.0
    peak_index = int(np.argmax(z))
    x0, y0 = xs[peak_index], ys[peak_index]
    if seed is not None:
        gx, gy = image.world_to_pixel(*seed)
        if np.isfinite(gx) and np.isfinite(gy) and xs.min() <= gx <= xs.max() and ys.min() <= gy <= ys.max():
            x0, y0 = float(gx), float(gy)
    span = float(max(xs.max() - xs.min(), ys.max() - ys.min(), 2.0))
    fwhm = image.beam.major_arcsec / min(image.pixel_scales_arcsec()) if image.beam else 2.0 * FWHM_PER_SIGMA
    fwhm = min(fwhm, span)  # a box smaller than the beam: seed inside the width bounds
    amplitude = float(z[peak_index]) - background
    source: Any
    if model == "moffat":
        alpha = fwhm / moffat.fwhm_per_alpha(moffat.BETA_SEED)
        source = moffat.EllipticalMoffat2D(amplitude, x0, y0, alpha, alpha, 0.0, moffat.BETA_SEED)
        source.beta.bounds = (moffat.BETA_MIN, moffat.BETA_MAX)
        widths = (source.alpha_x, source.alpha_y)
    else:
        sigma = fwhm / FWHM_PER_SIGMA
        source = models.Gaussian2D(amplitude, x0, y0, sigma, sigma, 0.0)
        widths = (source.x_stddev, source.y_stddev)
    for width in widths:
        width.bounds = (0.05, span)
    return source + models.Const2D(amplitude=background) if fit_background else source


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


def _sky_widths(
    to_sky: NDArray[np.float64], wx: float, wy: float, theta: float
) -> tuple[float, float, float]:
    """Major and minor width (arcsec) and PA (deg E of N) of the pixel-space ellipse on the sky."""
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    cov_pix = rot @ np.diag([wx * wx, wy * wy]) @ rot.T
    cov_sky = to_sky @ cov_pix @ to_sky.T
    values, vectors = np.linalg.eigh(cov_sky)  # ascending
    east, north = vectors[0, 1], vectors[1, 1]
    pa = math.degrees(math.atan2(east, north)) % 180.0
    return math.sqrt(max(values[1], 0.0)), math.sqrt(max(values[0], 0.0)), pa
