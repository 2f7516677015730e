"""``calibrate``: bandpass and gain solutions on a calibrator MS, registered as a calibration set.

As the legacy ``CalibrationSolveStage`` (legacy-pipeline-facts §4.2; K, the delay, is off
by default there and not solved here):

1. **Model.** The calibrator as a point source of its catalog flux at its catalog
   position, a CASA component list predicted into MODEL_DATA (``ft``). The calibrator is
   given (``cal_ra_deg``, ``cal_dec_deg``, ``cal_flux_jy``) or is the brightest entry of
   the MS's group's ``calibrators`` (``weighted_flux`` is flux x primary beam, so the flux
   is read from the catalog entry's ``flux_jy`` when present).
2. **Bandpass** (``bandpass``, solint inf, scans combined): per antenna, channel and
   polarisation, ``V_ij = B_i conj(B_j) M_ij``.
3. **Gains** (``gaincal``, calmode ``ap``, the bandpass applied on the fly).

The tables are written next to the MS as ``<ms base>_bpcal`` and ``<ms base>_gpcal``
(legacy-pipeline-facts §4.5), under ``.partial`` names until both are solved. The set
``cal_<ms base>`` is registered active from the MS's mid time - 12 h (the daily bandpass
is valid 24 h around transit, §8), its products linked to the MS.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dsa110.ops.stages import records
from dsa110.ops.stages.casaenv import prepare
from dsa110.ops.stages.common import PARTIAL, StageContext, StageError, remove

VALID_HALF_DAYS = 0.5
TABLES = (("BP", 30, "bpcal"), ("GP", 50, "gpcal"))


def _calibrator(ctx: StageContext, params: dict[str, Any], ms: dict[str, Any] | None) -> dict[str, Any]:
    given = params.get("calibrator")
    if given:
        return {
            "ra": given["cal_ra_deg"],
            "dec": given["cal_dec_deg"],
            "flux": given["cal_flux_jy"],
            "name": "given",
        }
    if ms is not None and ms.get("group_pk") is not None:
        found = ctx.db(lambda e: records.group_calibrators(e, int(ms["group_pk"]))) or []
        usable = [c for c in found if c.get("flux_jy") or c.get("weighted_flux")]
        if usable:
            best = max(usable, key=lambda c: float(c.get("flux_jy") or c.get("weighted_flux") or 0))
            return {
                "ra": float(best["ra_deg"]),
                "dec": float(best["dec_deg"]),
                "flux": float(best.get("flux_jy") or best["weighted_flux"]),
                "name": str(best.get("name", "calibrator")),
            }
    raise StageError("no calibrator: give cal_ra_deg, cal_dec_deg and cal_flux_jy (the MS's group has none)")


def _refant(requested: str, n_antennas: int) -> str:
    return str(n_antennas // 2) if requested == "auto" else requested


def solve(ctx: StageContext, params: dict[str, Any], cal: dict[str, Any]) -> list[dict[str, Any]]:
    ms_path = Path(params["ms_path"])
    prepare(ctx.data_dir, ctx.work_dir("calibrate"))
    import casatasks
    import casatools

    table = casatools.table()
    table.open(str(ms_path / "ANTENNA"))
    n_ant = table.nrows()
    table.close()
    refant = _refant(params["refant"], n_ant)
    base = ms_path.with_suffix("")
    complist = Path(ctx.work_dir("calibrate")) / "calibrator.cl"
    remove(complist)
    cl = casatools.componentlist()
    cl.addcomponent(
        dir=f"J2000 {math.radians(cal['ra'])}rad {math.radians(cal['dec'])}rad",
        flux=float(cal["flux"]),
        fluxunit="Jy",
        freq="1.4GHz",
        shape="point",
        spectrumtype="constant",
    )
    cl.rename(str(complist))
    cl.close()
    ctx.progress(0.1, f"model: {cal['name']} {cal['flux']:.3g} Jy")
    casatasks.ft(vis=str(ms_path), complist=str(complist), usescratch=True)
    out = {suffix: Path(f"{base}_{suffix}") for _, _, suffix in TABLES}
    partial = {k: v.with_name(v.name + PARTIAL) for k, v in out.items()}
    for p in partial.values():
        remove(p)
    ctx.progress(0.3, f"bandpass (refant {refant})")
    casatasks.bandpass(
        vis=str(ms_path),
        caltable=str(partial["bpcal"]),
        solint="inf",
        combine="scan",
        refant=refant,
        minsnr=params["minsnr"],
        solnorm=False,
    )
    if not partial["bpcal"].is_dir():
        raise StageError("bandpass wrote no table (see the log above)")
    ctx.progress(0.6, "gains")
    casatasks.gaincal(
        vis=str(ms_path),
        caltable=str(partial["gpcal"]),
        solint=params["solint"],
        refant=refant,
        calmode="ap",
        gaintable=[str(partial["bpcal"])],
        minsnr=params["minsnr"],
    )
    if not partial["gpcal"].is_dir():
        raise StageError("gaincal wrote no table (see the log above)")
    flagged = {}
    for key, p in partial.items():
        table.open(str(p))
        flags = table.getcol("FLAG")
        table.close()
        flagged[key] = float(flags.mean()) if flags.size else 1.0
    for key, final in out.items():
        remove(final)
        partial[key].rename(final)
    return [
        {
            "table_type": kind,
            "order_index": order,
            "path": str(out[suffix]),
            "refant": refant,
            "flagged": flagged[suffix],
        }
        for kind, order, suffix in TABLES
    ]


def run(ctx: StageContext, params: dict[str, Any]) -> dict[str, Any]:
    ms_path = str(params["ms_path"])
    ms = ctx.db(lambda e: records.ms_row(e, ms_path))
    cal = _calibrator(ctx, params, ms)
    tables = solve(ctx, params, cal)
    set_name = params.get("set_name") or f"cal_{Path(ms_path).stem}"
    mid = None if ms is None else ms.get("mid_mjd")
    rows = [
        {
            "path": t["path"],
            "table_type": t["table_type"],
            "order_index": t["order_index"],
            "cal_field": cal["name"],
            "refant": t["refant"],
            "valid_start_mjd": None if mid is None else float(mid) - VALID_HALF_DAYS,
            "valid_end_mjd": None,
            "status": "active",
            "notes": f"flagged fraction {t['flagged']:.3f}",
        }
        for t in tables
    ]
    ctx.db(
        lambda e: records.record_cal_set(
            e, job_id=ctx.job_id, set_name=set_name, ms_path=ms_path, tables=rows
        )
    )
    ctx.progress(1.0, f"calibration set {set_name}")
    return {"set_name": set_name, "tables": tables, "calibrator": cal, "ms_path": ms_path}
