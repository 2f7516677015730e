"""Postage stamps: a cut-out of any size around a sky position, as FITS or PNG bytes.

The legacy pipeline wrote cut-outs to a server-local temp path that no endpoint served
(legacy-pipeline-facts §3.5). Here a cut-out is bytes in memory; the server streams them at a
URL. The FITS header carries the cut-out's own celestial WCS (astropy ``Cutout2D`` shifts
CRPIX) and keeps BMAJ/BMIN/BPA/BUNIT so the stamp is still a valid radio image.

Stamps near an edge are ``partial``: the requested size is kept and pixels beyond the image
are NaN (transparent in the PNG), so stamps of one source line up across epochs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.visualization import ZScaleInterval
from astropy.wcs import WCS
from numpy.typing import NDArray
from PIL import Image

from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import SkyImage, celestial_header

# One side of a stamp may not exceed this many pixels (4 Mpixel, ~16 MB as float32):
# bigger requests are a mistake or an attack, and the full image is served elsewhere.
MAX_CUTOUT_PIXELS = 2048
# ...and never fewer than this: a smaller request is widened (see ``stamp_pixels``).
MIN_CUTOUT_PIXELS = 5

Stretch = Literal["asinh", "linear"]

# asinh softening: y = asinh(x / a) / asinh(1 / a) on x in [0, 1] (Lupton et al. 1999,
# AJ 118, 1406). a = 0.1 lifts faint emission while keeping bright sources unsaturated.
ASINH_SOFTENING = 0.1


@dataclass(frozen=True)
class Cutout:
    """A stamp: ``data[y, x]`` (NaN outside the parent image) and its celestial WCS."""

    data: NDArray[np.floating[Any]]
    wcs: WCS
    header: fits.Header

    def to_fits_bytes(self) -> bytes:
        buffer = io.BytesIO()
        fits.PrimaryHDU(data=np.asarray(self.data, dtype=np.float32), header=self.header).writeto(buffer)
        return buffer.getvalue()

    def to_png_bytes(self, stretch: Stretch = "asinh") -> bytes:
        return render_png(self.data, stretch)


def stamp_pixels(size_arcsec: float, pixel_arcsec: float) -> int:
    """Pixels along one side: ``size / pixel`` rounded, but at least ``MIN_CUTOUT_PIXELS``.

    A size below a few pixels (30 arcsec on 90-arcsec pixels rounds to 0) would be an
    empty stamp that no FITS or PNG can hold; it is widened instead (the stamp's WCS and
    NAXIS say what was cut).
    """
    return max(MIN_CUTOUT_PIXELS, round(size_arcsec / pixel_arcsec))


def make_cutout(image: SkyImage, ra_deg: float, dec_deg: float, size_arcsec: float) -> Cutout:
    """Cut a square stamp ``size_arcsec`` on a side centred on (RA, Dec) in degrees.

    The stamp is at least ``MIN_CUTOUT_PIXELS`` on a side (``stamp_pixels``). Raises
    ``ScienceInputError``: ``BAD_SIZE`` for a non-positive, non-finite or oversized size,
    ``BAD_POSITION`` for an invalid position, ``OUT_OF_IMAGE`` when the centre is off the
    image.
    """
    if not np.isfinite(size_arcsec) or size_arcsec <= 0:
        raise ScienceInputError(
            "BAD_SIZE", f"cut-out size must be a positive number of arcsec, got {size_arcsec}"
        )
    scale_x, scale_y = image.pixel_scales_arcsec()
    scale = min(scale_x, scale_y)
    if size_arcsec / scale > MAX_CUTOUT_PIXELS:
        raise ScienceInputError(
            "BAD_SIZE",
            f"cut-out of {size_arcsec} arcsec is over {MAX_CUTOUT_PIXELS} pixels of {scale:.3g} arcsec",
        )
    x, y = image.pixel_of(ra_deg, dec_deg)
    stamp = Cutout2D(
        image.data,
        position=(x, y),
        size=(stamp_pixels(size_arcsec, scale_y), stamp_pixels(size_arcsec, scale_x)),
        wcs=image.wcs,
        mode="partial",
        fill_value=np.nan,
        copy=True,
    )
    parent = celestial_header(image)
    header = stamp.wcs.to_header()
    for key in (
        "BUNIT",
        "BMAJ",
        "BMIN",
        "BPA",
        "TELESCOP",
        "INSTRUME",
        "OBJECT",
        "DATE-OBS",
        "MJD-OBS",
        "RESTFRQ",
    ):
        if key in parent and key not in header:
            header[key] = parent[key]
    header["ORIGX"] = (int(stamp.origin_original[0]), "x of stamp pixel 0 in the parent image")
    header["ORIGY"] = (int(stamp.origin_original[1]), "y of stamp pixel 0 in the parent image")
    return Cutout(data=np.asarray(stamp.data), wcs=stamp.wcs, header=header)


def render_png(data: NDArray[np.floating[Any]], stretch: Stretch = "asinh") -> bytes:
    """8-bit greyscale PNG with alpha (NaN pixels transparent), north up.

    Display scaling: values are clipped to the IRAF zscale interval (astropy
    ``ZScaleInterval``: a robust line fit to the sorted pixel values, so a few bright
    sources do not set the range) and mapped to [0, 1]; ``asinh`` then applies
    y = asinh(x/a)/asinh(1/a) with a = 0.1, ``linear`` leaves y = x. Row 0 of a FITS image
    is the bottom (south), so rows are flipped for a top-down PNG.
    """
    if stretch not in ("asinh", "linear"):
        raise ScienceInputError("BAD_STRETCH", f"unknown stretch {stretch!r}; use 'asinh' or 'linear'")
    values = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(values)
    scaled = np.zeros_like(values)
    if finite.any():
        lo, hi = ZScaleInterval().get_limits(values[finite])
        if hi > lo:
            scaled = np.clip((np.where(finite, values, lo) - lo) / (hi - lo), 0.0, 1.0)
    if stretch == "asinh":
        scaled = np.arcsinh(scaled / ASINH_SOFTENING) / np.arcsinh(1.0 / ASINH_SOFTENING)
    grey = np.round(scaled * 255.0).astype(np.uint8)
    alpha = np.where(finite, 255, 0).astype(np.uint8)
    pixels = np.flipud(np.stack([grey, alpha], axis=-1))
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()
