"""Forced peak photometry at known sky positions, vectorised over many positions.

The method is the legacy pipeline's ``measure_forced_peak`` (legacy-pipeline-facts §3.4),
written for whole catalogs at once (one WCS call and a few array operations per image):

- **Position.** The catalog (RA, Dec) goes through the image WCS to a 0-based pixel
  position (x, y); the nearest pixel is ``(floor(x + 0.5), floor(y + 0.5))``.
- **Peak.** ``S_peak = max`` of the finite pixels in a ``box_size_pix`` square box centred
  on that pixel (Jy/beam). The box absorbs sub-pixel position and pointing errors.
- **Local rms.** ``sigma = 1.4826 * median(|a - median(a)|)`` over the finite pixels ``a``
  of the annulus ``r_in <= r < r_out`` (r is the distance between pixel centres, in
  pixels). The median absolute deviation ignores the few pixels a neighbouring source
  occupies; 1.4826 makes it the standard deviation of Gaussian noise (Rousseeuw & Croux
  1993, JASA 88, 1273).
- **Errors and SNR.** ``err(S_peak) = sigma`` and ``SNR = S_peak / sigma``.
- **Integrated flux.** For an unresolved (point) source the brightness distribution is
  the restoring beam itself, so ``S_int = S_peak * (Omega_source / Omega_beam) = S_peak``
  numerically (Jy/beam x 1 beam = Jy), with the same error. Extended sources need a fit
  (a later job), not forced photometry.

A position off the image, too close to its edge for the whole box, or with fewer than
``MIN_ANNULUS_PIXELS`` finite annulus pixels is reported as failed (``success`` False,
values NaN, a reason in ``errors``) rather than raising: one bad catalog row must not stop
the measurement of an image. Malformed *arguments* (not a 2-D image, even box, inverted
annulus, mismatched arrays) raise :class:`ScienceInputError` with a stable code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.wcs import WCS
from numpy.typing import ArrayLike, NDArray

from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import MAD_TO_SIGMA

DEFAULT_BOX_SIZE_PIX = 5
DEFAULT_ANNULUS_PIX = (12.0, 20.0)
MIN_ANNULUS_PIXELS = 8
# A box or annulus bigger than this is a mistake (or an attack), not a measurement.
MAX_APERTURE_PIX = 256

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ForcedPhotometry:
    """Per-position results, all arrays of the input length (NaN where ``success`` is False).

    Fluxes in Jy/beam (peak) and Jy (integrated); ``x_pix``/``y_pix`` are the 0-based
    pixel positions of the requested sky positions.
    """

    x_pix: FloatArray
    y_pix: FloatArray
    peak_jy: FloatArray
    peak_err_jy: FloatArray
    int_flux_jy: FloatArray
    int_flux_err_jy: FloatArray
    local_rms_jy: FloatArray
    snr: FloatArray
    success: NDArray[np.bool_]
    errors: tuple[str | None, ...]

    def __len__(self) -> int:
        return int(self.peak_jy.shape[0])


def _check_apertures(box_size_pix: int, annulus_pix: tuple[float, float]) -> None:
    if (
        not isinstance(box_size_pix, int | np.integer)
        or box_size_pix < 1
        or box_size_pix % 2 == 0
        or box_size_pix > MAX_APERTURE_PIX
    ):
        raise ScienceInputError(
            "BAD_SIZE",
            f"box_size_pix must be an odd integer in [1, {MAX_APERTURE_PIX}], got {box_size_pix!r}",
        )
    try:
        r_in, r_out = (float(r) for r in annulus_pix)
    except (TypeError, ValueError) as exc:
        raise ScienceInputError("BAD_SIZE", f"annulus_pix must be two radii, got {annulus_pix!r}") from exc
    half_box = (box_size_pix - 1) // 2
    if not (np.isfinite(r_in) and np.isfinite(r_out)) or not half_box < r_in < r_out <= MAX_APERTURE_PIX:
        raise ScienceInputError(
            "BAD_SIZE",
            f"annulus radii must satisfy {half_box} < inner < outer <= {MAX_APERTURE_PIX}, "
            f"got {annulus_pix!r}",
        )


@functools.lru_cache(maxsize=32)
def _offsets(box_size_pix: int, annulus_pix: tuple[float, float]) -> tuple[NDArray[np.intp], ...]:
    """Pixel offsets (dy, dx) of the box and of the annulus around a centre pixel."""
    half = (box_size_pix - 1) // 2
    by, bx = np.mgrid[-half : half + 1, -half : half + 1]
    r_in, r_out = float(annulus_pix[0]), float(annulus_pix[1])
    reach = int(np.ceil(r_out))
    ay, ax = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    r2 = ay**2 + ax**2
    ring = (r2 >= r_in**2) & (r2 < r_out**2)
    return by.ravel(), bx.ravel(), ay[ring], ax[ring]


def _gather(
    data: NDArray[Any], cy: NDArray[np.intp], cx: NDArray[np.intp], dy: NDArray[np.intp], dx: NDArray[np.intp]
) -> FloatArray:
    """``data[cy + dy, cx + dx]`` for every centre (rows) and offset (columns); NaN off the image."""
    ny, nx = data.shape
    yy = cy[:, None] + dy[None, :]
    xx = cx[:, None] + dx[None, :]
    inside = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
    values: FloatArray = data[np.clip(yy, 0, ny - 1), np.clip(xx, 0, nx - 1)].astype(np.float64)
    values[~inside] = np.nan
    return values


def measure_pixels(
    data: ArrayLike,
    x_pix: ArrayLike,
    y_pix: ArrayLike,
    *,
    box_size_pix: int = DEFAULT_BOX_SIZE_PIX,
    annulus_pix: tuple[float, float] = DEFAULT_ANNULUS_PIX,
) -> ForcedPhotometry:
    """Forced peak photometry at 0-based pixel positions of a 2-D image ``data[y, x]``."""
    image = np.asarray(data)
    if image.ndim != 2 or image.dtype.kind not in "fiu" or min(image.shape) < 1:
        raise ScienceInputError("NOT_AN_IMAGE", f"expected a 2-D numeric image, got shape {image.shape}")
    _check_apertures(box_size_pix, annulus_pix)
    x = np.atleast_1d(np.asarray(x_pix, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y_pix, dtype=np.float64))
    if x.ndim != 1 or x.shape != y.shape:
        raise ScienceInputError("BAD_POSITION", "x and y positions must be 1-D arrays of equal length")
    n = x.shape[0]
    ny, nx = image.shape
    half = (box_size_pix - 1) // 2
    errors: list[str | None] = [None] * n

    finite = np.isfinite(x) & np.isfinite(y)
    # Clip before the integer cast so absurd positions (1e300) cannot overflow it.
    cx = np.floor(np.clip(np.where(finite, x, -2.0), -2.0, nx + 2.0) + 0.5).astype(np.intp)
    cy = np.floor(np.clip(np.where(finite, y, -2.0), -2.0, ny + 2.0) + 0.5).astype(np.intp)
    on_image = finite & (cx >= 0) & (cx < nx) & (cy >= 0) & (cy < ny)
    box_inside = on_image & (cx >= half) & (cx < nx - half) & (cy >= half) & (cy < ny - half)

    by, bx, ay, ax = _offsets(int(box_size_pix), (float(annulus_pix[0]), float(annulus_pix[1])))
    peak = np.full(n, np.nan)
    rms = np.full(n, np.nan)
    ok = box_inside.copy()
    if ok.any():
        idx = np.flatnonzero(ok)
        box = _gather(image, cy[idx], cx[idx], by, bx)
        ring = _gather(image, cy[idx], cx[idx], ay, ax)
        box_finite: NDArray[np.bool_] = np.asarray(np.isfinite(box).any(axis=1))
        ring_count: NDArray[np.intp] = np.asarray(np.isfinite(ring).sum(axis=1))
        with np.errstate(all="ignore"):
            peak[idx] = np.where(
                box_finite, np.nanmax(np.where(np.isfinite(box), box, -np.inf), axis=1), np.nan
            )
            # np.median is ~10x faster than nanmedian; use it when nothing is masked.
            median = np.median if not np.isnan(ring).any() else np.nanmedian
            centre = median(ring, axis=1)
            mad = median(np.abs(ring - centre[:, None]), axis=1)
        rms[idx] = np.where(ring_count >= MIN_ANNULUS_PIXELS, MAD_TO_SIGMA * mad, np.nan)
        for j, i in enumerate(idx.tolist()):
            if not box_finite[j]:
                errors[i] = "no finite pixel in the box"
            elif ring_count[j] < MIN_ANNULUS_PIXELS:
                errors[i] = f"only {int(ring_count[j])} finite annulus pixels (need {MIN_ANNULUS_PIXELS})"
            elif not rms[i] > 0:
                errors[i] = "zero local rms"
        ok[idx] = box_finite & (ring_count >= MIN_ANNULUS_PIXELS) & (rms[idx] > 0)
    for i in np.flatnonzero(~box_inside).tolist():
        errors[i] = (
            "position is not finite"
            if not finite[i]
            else "position is off the image"
            if not on_image[i]
            else "box extends beyond the image edge"
        )

    peak = np.where(ok, peak, np.nan)
    rms = np.where(ok, rms, np.nan)
    with np.errstate(all="ignore"):
        snr = peak / rms
    return ForcedPhotometry(
        x_pix=x,
        y_pix=y,
        peak_jy=peak,
        peak_err_jy=rms.copy(),
        int_flux_jy=peak.copy(),
        int_flux_err_jy=rms.copy(),
        local_rms_jy=rms,
        snr=snr,
        success=ok,
        errors=tuple(errors),
    )


def measure_forced_peak(
    data: ArrayLike,
    wcs: WCS,
    ra_deg: ArrayLike,
    dec_deg: ArrayLike,
    *,
    box_size_pix: int = DEFAULT_BOX_SIZE_PIX,
    annulus_pix: tuple[float, float] = DEFAULT_ANNULUS_PIX,
) -> ForcedPhotometry:
    """Forced peak photometry at sky positions (degrees) through a 2-D celestial ``wcs``."""
    if not isinstance(wcs, WCS) or wcs.pixel_n_dim != 2:
        raise ScienceInputError("NOT_AN_IMAGE", "a 2-D celestial WCS is required")
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=np.float64))
    if ra.ndim != 1 or ra.shape != dec.shape:
        raise ScienceInputError("BAD_POSITION", "RA and Dec must be 1-D arrays of equal length")
    valid = np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0)
    x = np.full(ra.shape, np.nan)
    y = np.full(ra.shape, np.nan)
    if valid.any():
        with np.errstate(invalid="ignore"):
            px, py = wcs.wcs_world2pix(ra[valid], dec[valid], 0)
        x[valid], y[valid] = px, py
    return measure_pixels(data, x, y, box_size_pix=box_size_pix, annulus_pix=annulus_pix)
