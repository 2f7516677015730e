"""The demo's mosaic files: every mosaic it lists gets a small, real FITS file.

Each mosaic co-adds its member tiles with the pipeline's primary-beam weighting
(``dsa110.ops.stages.coadd``: ``I = sum w_k I_k / sum w_k`` with ``w_k = P_k^2 / sigma_k^2``)
on a SIN grid of ``CELL_ARCSEC`` (4 arcmin) cells, coarser than the tiles' 90 arcsec and about the
restoring beam, so 60 days x 24 mosaics take seconds ("small"). The demo's
tiles all share one pixel grid about their centre, so their primary beam is one map, and
they are read straight from their known layout (one 2880-byte header block, then 128 x 128
big-endian float32: ``dsa110.demo.instrument``); resampling is bilinear
(``scipy.ndimage.map_coordinates``), the same interpolation as the mosaic stage's
``reproject_interp``, without its per-call set-up. Mosaics without any member file on
disk (a demo built without images) get none.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from scipy.ndimage import map_coordinates
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.demo.images import tile_wcs
from dsa110.demo.instrument import TILE_CELL_ARCSEC, TILE_NPIX, airy_primary_beam, tile_pixel_separation_deg
from dsa110.ops.stages.coadd import PB_LIMIT

CELL_ARCSEC = 240.0
HEADER_BYTES = 2880
MARGIN_DEG = 1.7


def _read_tile(path: str) -> np.ndarray[Any, Any] | None:
    try:
        data = np.fromfile(path, dtype=">f4", count=TILE_NPIX * TILE_NPIX, offset=HEADER_BYTES)
    except OSError:
        return None
    if data.size != TILE_NPIX * TILE_NPIX:
        return None
    return data.reshape(TILE_NPIX, TILE_NPIX).astype(np.float64)


def _grid(ra: list[float], dec: list[float]) -> tuple[WCS, tuple[int, int]]:
    rad = np.radians(ra)
    ra0 = float(np.degrees(math.atan2(np.sin(rad).mean(), np.cos(rad).mean())) % 360.0)
    dec0 = float(np.mean(dec))
    spread = max(abs(((r - ra0 + 180.0) % 360.0) - 180.0) for r in ra) * math.cos(math.radians(dec0))
    cell = CELL_ARCSEC / 3600.0
    nx = math.ceil(2 * (spread + MARGIN_DEG) / cell)
    ny = math.ceil(2 * MARGIN_DEG / cell)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    wcs.wcs.cdelt = [-cell, cell]
    wcs.wcs.crval = [ra0, dec0]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.equinox = 2000.0
    return wcs, (ny, nx)


def render(
    members: list[tuple[str, float, float, float]], pb_map: np.ndarray[Any, Any]
) -> tuple[fits.HDUList, int] | None:
    """(path, centre RA, centre Dec, noise) of each member -> the mosaic HDU list, or None."""
    tiles = [
        (data, ra, dec, noise) for path, ra, dec, noise in members if (data := _read_tile(path)) is not None
    ]
    if not tiles:
        return None
    wcs, shape = _grid([m[1] for m in tiles], [m[2] for m in tiles])
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    ra, dec = wcs.wcs_pix2world(xx, yy, 0)
    numerator = np.zeros(shape)
    weight = np.zeros(shape)
    one = tile_wcs(0.0, tiles[0][2])
    # Output columns a tile can reach: its width (and a half again for the projection) each side.
    reach = math.ceil(0.55 * TILE_NPIX * TILE_CELL_ARCSEC / CELL_ARCSEC) + 2
    w_map = np.where(pb_map >= PB_LIMIT, pb_map * pb_map, 0.0)
    for data, cra, cdec, noise in tiles:
        one.wcs.crval = [cra, cdec]
        centre_x = float(wcs.wcs_world2pix([[cra, cdec]], 0)[0][0])
        cols = slice(max(0, math.floor(centre_x) - reach), min(shape[1], math.ceil(centre_x) + reach + 1))
        px, py = one.wcs_world2pix(ra[:, cols], dec[:, cols], 0)
        inside = (px > -0.5) & (px < TILE_NPIX - 0.5) & (py > -0.5) & (py < TILE_NPIX - 0.5)
        if not inside.any():
            continue
        w_tile = w_map / max(noise, 1e-9) ** 2
        coords = np.stack([py[inside], px[inside]])
        value = map_coordinates(np.nan_to_num(data) * w_tile, coords, order=1, mode="nearest")
        w = map_coordinates(w_tile, coords, order=1, mode="nearest")
        numerator[:, cols][inside] += value
        weight[:, cols][inside] += w
    floor = PB_LIMIT**2 / max(m[3] for m in tiles) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        image = np.where(weight >= floor, numerator / weight, np.nan).astype(np.float32)
    header = wcs.to_header()
    header["BUNIT"] = "Jy/beam"
    header["NIMAGES"] = (len(tiles), "images co-added")
    top = float(weight.max())
    header["NOISE"] = (1.0 / math.sqrt(top) if top > 0 else float("nan"), "[Jy/beam] at the deepest point")
    header["ORIGIN"] = "dsa110-graph demo"
    header["HISTORY"] = "primary-beam weighted linear mosaic of the demo tiles (dsa110.demo.mosaic_files)"
    return fits.HDUList([fits.PrimaryHDU(image, header=header)]), len(tiles)


async def write_mosaic_files(engine: AsyncEngine) -> int:
    """Write the file of every listed mosaic that has member tiles on disk; returns how many."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                t.mosaics.c.path,
                t.images.c.path,
                t.images.c.center_ra_deg,
                t.images.c.center_dec_deg,
                t.images.c.noise_jy,
            )
            .join(t.mosaic_images, t.mosaic_images.c.mosaic_pk == t.mosaics.c.id)
            .join(t.images, t.images.c.id == t.mosaic_images.c.image_pk)
            .order_by(t.mosaics.c.id, t.images.c.mid_mjd)
        )
        members: dict[str, list[tuple[str, float, float, float]]] = defaultdict(list)
        for mosaic_path, path, ra, dec, noise in rows.all():
            if ra is not None and dec is not None:
                members[str(mosaic_path)].append((str(path), float(ra), float(dec), float(noise or 1e-3)))
    pb_map = airy_primary_beam(tile_pixel_separation_deg())
    written = 0
    for mosaic_path, tiles in members.items():
        made = render(tiles, pb_map)
        if made is None:
            continue
        target = Path(mosaic_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        made[0].writeto(target, overwrite=True, output_verify="ignore")
        written += 1
    return written
