"""Synthesis of the 5-minute tiles: pixels, FITS files, and the forced photometry on them.

A tile is what the imager would produce for one group (geometry in
:mod:`dsa110.demo.instrument`):

1. **Sky.** Each source in the tile is a point of flux density
   ``S = S_true * f_var(t) * g`` (``g``: the per-image calibration gain shared by every
   source of the image) attenuated by the primary beam at its position, ``S * P(r_src)``.
2. **Restoring beam.** Points are convolved with the elliptical Gaussian beam
   ``exp(-4 ln2 (u^2 / bmaj^2 + v^2 / bmin^2))`` with (u, v) the offset along the major
   and minor axes; the major axis is at position angle ``BPA`` east of north, and east is
   towards -x (``CDELT1 < 0``). A point source's peak brightness in Jy/beam equals its
   flux density in Jy.
3. **Noise.** White Gaussian thermal noise of ``sigma`` Jy/beam per pixel.
4. **Primary-beam correction.** The image is divided by the beam power ``P(r_pix)``
   (``pbcor``), so source brightness is true brightness again and the noise grows
   towards the edges (x ~11 in the corners): the primary-beam taper of every pbcor tile.

The demo then measures the pixels with :func:`dsa110.science.photometry.measure_forced_peak`
at the catalog positions; the measurements in the database are those numbers.
Everything here is a pure function of its inputs (each tile has its own seed), so a
process pool gives byte-identical results.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from numpy.typing import NDArray

from dsa110.demo.instrument import (
    FREQ_HZ,
    GROUP_MINUTES,
    OVRO,
    PHOT_ANNULUS_PIX,
    PHOT_BOX_PIX,
    TILE_CELL_ARCSEC,
    TILE_CRPIX,
    TILE_NPIX,
    airy_primary_beam,
    tile_pixel_separation_deg,
)
from dsa110.science.fitsio import MAD_TO_SIGMA
from dsa110.science.healpix import angular_separation_deg
from dsa110.science.photometry import measure_forced_peak

FOUR_LN2 = 4.0 * math.log(2.0)
# The image noise is measured in the central 64 x 64 pixels, where the primary beam is
# above 0.8 and the pbcor noise is close to the thermal noise.
NOISE_BOX_HALF = 32


def tile_wcs(centre_ra_deg: float, centre_dec_deg: float) -> WCS:
    """SIN-projected celestial WCS of a tile centred on (RA, Dec)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crpix = [TILE_CRPIX, TILE_CRPIX]
    cell = TILE_CELL_ARCSEC / 3600.0
    wcs.wcs.cdelt = [-cell, cell]
    wcs.wcs.crval = [centre_ra_deg, centre_dec_deg]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.equinox = 2000.0
    return wcs


def header_template(centre_dec_deg: float) -> fits.Header:
    """Keywords common to every tile; per-tile values are filled by :func:`tile_header`."""
    header = tile_wcs(0.0, centre_dec_deg).to_header()
    for key in ("MJDREF", "DATEREF", "WCSAXES"):
        header.remove(key, ignore_missing=True)
    header["BUNIT"] = ("Jy/beam", "primary-beam corrected")
    header["BTYPE"] = "Intensity"
    header["BMAJ"] = (0.0, "[deg] restoring beam major axis FWHM")
    header["BMIN"] = (0.0, "[deg] restoring beam minor axis FWHM")
    header["BPA"] = (0.0, "[deg] restoring beam position angle")
    header["FREQ"] = (FREQ_HZ, "[Hz] reference frequency")
    header["RESTFRQ"] = FREQ_HZ
    header["TELESCOP"] = "DSA-110"
    for axis, metres in zip("XYZ", OVRO.to_geocentric(), strict=True):
        header[f"OBSGEO-{axis}"] = (round(float(metres.to_value("m")), 3), "[m] OVRO, geocentric")
    header["DATE-OBS"] = ""
    header["MJD-OBS"] = (0.0, "start of the group (as DATE-OBS)")
    header["OBJECT"] = ""
    header["ORIGIN"] = "dsa110-graph demo"
    return header


@dataclass(frozen=True)
class TileSpec:
    """Everything one tile depends on. Source arrays cover every source that lands on the
    tile; ``measure`` marks the ones inside the measured region."""

    index: int
    group_id: str
    path: str | None
    centre_ra_deg: float
    centre_dec_deg: float
    mid_mjd: float
    date_obs: str
    noise_jy: float
    beam_major_arcsec: float
    beam_minor_arcsec: float
    beam_pa_deg: float
    seed: tuple[int, int]
    src_ra_deg: NDArray[np.float64]
    src_dec_deg: NDArray[np.float64]
    src_flux_jy: NDArray[np.float64]
    measure: NDArray[np.bool_]


@dataclass(frozen=True)
class TileResult:
    index: int
    noise_jy: float
    peak_jy: float
    phot_peak_jy: NDArray[np.float64]
    phot_rms_jy: NDArray[np.float64]
    phot_snr: NDArray[np.float64]
    phot_ok: NDArray[np.bool_]


def render_tile(spec: TileSpec, wcs: WCS, pb_map: NDArray[np.float64]) -> NDArray[np.float32]:
    """The pbcor pixels of one tile (float32, ``[y, x]``)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(spec.seed)))
    image = rng.standard_normal((TILE_NPIX, TILE_NPIX)) * spec.noise_jy
    if spec.src_ra_deg.size:
        x, y = wcs.wcs_world2pix(spec.src_ra_deg, spec.src_dec_deg, 0)
        sep = angular_separation_deg(
            spec.src_ra_deg, spec.src_dec_deg, spec.centre_ra_deg, spec.centre_dec_deg
        )
        _add_beams(image, x, y, spec.src_flux_jy * airy_primary_beam(sep), spec)
    return np.asarray(image / pb_map, dtype=np.float32)


def _add_beams(
    image: NDArray[np.float64], x: NDArray[Any], y: NDArray[Any], flux: NDArray[Any], spec: TileSpec
) -> None:
    """Add an elliptical Gaussian of peak ``flux`` at each (x, y), on a stamp of +-2 major-axis FWHM."""
    bmaj = spec.beam_major_arcsec / TILE_CELL_ARCSEC
    bmin = spec.beam_minor_arcsec / TILE_CELL_ARCSEC
    pa = math.radians(spec.beam_pa_deg)
    half = math.ceil(1.5 * bmaj) + 1
    offs = np.arange(-half, half + 1)
    cx, cy = np.floor(x + 0.5).astype(np.intp), np.floor(y + 0.5).astype(np.intp)
    xx = cx[:, None, None] + offs[None, None, :]
    yy = cy[:, None, None] + offs[None, :, None]
    dx, dy = xx - x[:, None, None], yy - y[:, None, None]
    # Major axis direction in pixel coordinates: north is +y, east is -x.
    u = -dx * math.sin(pa) + dy * math.cos(pa)
    v = dx * math.cos(pa) + dy * math.sin(pa)
    values = flux[:, None, None] * np.exp(-FOUR_LN2 * (u**2 / bmaj**2 + v**2 / bmin**2))
    inside = (xx >= 0) & (xx < TILE_NPIX) & (yy >= 0) & (yy < TILE_NPIX)
    xx_b, yy_b = np.broadcast_arrays(xx, yy)
    np.add.at(image, (yy_b[inside], xx_b[inside]), values[inside])


def set_tile_header(header: fits.Header, spec: TileSpec) -> None:
    """Fill the per-tile keywords of a header made by :func:`header_template`."""
    header["CRVAL1"] = spec.centre_ra_deg
    header["CRVAL2"] = spec.centre_dec_deg
    header["BMAJ"] = spec.beam_major_arcsec / 3600.0
    header["BMIN"] = spec.beam_minor_arcsec / 3600.0
    header["BPA"] = spec.beam_pa_deg
    header["DATE-OBS"] = spec.date_obs
    header["MJD-OBS"] = spec.mid_mjd - GROUP_MINUTES / 2.0 / 1440.0
    header["OBJECT"] = spec.group_id


def robust_noise(data: NDArray[Any]) -> float:
    """1.4826 x MAD of the central pixels (see ``NOISE_BOX_HALF``)."""
    c = TILE_CRPIX - 1
    box = np.asarray(
        data[c - NOISE_BOX_HALF : c + NOISE_BOX_HALF, c - NOISE_BOX_HALF : c + NOISE_BOX_HALF], float
    )
    return float(MAD_TO_SIGMA * np.median(np.abs(box - np.median(box))))


def make_tiles(specs: list[TileSpec], write: bool) -> list[TileResult]:
    """Render, optionally write, and measure a batch of tiles (the unit of a pool task)."""
    if not specs:
        return []
    pb_map = airy_primary_beam(tile_pixel_separation_deg())
    wcs = tile_wcs(0.0, specs[0].centre_dec_deg)
    # One HDU reused for the batch: building and verifying a header costs ~3x more than
    # writing the file, and every tile's header differs only in the keywords set below.
    # The template was verified once when the HDU was made.
    hdu = fits.PrimaryHDU(
        np.zeros((TILE_NPIX, TILE_NPIX), np.float32), header_template(specs[0].centre_dec_deg)
    )
    results = []
    for spec in specs:
        wcs.wcs.crval = [spec.centre_ra_deg, spec.centre_dec_deg]
        data = render_tile(spec, wcs, pb_map)
        if write and spec.path is not None:
            hdu.data = data
            set_tile_header(hdu.header, spec)
            hdu.writeto(spec.path, overwrite=True, output_verify="ignore")
        m = spec.measure
        phot = measure_forced_peak(
            data,
            wcs,
            spec.src_ra_deg[m],
            spec.src_dec_deg[m],
            box_size_pix=PHOT_BOX_PIX,
            annulus_pix=PHOT_ANNULUS_PIX,
        )
        results.append(
            TileResult(
                index=spec.index,
                noise_jy=robust_noise(data),
                peak_jy=float(np.max(data)),
                phot_peak_jy=phot.peak_jy,
                phot_rms_jy=phot.local_rms_jy,
                phot_snr=phot.snr,
                phot_ok=phot.success,
            )
        )
    return results


def ensure_dir(path: str | os.PathLike[str]) -> None:
    Path(path).mkdir(parents=True, exist_ok=True)
