"""Primary-beam weighted co-addition of images onto one grid (reproject), no database.

Linear mosaicking (Sault, Staveley-Smith & Brouw 1996, A&AS 120, 375, eq. 1 with
Gaussian noise): with I_k the primary-beam corrected image k, P_k its primary-beam power
pattern and sigma_k its (uncorrected) noise, on the common grid::

    I(x) = sum_k w_k(x) I_k(x) / sum_k w_k(x),   w_k(x) = P_k(x)^2 / sigma_k^2

so each image counts by its sensitivity at that point (its noise there is sigma_k / P_k).
The noise of the mosaic at x is ``1 / sqrt(sum_k w_k(x))``. Pixels where no image has
P_k >= ``PB_LIMIT`` are blank (NaN). Each image and its P_k are resampled onto the output
grid by bilinear interpolation (``reproject.reproject_interp``) over the output pixels
its footprint touches only. P_k is the Airy pattern of a 4.7 m dish
(``dsa110.science.site.airy_primary_beam``) about the image's reference position at its
frequency (FITS ``CRVAL3``, else 1.4 GHz).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from numpy.typing import NDArray

from dsa110.science.healpix import angular_separation_deg
from dsa110.science.site import FREQ_HZ, airy_primary_beam

PB_LIMIT = 0.1


@dataclass(frozen=True)
class Tile:
    data: NDArray[np.float64]  # primary-beam corrected, [y, x]
    wcs: WCS  # 2-D celestial
    noise_jy: float
    freq_hz: float = FREQ_HZ


@dataclass(frozen=True)
class Mosaic:
    data: NDArray[np.float32]
    weight: NDArray[np.float64]
    wcs: WCS
    n_images: int

    @property
    def noise_jy(self) -> float:
        """The best (deepest) point's noise, 1 / sqrt(max sum w)."""
        top = float(np.max(self.weight)) if self.weight.size else 0.0
        return 1.0 / math.sqrt(top) if top > 0 else math.nan


def read_tile(path: str, noise_jy: float | None = None) -> Tile:
    with fits.open(path, memmap=False) as hdus:
        header = hdus[0].header
        data = np.asarray(hdus[0].data, dtype=np.float64)
    while data.ndim > 2:
        data = data[0]
    wcs = WCS(header).celestial
    freq = (
        float(header.get("CRVAL3", FREQ_HZ)) if str(header.get("CTYPE3", "")).startswith("FREQ") else FREQ_HZ
    )
    if noise_jy is None or not noise_jy > 0:
        finite = data[np.isfinite(data)]
        med = float(np.median(finite)) if finite.size else 0.0
        noise_jy = float(1.4826 * np.median(np.abs(finite - med))) if finite.size else 1.0
    return Tile(data, wcs, float(noise_jy) or 1.0, freq)


def primary_beam(tile: Tile) -> NDArray[np.float64]:
    ny, nx = tile.data.shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    ra, dec = tile.wcs.wcs_pix2world(xx, yy, 0)
    ra0, dec0 = (float(v) for v in tile.wcs.wcs.crval[:2])
    return airy_primary_beam(angular_separation_deg(ra0, dec0, ra, dec), tile.freq_hz)


def output_grid(tiles: Sequence[Tile], cell_arcsec: float | None = None) -> tuple[WCS, tuple[int, int]]:
    """A SIN grid covering every tile (reproject's optimal celestial WCS), at the finest cell."""
    from reproject.mosaicking import find_optimal_celestial_wcs

    cells = [float(np.max(np.abs(t.wcs.proj_plane_pixel_scales()[0].to_value("deg")))) for t in tiles]
    resolution = (cell_arcsec / 3600.0) if cell_arcsec else min(cells)
    import astropy.units as u

    wcs, shape = find_optimal_celestial_wcs(
        [(t.data.shape, t.wcs) for t in tiles], resolution=resolution * u.deg, projection="SIN"
    )
    return wcs, (int(shape[0]), int(shape[1]))


def _footprint_box(
    tile: Tile, wcs: WCS, shape: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The output pixels (y range, x range) the tile's edge encloses: only those are resampled."""
    ny, nx = tile.data.shape
    edge = np.concatenate(
        [
            np.stack([np.arange(nx), np.zeros(nx)], 1),
            np.stack([np.arange(nx), np.full(nx, ny - 1)], 1),
            np.stack([np.zeros(ny), np.arange(ny)], 1),
            np.stack([np.full(ny, nx - 1), np.arange(ny)], 1),
        ]
    )
    ra, dec = tile.wcs.wcs_pix2world(edge[:, 0], edge[:, 1], 0)
    x, y = wcs.wcs_world2pix(ra, dec, 0)
    good = np.isfinite(x) & np.isfinite(y)
    if not good.any():
        return None
    x0, x1 = max(0, int(np.floor(x[good].min())) - 1), min(shape[1], int(np.ceil(x[good].max())) + 2)
    y0, y1 = max(0, int(np.floor(y[good].min())) - 1), min(shape[0], int(np.ceil(y[good].max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return None
    return (y0, y1), (x0, x1)


def coadd(tiles: Sequence[Tile], cell_arcsec: float | None = None) -> Mosaic:
    from reproject import reproject_interp

    if not tiles:
        raise ValueError("no images to co-add")
    wcs, shape = output_grid(tiles, cell_arcsec)
    numerator = np.zeros(shape)
    weight = np.zeros(shape)
    for tile in tiles:
        pb = primary_beam(tile)
        usable = (pb >= PB_LIMIT) & np.isfinite(tile.data)
        data = np.where(usable, tile.data, 0.0)
        w_in = np.where(usable, pb * pb / tile.noise_jy**2, 0.0)
        box = _footprint_box(tile, wcs, shape)
        if box is None:
            continue
        (y0, y1), (x0, x1) = box
        stacked = np.stack([data * w_in, w_in])
        sub = wcs[y0:y1, x0:x1]
        resampled, footprint = reproject_interp((stacked, tile.wcs), sub, shape_out=(2, y1 - y0, x1 - x0))
        ok = (footprint[0] > 0) & np.isfinite(resampled[0]) & np.isfinite(resampled[1])
        numerator[y0:y1, x0:x1][ok] += resampled[0][ok]
        weight[y0:y1, x0:x1][ok] += resampled[1][ok]
    with np.errstate(invalid="ignore", divide="ignore"):
        floor = PB_LIMIT**2 / max(t.noise_jy for t in tiles) ** 2
        image = np.where(weight >= floor, numerator / weight, np.nan)
    return Mosaic(image.astype(np.float32), weight, wcs, len(tiles))


def to_fits(mosaic: Mosaic, extra: dict[str, Any] | None = None) -> fits.HDUList:
    header = mosaic.wcs.to_header()
    header["BUNIT"] = "Jy/beam"
    header["NIMAGES"] = (mosaic.n_images, "images co-added")
    header["NOISE"] = (mosaic.noise_jy, "[Jy/beam] noise at the deepest point")
    header["HISTORY"] = "primary-beam weighted linear mosaic (dsa110.ops.stages.coadd)"
    for key, value in (extra or {}).items():
        header[key] = value
    return fits.HDUList([fits.PrimaryHDU(mosaic.data, header=header)])
