"""``ese_candidates`` -> our ``ese_candidates``, kept beside ours as ``detector_version='legacy'``.

Legacy-pipeline-facts section 3.1: the pipeline flags a source when its
``sigma_deviation`` reaches ``min_sigma`` and records only the source, when, the
significance and a status (``active``, ``investigated``, ``dismissed``). Our candidate
also names a dip window, depth and fluxes; for a legacy candidate they describe the
source's whole imported light curve, from its recomputed metrics:

- ``start_mjd``/``end_mjd``: the source's first and last measurement (the flag time when
  it has none);
- ``baseline_flux_jy``: its NVSS flux (the legacy API's ``baseline_flux_jy``), else its
  mean flux; ``min_flux_jy``: its lowest measured flux;
- ``depth`` = min(1, max(0, 1 - min / baseline)) (:func:`legacy_depth`); ``score`` = the
  legacy significance.

Our detector leaves legacy candidates alone (it reconciles only its own), and an
operator's status change on either kind goes through the same lifecycle; the status is
imported with the candidate and not overwritten afterwards (the pipeline has no way to
change it; a person here may have). Each new or
changed candidate publishes ``ese.candidate``. The legacy id is kept as ours when free.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import select

from dsa110.db.enums import ESE_CANDIDATE_STATUSES as STATUSES
from dsa110.db.tables import ese_candidates, sources
from dsa110.events import ESE_CANDIDATE
from dsa110.legacy.context import Batch, ImportContext
from dsa110.legacy.keyed import save_keyed
from dsa110.legacy.table import Row, TableSpec
from dsa110.legacy.values import as_float, epoch_time, mjd_of, text

LEGACY_DETECTOR: Final = "legacy"
NAME: Final = "products.ese_candidates"


def legacy_depth(low: float, baseline: float) -> float:
    """1 - low / baseline, within 0-1 as the schema documents ``depth``: a faint source's
    lowest measured flux can be below zero (noise), which is a 100 % dip, not more; its
    ``min_flux_jy`` stays the measured value. 0 without a positive baseline."""
    return min(1.0, max(0.0, 1.0 - low / baseline)) if baseline > 0 else 0.0


async def write_candidates(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    names = {n for r in rows if (n := text(r.get("source_id")))}
    pks = await ctx.lookup(b, "source", sources, "source_id", names)
    facts: dict[int, Any] = {}
    if pks:
        result = await b.conn.execute(
            select(
                sources.c.id,
                sources.c.first_mjd,
                sources.c.last_mjd,
                sources.c.min_flux_jy,
                sources.c.mean_flux_jy,
                sources.c.catalog_flux_jy,
            ).where(sources.c.id.in_(sorted(set(pks.values()))))
        )
        facts = {int(r.id): r for r in result.all()}
    items: list[tuple[str, dict[str, Any]]] = []
    for row in rows:
        source_pk = pks.get(text(row.get("source_id")) or "")
        flagged = epoch_time(row.get("flagged_at"), ctx.odd, NAME, "flagged_at")
        significance = as_float(row.get("significance"))
        if source_pk is None or flagged is None or significance is None or row.get("id") is None:
            ctx.report.skip(NAME, "unknown source, or no flagged_at or significance")
            continue
        status = text(row.get("status")) or "active"
        if status not in STATUSES:
            ctx.report.skip(NAME, f"unknown status {status!r}")
            continue
        changes = [
            t
            for c in ("investigated_at", "dismissed_at")
            if (t := epoch_time(row.get(c), ctx.odd, NAME, c)) is not None
        ]
        f = facts[source_pk]
        baseline = f.catalog_flux_jy or f.mean_flux_jy or 0.0
        low = f.min_flux_jy if f.min_flux_jy is not None else baseline
        by = text(row.get("flagged_by"), 64)
        items.append(
            (
                str(int(row["id"])),
                {
                    "source_pk": source_pk,
                    "status": status,
                    "score": significance,
                    "significance": significance,
                    "start_mjd": f.first_mjd if f.first_mjd is not None else mjd_of(flagged),
                    "end_mjd": f.last_mjd if f.last_mjd is not None else mjd_of(flagged),
                    "depth": legacy_depth(low, baseline),
                    "baseline_flux_jy": baseline,
                    "min_flux_jy": low,
                    "detector_version": LEGACY_DETECTOR,
                    "flagged_at": flagged,
                    "updated_at": max([flagged, *changes]),
                    "changed_by": None if by in (None, "auto") else by,
                    "notes": text(row.get("notes")),
                },
            )
        )
    # A status set here (by a person, through our lifecycle) is not overwritten by a re-read.
    saved = await save_keyed(
        ctx, b, ese_candidates, "ese", items, keep_ids=True, keep=("status", "changed_by")
    )
    for key, values in items:
        pk = saved.pks[key]
        if pk in saved.new or pk in saved.changed:
            b.emit(
                ESE_CANDIDATE.signal(
                    {
                        "event": "new" if pk in saved.new else "updated",
                        "candidate_pk": pk,
                        "source_pk": values["source_pk"],
                        "status": values["status"],
                        "significance": values["significance"],
                        "detector_version": LEGACY_DETECTOR,
                    }
                )
            )
    return len(saved.new) + len(saved.changed)


SPECS: Final = (
    TableSpec(
        "products",
        "ese_candidates",
        write_candidates,
        required=("id", "source_id", "flagged_at", "significance"),
        mutable=True,
        changed=("flagged_at", "investigated_at", "dismissed_at"),
    ),
)
