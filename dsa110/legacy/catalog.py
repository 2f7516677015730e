"""``catalogs/master_sources.sqlite3`` -> ``catalog_sources`` as catalog ``master``.

Legacy-pipeline-facts section 1.4: NVSS cross-matched with VLASS and FIRST, fluxes in Jy
(``s_nvss``), ``source_id`` the NVSS row index. Each entry is named as NVSS names its
sources (``NVSS Jhhmmss.s+ddmmss``, truncated) and keyed by that name; the spectral index
and the resolved/confused flags, which our catalog table does not hold, are not imported.
"""

from __future__ import annotations

from typing import Any, Final

from dsa110.db.tables import catalog_sources
from dsa110.legacy import store
from dsa110.legacy.context import Batch, ImportContext
from dsa110.legacy.table import Row, TableSpec
from dsa110.legacy.values import as_float
from dsa110.science.catalogs import iau_name
from dsa110.science.healpix import healpix_index

CATALOG: Final = "master"
NAME: Final = "master.sources"


async def write_master(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        ra, dec = as_float(row.get("ra_deg")), as_float(row.get("dec_deg"))
        if ra is None or dec is None or not -90.0 <= dec <= 90.0:
            ctx.report.skip(NAME, "no valid position")
            continue
        name = iau_name("NVSS", ra % 360.0, dec)
        if name in out:
            ctx.odd.note(NAME, "two entries with one NVSS name (within 1 arcsec): the later kept")
        out[name] = {
            "catalog": CATALOG,
            "name": name,
            "ra_deg": ra % 360.0,
            "dec_deg": dec,
            "healpix": int(healpix_index(ra % 360.0, dec)),
            "flux_jy": as_float(row.get("s_nvss")),
            "flux_err_jy": None,
            "major_arcsec": None,
            "minor_arcsec": None,
            "pa_deg": None,
        }
    return len(await store.upsert(b.conn, catalog_sources, list(out.values()), ("catalog", "name")))


SPECS: Final = (
    TableSpec("master", "sources", write_master, required=("ra_deg", "dec_deg"), batch_rows=20_000),
)
