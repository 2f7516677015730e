"""Normalised light curves: reference sets, per-image corrections, differential photometry."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from astropy_healpix import HEALPix
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.tables import measurements, sources
from dsa110.ops.ingest.common import (
    GROUP_ORDER,
    MAX_REFERENCES,
    MIN_REFERENCE_EPOCHS,
    MIN_REFERENCE_SNR,
    REFERENCE_RADIUS_DEG,
    NormalisedLightCurve,
    _chunks,
)
from dsa110.science import lightcurve_arrays
from dsa110.science.healpix import INDEX_ORDER, angular_separation_deg, cone_ranges
from dsa110.science.lightcurve import (
    Correction,
    normalised_points,
)


def _reference_snr_key() -> Any:
    # mean^2 * S_w / N is (mean / rms error)^2: order by single-epoch SNR without sqrt().
    return (sources.c.mean_flux_jy * sources.c.mean_flux_jy * sources.c.sum_w / sources.c.n_epochs).desc()


def _cell_centre(cell: int) -> tuple[float, float]:
    lon, lat = HEALPix(nside=2**GROUP_ORDER, order="nested").healpix_to_lonlat(np.array([cell]))
    return float(lon.deg[0]), float(lat.deg[0])


async def _reference_set(conn: AsyncConnection, ra_deg: float, dec_deg: float) -> list[int]:
    """Brightest steady-looking sources within ``REFERENCE_RADIUS_DEG`` (legacy section 3.3)."""
    ranges = cone_ranges(ra_deg, dec_deg, REFERENCE_RADIUS_DEG)
    in_cone = or_(*(and_(sources.c.healpix >= lo, sources.c.healpix < hi) for lo, hi in ranges))
    snr_sq = sources.c.mean_flux_jy * sources.c.mean_flux_jy * sources.c.sum_w / sources.c.n_epochs
    result = await conn.execute(
        select(sources.c.id, sources.c.ra_deg, sources.c.dec_deg)
        .where(
            in_cone,
            # "+ 0": tested per row, never an index to drive the search. The cone is the
            # selective condition (a few hundred rows); n_epochs and mean_flux_jy match nearly
            # every source, and a planner that starts from their index reads the whole table.
            sources.c.n_epochs + 0 >= MIN_REFERENCE_EPOCHS,
            sources.c.mean_flux_jy + 0 > 0,
            snr_sq >= MIN_REFERENCE_SNR**2,
        )
        # Ties broken by the name, so the set does not depend on the order of insertion.
        .order_by(_reference_snr_key(), sources.c.source_id)
        .limit(4 * MAX_REFERENCES)
    )
    rows = result.all()
    if not rows:
        return []
    sep = angular_separation_deg(ra_deg, dec_deg, [r[1] for r in rows], [r[2] for r in rows])
    return [int(r[0]) for r, d in zip(rows, sep.tolist(), strict=True) if d <= REFERENCE_RADIUS_DEG][
        :MAX_REFERENCES
    ]


async def _corrections_for(conn: AsyncConnection, reference_pks: Sequence[int]) -> dict[int, Correction]:
    """Per-image corrections from the references' measurements (``refine_references``, on arrays)."""
    if len(reference_pks) < 3:
        return {}
    result = await conn.execute(
        select(
            measurements.c.image_pk,
            measurements.c.source_pk,
            measurements.c.peak_flux_jy,
        ).where(measurements.c.source_pk.in_(list(reference_pks)))
    )
    rows = result.all()
    if not rows:
        return {}
    image, source, flux = zip(*rows, strict=True)
    return lightcurve_arrays.refined_corrections(
        np.asarray(image, dtype=np.int64),
        np.asarray(source, dtype=np.int64),
        np.asarray(flux, dtype=np.float64),
        np.asarray(sorted(set(reference_pks)), dtype=np.int64),
    )


async def _light_curves(
    conn: AsyncConnection, source_pks: Sequence[int]
) -> dict[int, list[tuple[int, int, float, float, float]]]:
    curves: dict[int, list[tuple[int, int, float, float, float]]] = {pk: [] for pk in source_pks}
    result = await conn.execute(
        select(
            measurements.c.source_pk,
            measurements.c.id,
            measurements.c.image_pk,
            measurements.c.mjd,
            measurements.c.peak_flux_jy,
            measurements.c.peak_flux_err_jy,
        )
        .where(measurements.c.source_pk.in_(list(source_pks)))
        .order_by(measurements.c.source_pk, measurements.c.mjd, measurements.c.id)
    )
    for spk, mpk, ipk, mjd, flux, err in result.all():
        curves[spk].append((mpk, ipk, mjd, flux, err))
    return curves


def cell_of(healpix: int) -> int:
    """The coarse sky cell (nested HEALPix at ``GROUP_ORDER``) holding a source's index."""
    return healpix >> (2 * (INDEX_ORDER - GROUP_ORDER))


async def cell_normalisation(conn: AsyncConnection, cell: int) -> tuple[list[int], dict[int, Correction]]:
    """The cell's reference set and per-image corrections (what ``dsa110.ops.norm_store`` stores).

    Around the cell's centre, not its asked-about members' mean: a source's references do
    not depend on which other sources share its request (job, chunk, on-demand call).
    """
    ra, dec = _cell_centre(cell)
    refs = await _reference_set(conn, ra, dec)
    return refs, await _corrections_for(conn, refs)


def light_curve_from_points(
    source_pk: int,
    points: Sequence[tuple[int, int, float, float, float]],
    corrections: Mapping[int, Correction],
    reference_pks: tuple[int, ...],
) -> NormalisedLightCurve:
    """One source's curve from its (measurement pk, image pk, mjd, flux, error) points in time order."""
    if points:
        arr = np.asarray([(p[1], p[3], p[4]) for p in points], dtype=np.float64)
        f, e, ok = normalised_points(arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], corrections)
    else:
        f, e, ok = np.empty(0), np.empty(0), np.empty(0, dtype=bool)
    return NormalisedLightCurve(
        source_pk=source_pk,
        measurement_pks=tuple(p[0] for p in points),
        image_pks=tuple(p[1] for p in points),
        mjd=tuple(p[2] for p in points),
        flux_jy=tuple(p[3] for p in points),
        flux_err_jy=tuple(p[4] for p in points),
        norm_flux_jy=tuple(f.tolist()),
        norm_flux_err_jy=tuple(e.tolist()),
        corrected=tuple(ok.tolist()),
        n_references=len(reference_pks),
        reference_pks=reference_pks,
    )


async def _grouped_light_curves(
    conn: AsyncConnection, source_pks: Sequence[int]
) -> list[NormalisedLightCurve]:
    """Normalised light curves of ``source_pks``; one reference set per coarse sky cell."""
    result = await conn.execute(
        select(sources.c.id, sources.c.healpix).where(sources.c.id.in_(list(source_pks)))
    )
    cells: dict[int, list[int]] = defaultdict(list)
    for pk, hp in result.all():
        cells[cell_of(int(hp))].append(pk)
    out: list[NormalisedLightCurve] = []
    for cell in sorted(cells):
        members = sorted(cells[cell])
        refs, corrections = await cell_normalisation(conn, cell)
        curves = await _light_curves(conn, members)
        out.extend(
            light_curve_from_points(pk, points, corrections, tuple(refs)) for pk, points in curves.items()
        )
    return out


async def computed_light_curves(
    engine: AsyncEngine, source_pks: Sequence[int]
) -> dict[int, NormalisedLightCurve]:
    """Raw and normalised light curves computed from the measurements now (nothing stored)."""
    out: dict[int, NormalisedLightCurve] = {}
    async with engine.connect() as conn:
        for chunk in _chunks(sorted(set(source_pks))):
            out.update({lc.source_pk: lc for lc in await _grouped_light_curves(conn, chunk)})
    return out


async def normalised_light_curves(
    engine: AsyncEngine, source_pks: Sequence[int]
) -> dict[int, NormalisedLightCurve]:
    """Raw and differentially normalised light curves, keyed by source pk (unknown pks absent).

    Read through the stored per-cell factors (``dsa110.ops.norm_store``): the same values as
    ``computed_light_curves``, recomputed only for cells whose data changed.
    """
    from dsa110.ops.norm_store import stored_light_curves  # it builds on this module

    return await stored_light_curves(engine, source_pks)
