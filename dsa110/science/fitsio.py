"""Open a FITS image as the 2-D celestial plane every analysis works on.

Pipeline images are often 4-D (RA, Dec, frequency, Stokes) with degenerate extra axes.
The legacy code kept the cube shape in some paths and a 2-D mask in others, so 4-D images
broke region statistics (legacy-pipeline-facts §3.8). Here there is one loader: it picks the
first HDU holding an image, keeps the two celestial axes (the first plane of every other
axis), returns the matching celestial WCS, and reads the restoring beam from
BMAJ/BMIN/BPA (degrees, FITS convention) or, failing that, a CASA ``BEAMS`` table.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from numpy.typing import ArrayLike, NDArray

from dsa110.science.errors import ScienceInputError

DEFAULT_UNIT = "Jy/beam"

# 1.4826 * MAD is the standard deviation of a Gaussian (Rousseeuw & Croux 1993).
MAD_TO_SIGMA = 1.482602218505602


@dataclass(frozen=True)
class Beam:
    """Restoring beam: FWHM axes in arcsec, position angle in degrees east of north."""

    major_arcsec: float
    minor_arcsec: float
    pa_deg: float


@dataclass(frozen=True)
class SkyImage:
    """A 2-D image plane with its celestial WCS.

    ``data`` is indexed ``[y, x]`` (numpy order); pixel coordinates are 0-based with pixel
    centres on integers, as astropy's ``*_values`` WCS methods use.
    """

    data: NDArray[np.floating[Any]]
    wcs: WCS
    header: fits.Header
    unit: str
    beam: Beam | None

    @property
    def shape(self) -> tuple[int, int]:
        ny, nx = self.data.shape
        return int(ny), int(nx)

    def pixel_scales_arcsec(self) -> tuple[float, float]:
        """Pixel size along x and y in arcsec at the reference point."""
        sx, sy = proj_plane_pixel_scales(self.wcs)
        return float(sx) * 3600.0, float(sy) * 3600.0

    def world_to_pixel(self, ra_deg: ArrayLike, dec_deg: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
        x, y = self.wcs.world_to_pixel_values(np.asarray(ra_deg, float), np.asarray(dec_deg, float))
        return np.asarray(x, float), np.asarray(y, float)

    def pixel_to_world(self, x: ArrayLike, y: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
        ra, dec = self.wcs.pixel_to_world_values(np.asarray(x, float), np.asarray(y, float))
        return np.mod(np.asarray(ra, float), 360.0), np.asarray(dec, float)

    def pixel_of(self, ra_deg: float, dec_deg: float) -> tuple[float, float]:
        """Pixel position of a sky position; raises ``OUT_OF_IMAGE`` when it is off the image."""
        check_sky_position(ra_deg, dec_deg)
        with np.errstate(invalid="ignore"):
            x, y = self.world_to_pixel(ra_deg, dec_deg)
        xf, yf = float(x), float(y)
        ny, nx = self.shape
        if not (np.isfinite(xf) and np.isfinite(yf) and -0.5 <= xf < nx - 0.5 and -0.5 <= yf < ny - 0.5):
            raise ScienceInputError(
                "OUT_OF_IMAGE", f"position RA={ra_deg:.6f} Dec={dec_deg:.6f} deg is not on the image"
            )
        return xf, yf

    def noise_estimate(self) -> float:
        """Robust image noise, 1.4826 x median absolute deviation of the finite pixels.

        Sources occupy a small fraction of a radio image, so the MAD follows the thermal
        noise and not the sources. Subsampled to at most ~10^6 pixels for speed.
        """
        values = self.data[np.isfinite(self.data)]
        if values.size == 0:
            return float("nan")
        step = max(1, values.size // 1_000_000)
        sample = np.asarray(values[::step], dtype=np.float64)
        return float(MAD_TO_SIGMA * np.median(np.abs(sample - np.median(sample))))


def check_sky_position(ra_deg: float, dec_deg: float) -> None:
    """Reject non-finite RA/Dec and Dec outside [-90, 90] (RA wraps, any finite value is fine)."""
    if not (np.isfinite(ra_deg) and np.isfinite(dec_deg)) or not -90.0 <= dec_deg <= 90.0:
        raise ScienceInputError("BAD_POSITION", f"invalid sky position RA={ra_deg} Dec={dec_deg}")


def open_image(source: str | os.PathLike[str] | bytes) -> SkyImage:
    """Read a FITS image (path or bytes) as its 2-D celestial plane."""
    if isinstance(source, bytes | bytearray):
        stream: Any = io.BytesIO(source)
    else:
        if not os.path.isfile(source):
            raise ScienceInputError("FILE_NOT_FOUND", f"image file not found: {os.fspath(source)}")
        stream = os.fspath(source)
    try:
        with fits.open(stream, memmap=False) as hdus:
            image_hdu = next(
                (h for h in hdus if isinstance(h, fits.PrimaryHDU | fits.ImageHDU) and h.data is not None),
                None,
            )
            if image_hdu is None or image_hdu.data.ndim < 2:
                raise ScienceInputError("NOT_AN_IMAGE", "the FITS file holds no image")
            header = image_hdu.header.copy()
            cube = np.asarray(image_hdu.data)
            beams = _beam_from_table(hdus)
    except ScienceInputError:
        raise
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise ScienceInputError("NOT_AN_IMAGE", f"cannot read FITS: {exc}") from exc
    return image_from_array(cube, header, fallback_beam=beams)


def image_from_array(cube: NDArray[Any], header: fits.Header, fallback_beam: Beam | None = None) -> SkyImage:
    """Squeeze an N-D image (N >= 2) with its header to the celestial plane."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            full = WCS(header, naxis=cube.ndim)
        except Exception as exc:  # astropy raises many types for broken WCS keywords
            raise ScienceInputError("NOT_AN_IMAGE", f"invalid WCS: {exc}") from exc
    if not full.has_celestial or full.wcs.lng < 0 or full.wcs.lat < 0:
        raise ScienceInputError("NOT_AN_IMAGE", "the image has no celestial (RA/Dec) axes")
    lng, lat = int(full.wcs.lng), int(full.wcs.lat)
    ndim = cube.ndim
    # numpy axis j is WCS axis ndim-1-j; take plane 0 of every non-celestial axis.
    index = tuple(slice(None) if ndim - 1 - j in (lng, lat) else 0 for j in range(ndim))
    plane = np.asarray(cube[index])
    if lat < lng:  # unusual Dec-before-RA axis order: make x follow RA
        plane = plane.T
    celestial = full.sub([lng + 1, lat + 1])
    if plane.dtype.kind not in "f":
        plane = plane.astype(np.float64)
    elif plane.dtype.byteorder not in ("=", "|"):
        plane = plane.astype(plane.dtype.newbyteorder("="))
    unit = str(header.get("BUNIT", "")).strip() or DEFAULT_UNIT
    return SkyImage(
        data=plane, wcs=celestial, header=header, unit=unit, beam=_beam_from_header(header) or fallback_beam
    )


def _beam_from_header(header: fits.Header) -> Beam | None:
    try:
        bmaj, bmin = float(header["BMAJ"]), float(header["BMIN"])
        bpa = float(header.get("BPA", 0.0))
    except (KeyError, TypeError, ValueError):
        return None
    if not (np.isfinite(bmaj) and np.isfinite(bmin) and bmaj > 0 and bmin > 0):
        return None
    return Beam(major_arcsec=bmaj * 3600.0, minor_arcsec=bmin * 3600.0, pa_deg=bpa)


def _beam_from_table(hdus: fits.HDUList) -> Beam | None:
    """First row of a CASA ``BEAMS`` extension (per-channel beams), units from TUNIT."""
    if "BEAMS" not in hdus:
        return None
    table = hdus["BEAMS"]
    try:
        cols = table.columns
        row = table.data[0]

        def value(name: str, default_unit: str) -> float:
            unit = cols[name].unit or default_unit
            return float((row[name] * u.Unit(unit)).to_value(u.arcsec if default_unit != "deg" else u.deg))

        return Beam(value("BMAJ", "arcsec"), value("BMIN", "arcsec"), value("BPA", "deg"))
    except (KeyError, IndexError, ValueError, TypeError):
        return None


def celestial_header(image: SkyImage) -> fits.Header:
    """A 2-D header for derived images: celestial WCS plus beam, unit and observation keys."""
    header = image.wcs.to_header()
    header["BUNIT"] = image.unit
    if image.beam is not None:
        header["BMAJ"] = image.beam.major_arcsec / 3600.0
        header["BMIN"] = image.beam.minor_arcsec / 3600.0
        header["BPA"] = image.beam.pa_deg
    for key in ("TELESCOP", "INSTRUME", "OBJECT", "DATE-OBS", "MJD-OBS", "RESTFRQ", "EQUINOX"):
        if key in image.header and key not in header:
            header[key] = image.header[key]
    return header
