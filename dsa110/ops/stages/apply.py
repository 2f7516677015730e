"""``apply``: apply a calibration set to an MS (CASA ``applycal`` into CORRECTED_DATA).

The set is the one named (``set_name``), the tables given (``caltable_paths``), or the
active set valid at the MS's mid time (the legacy "active apply-list",
legacy-pipeline-facts §4.1). Tables are applied in their order (bandpass, then gains),
interpolated ``nearest`` in time, weights untouched (``calwt=False``). Then the MS is
``calibrated`` and a ``calib_ms`` product records it, derived from the MS and calibrated
with the tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsa110.ops.stages import records
from dsa110.ops.stages.casaenv import prepare
from dsa110.ops.stages.common import StageContext, StageError


def run(ctx: StageContext, params: dict[str, Any]) -> dict[str, Any]:
    ms_path = str(params["ms_path"])
    tables: list[str] = list(params.get("caltable_paths") or [])
    set_name = params.get("set_name") or ""
    if not tables:
        ms = ctx.db(lambda e: records.ms_row(e, ms_path))
        mid = None if ms is None else ms.get("mid_mjd")
        found = ctx.db(lambda e: records.cal_set_paths(e, params.get("set_name"), mid))
        if found:
            set_name, tables = found
    if not tables:
        raise StageError(f"no calibration set {'named ' + set_name if set_name else 'covers this MS'}")
    missing = [t for t in tables if not Path(t).is_dir()]
    if missing:
        raise StageError(f"calibration table not on disk: {missing[0]}")
    prepare(ctx.data_dir, ctx.work_dir("apply"))
    import casatasks

    ctx.progress(0.2, f"applycal {set_name or ''} ({len(tables)} tables)")
    casatasks.applycal(
        vis=ms_path,
        gaintable=tables,
        interp=["nearest"] * len(tables),
        calwt=[False] * len(tables),
        flagbackup=False,
    )
    ctx.db(lambda e: records.record_calibrated(e, job_id=ctx.job_id, ms_path=ms_path, caltables=tables))
    ctx.progress(1.0, "applied")
    return {"ms_path": ms_path, "set_name": set_name, "caltables": tables}
