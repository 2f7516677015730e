"""``photometry``: forced photometry of the catalog sources on an image, then the science ingest.

The monitored sources (``sources``) inside the image (a HEALPix cone of the image's
half-diagonal, then the exact footprint) are measured with the vectorised legacy
``measure_forced_peak`` (``dsa110.science.photometry``: peak in a ``box_pix`` box, local
rms from the annulus, legacy-pipeline-facts §3.4), on the primary-beam corrected image.
The successful measurements go through the public ingest path
(``dsa110.ops.ingest.ingest_image_measurements``): running variability sums and, with
``detect``, ESE detection, exactly as measurements ingested by any other route. An image
measured before has its earlier measurements kept (the ingest refuses a source measured
twice on one image): only sources not yet measured on it are added.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.ops.stages.common import StageContext, StageError

SNR_FLOOR = 0.0


async def _image(engine: AsyncEngine, image_id: int | None, path: str | None) -> dict[str, Any] | None:
    from dsa110.db.tables import images

    query = select(images).where(images.c.id == image_id if image_id is not None else images.c.path == path)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    return None if row is None else dict(row)


async def _candidates(
    engine: AsyncEngine, image_pk: int, ra: float, dec: float, radius: float, limit: int
) -> list[tuple[int, float, float]]:
    from dsa110.db.tables import measurements, sources
    from dsa110.science.healpix import cone_ranges

    in_cone = or_(
        *(and_(sources.c.healpix >= lo, sources.c.healpix < hi) for lo, hi in cone_ranges(ra, dec, radius))
    )
    done = select(measurements.c.source_pk).where(measurements.c.image_pk == image_pk)
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(sources.c.id, sources.c.ra_deg, sources.c.dec_deg)
            .where(in_cone, sources.c.id.not_in(done))
            .order_by(sources.c.id)
            .limit(limit)
        )
        return [(int(r[0]), float(r[1]), float(r[2])) for r in rows.all()]


def measure(
    ctx: StageContext,
    image_pk: int,
    path: str,
    *,
    box_pix: int = 5,
    detect: bool = True,
    limit: int = 100_000,
) -> dict[str, Any]:
    """Measure the sources on image ``image_pk`` (file ``path``) and ingest them; returns a summary."""
    from dsa110.ops.ingest import MeasurementIn, ingest_image_measurements
    from dsa110.science.fitsio import open_image
    from dsa110.science.photometry import measure_forced_peak

    image = open_image(path)
    ny, nx = image.shape
    centre = image.wcs.pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
    ra0, dec0 = float(centre[0]), float(centre[1])
    scale = max(abs(float(q.to_value("deg"))) for q in image.wcs.proj_plane_pixel_scales())
    radius = math.hypot(nx, ny) / 2 * scale
    found = ctx.db(lambda e: _candidates(e, image_pk, ra0, dec0, radius, limit)) or []
    if not found:
        return {"image_pk": image_pk, "n_candidates": 0, "n_measurements": 0}
    pks = np.array([f[0] for f in found])
    ra = np.array([f[1] for f in found])
    dec = np.array([f[2] for f in found])
    annulus = (max(3.0, 2.5 * box_pix), max(6.0, 4.0 * box_pix))
    result = measure_forced_peak(image.data, image.wcs, ra, dec, box_size_pix=box_pix, annulus_pix=annulus)
    good = np.flatnonzero(result.success & np.isfinite(result.peak_jy) & (result.peak_err_jy > 0))
    rows = [
        MeasurementIn(
            source_pk=int(pks[i]),
            peak_flux_jy=float(result.peak_jy[i]),
            peak_flux_err_jy=float(result.peak_err_jy[i]),
            local_rms_jy=float(result.peak_err_jy[i]),
            snr=float(result.snr[i]) if np.isfinite(result.snr[i]) else None,
            forced=True,
        )
        for i in good.tolist()
    ]
    ctx.progress(0.9, f"photometry: {len(rows)} of {len(found)} sources measured")
    if not rows:
        return {"image_pk": image_pk, "n_candidates": len(found), "n_measurements": 0}
    ingested = ctx.db(lambda e: ingest_image_measurements(e, image_pk, rows, detect=detect))
    detection = getattr(ingested, "detection", None)
    fluxes = {int(pks[i]): float(result.peak_jy[i]) for i in good.tolist()[:1000]}
    return {
        "image_pk": image_pk,
        "n_candidates": len(found),
        "n_measurements": len(rows),
        "new_candidates": len(detection.new_candidate_pks) if detection else 0,
        "peak_flux_jy": fluxes,
    }


def at_position(path: str, ra_deg: float, dec_deg: float, box_pix: int) -> dict[str, Any]:
    """One position on one FITS file (the legacy photometry batch item): measured, not ingested."""
    from dsa110.science.fitsio import open_image
    from dsa110.science.photometry import measure_forced_peak

    image = open_image(path)
    annulus = (max(3.0, 2.5 * box_pix), max(6.0, 4.0 * box_pix))
    r = measure_forced_peak(
        image.data, image.wcs, [ra_deg], [dec_deg], box_size_pix=box_pix, annulus_pix=annulus
    )

    def value(x: Any) -> float | None:
        return float(x[0]) if np.isfinite(x[0]) else None

    return {
        "fits_path": path,
        "ra_deg": ra_deg,
        "dec_deg": dec_deg,
        "success": bool(r.success[0]),
        "peak_jy": value(r.peak_jy),
        "peak_err_jy": value(r.peak_err_jy),
        "snr": value(r.snr),
        "error": r.errors[0],
    }


def run(ctx: StageContext, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("ra_deg") is not None and params.get("image_path"):
        return at_position(params["image_path"], params["ra_deg"], params["dec_deg"], params["box_pix"])
    row = ctx.db(lambda e: _image(e, params.get("image_id"), params.get("image_path")))
    if row is None:
        raise StageError(f"no image {params.get('image_id') or params.get('image_path')} in the database")
    out = measure(
        ctx,
        int(row["id"]),
        str(row["path"]),
        box_pix=params["box_pix"],
        detect=params["detect"],
        limit=params["max_sources"],
    )
    ctx.progress(1.0, "measured")
    return out
