"""Synthetic radio images written as real FITS files by astropy (SIN projection, 4-D cube).

The sky model is evaluated independently of the code under test: pixel centres go through
astropy's WCS to (RA, Dec), then to offsets in astropy's ``SkyOffsetFrame`` around the
source, where the elliptical Gaussian is defined with its PA east of north.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def sin_header(
    *,
    nx: int = 128,
    ny: int = 128,
    ra0: float = 150.0,
    dec0: float = 37.0,
    cell_arcsec: float = 3.0,
    rotation_deg: float = 0.0,
    beam: tuple[float, float, float] | None = (30.0, 15.0, 40.0),
    bunit: str = "Jy/beam",
) -> fits.Header:
    """A 4-D (RA, Dec, FREQ, STOKES) SIN header; ``rotation_deg`` rotates the pixel grid on the sky."""
    header = fits.Header()
    header["NAXIS"] = 4
    header["NAXIS1"], header["NAXIS2"], header["NAXIS3"], header["NAXIS4"] = nx, ny, 1, 1
    header["CTYPE1"], header["CTYPE2"] = "RA---SIN", "DEC--SIN"
    header["CRVAL1"], header["CRVAL2"] = ra0, dec0
    header["CRPIX1"], header["CRPIX2"] = nx / 2 + 0.5, ny / 2 + 0.5
    header["CDELT1"], header["CDELT2"] = -cell_arcsec / 3600.0, cell_arcsec / 3600.0
    c, s = math.cos(math.radians(rotation_deg)), math.sin(math.radians(rotation_deg))
    header["PC1_1"], header["PC1_2"], header["PC2_1"], header["PC2_2"] = c, -s, s, c
    header["CUNIT1"], header["CUNIT2"] = "deg", "deg"
    header["CTYPE3"], header["CRVAL3"], header["CDELT3"], header["CRPIX3"] = "FREQ", 1.405e9, 1.875e8, 1.0
    header["CTYPE4"], header["CRVAL4"], header["CDELT4"], header["CRPIX4"] = "STOKES", 1.0, 1.0, 1.0
    header["BUNIT"] = bunit
    header["TELESCOP"] = "DSA-110"
    if beam is not None:
        header["BMAJ"], header["BMIN"], header["BPA"] = beam[0] / 3600.0, beam[1] / 3600.0, beam[2]
    return header


def celestial_wcs(header: fits.Header) -> WCS:
    return WCS(header).celestial


def write_image(path: Path, data: np.ndarray, header: fits.Header) -> Path:
    """Write a 2-D plane as the 4-D cube pipeline images are."""
    fits.PrimaryHDU(data=data.astype(np.float32)[np.newaxis, np.newaxis], header=header).writeto(path)
    return path


def _along_across_arcsec(
    header: fits.Header, ra: float, dec: float, pa_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets of every pixel centre from (ra, dec) along and across position angle ``pa_deg``."""
    wcs = celestial_wcs(header)
    ny, nx = header["NAXIS2"], header["NAXIS1"]
    ys, xs = np.mgrid[0:ny, 0:nx]
    pix_ra, pix_dec = wcs.pixel_to_world_values(xs, ys)
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    east, north = centre.spherical_offsets_to(SkyCoord(pix_ra * u.deg, pix_dec * u.deg))
    east, north = east.to_value(u.arcsec), north.to_value(u.arcsec)
    pa = math.radians(pa_deg)
    return east * math.sin(pa) + north * math.cos(pa), east * math.cos(pa) - north * math.sin(pa)


def sky_gaussian(
    header: fits.Header,
    ra: float,
    dec: float,
    *,
    peak: float,
    fwhm_major_arcsec: float,
    fwhm_minor_arcsec: float,
    pa_deg: float,
) -> np.ndarray:
    """An elliptical Gaussian on the sky, sampled at the pixel centres of ``header``'s grid."""
    along, across = _along_across_arcsec(header, ra, dec, pa_deg)
    s_major, s_minor = fwhm_major_arcsec / FWHM_PER_SIGMA, fwhm_minor_arcsec / FWHM_PER_SIGMA
    return np.asarray(peak * np.exp(-0.5 * ((along / s_major) ** 2 + (across / s_minor) ** 2)))


def sky_moffat(
    header: fits.Header,
    ra: float,
    dec: float,
    *,
    peak: float,
    fwhm_major_arcsec: float,
    fwhm_minor_arcsec: float,
    pa_deg: float,
    beta: float,
) -> np.ndarray:
    """An elliptical Moffat, peak (1 + (a/alpha_maj)^2 + (c/alpha_min)^2)^-beta, on the sky.

    alpha = FWHM / (2 sqrt(2^(1/beta) - 1)), written out here rather than imported, so the
    test does not take the formula from the code it checks.
    """
    along, across = _along_across_arcsec(header, ra, dec, pa_deg)
    per_alpha = 2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0)
    a_major, a_minor = fwhm_major_arcsec / per_alpha, fwhm_minor_arcsec / per_alpha
    return np.asarray(peak * (1.0 + (along / a_major) ** 2 + (across / a_minor) ** 2) ** (-beta))
