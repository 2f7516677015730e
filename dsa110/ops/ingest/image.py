"""One image's measurements written inside the caller's transaction (insert plus running sums)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dsa110.db.tables import images, measurements, sources
from dsa110.ops.ingest.common import (
    IngestError,
    MeasurementIn,
    NotFoundError,
    _chunks,
)
from dsa110.ops.ingest.running import (
    _prior_min_errors,
    _write_sources,
)
from dsa110.science.variability import (
    PAIR_WINDOW_DAYS,
    add_measurement,
    needs_prior_min_err,
    state_of_row,
)


async def _ingest_one_image(
    conn: AsyncConnection, image_pk: int, parsed: Sequence[MeasurementIn]
) -> list[int]:
    """Write one image's validated measurements inside the caller's transaction.

    Returns the touched source pks (sorted). Raises before anything of this image is
    written when the image or a source is unknown; the caller's transaction rolls back.
    """
    image = (
        (await conn.execute(select(images.c.id, images.c.mid_mjd).where(images.c.id == image_pk)))
        .mappings()
        .first()
    )
    if image is None:
        raise NotFoundError(f"image {image_pk} does not exist")
    if not parsed:
        return []
    pks = sorted(r.source_pk for r in parsed)
    found: dict[int, Mapping[str, Any]] = {}
    for chunk in _chunks(pks):
        result = await conn.execute(
            select(sources).where(sources.c.id.in_(chunk)).order_by(sources.c.id).with_for_update()
        )
        found.update({row["id"]: row for row in result.mappings()})
    missing = [pk for pk in pks if pk not in found]
    if missing:
        raise IngestError(f"unknown source_pk {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    mid_mjd = float(image["mid_mjd"])
    when = {r.source_pk: (r.mjd if r.mjd is not None else mid_mjd) for r in parsed}
    # Pair partners (+-PAIR_WINDOW_DAYS) stored before this image: one range scan per chunk.
    lo, hi = min(when.values()) - PAIR_WINDOW_DAYS, max(when.values()) + PAIR_WINDOW_DAYS
    partners: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
    for chunk in _chunks(pks):
        result = await conn.execute(
            select(
                measurements.c.source_pk,
                measurements.c.mjd,
                measurements.c.peak_flux_jy,
                measurements.c.peak_flux_err_jy,
            ).where(measurements.c.source_pk.in_(chunk), measurements.c.mjd.between(lo, hi))
        )
        for spk, mjd, flux, err in result.all():
            partners[spk].append((mjd, flux, err))
    states = {pk: state_of_row(found[pk]) for pk in pks}
    prior = await _prior_min_errors(
        conn,
        [
            (r.source_pk, when[r.source_pk])
            for r in parsed
            if needs_prior_min_err(states[r.source_pk], r.peak_flux_jy, r.peak_flux_err_jy, when[r.source_pk])
        ],
    )
    try:
        await conn.execute(
            insert(measurements),
            [
                {
                    "source_pk": r.source_pk,
                    "image_pk": image_pk,
                    "mjd": when[r.source_pk],
                    "ra_deg": r.ra_deg if r.ra_deg is not None else found[r.source_pk]["ra_deg"],
                    "dec_deg": r.dec_deg if r.dec_deg is not None else found[r.source_pk]["dec_deg"],
                    "peak_flux_jy": r.peak_flux_jy,
                    "peak_flux_err_jy": r.peak_flux_err_jy,
                    "int_flux_jy": r.int_flux_jy,
                    "int_flux_err_jy": r.int_flux_err_jy,
                    "local_rms_jy": r.local_rms_jy,
                    "snr": r.snr,
                    "forced": r.forced,
                }
                for r in parsed
            ],
        )
    except IntegrityError:
        # The (source_pk, image_pk) unique constraint: checked by the database, not a query.
        raise IngestError(f"some of these sources already have a measurement on image {image_pk}") from None
    for r in parsed:
        t = when[r.source_pk]
        nb = [(f, e) for (m, f, e) in partners.get(r.source_pk, ()) if abs(m - t) <= PAIR_WINDOW_DAYS]
        states[r.source_pk] = add_measurement(
            states[r.source_pk], r.peak_flux_jy, r.peak_flux_err_jy, t, nb, prior.get(r.source_pk)
        )
    await _write_sources(conn, states)
    await conn.execute(
        update(images)
        .where(images.c.id == image_pk)
        .values(n_measurements=func.coalesce(images.c.n_measurements, 0) + len(parsed))
    )
    return pks
