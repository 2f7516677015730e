"""``convert``: the UVH5 subband files of one group -> one Measurement Set.

The legacy converter (legacy-pipeline-facts §4.1, ``hdf5_orchestrator``): read the
group's subbands with pyuvdata (concatenated along frequency, sorted ascending), phase
the drift-scan data to the meridian at the group's mid time (``dsa110.ops.stages.sky``),
and write the MS with pyuvdata's python-casacore writer (DATA, with MODEL_DATA and
CORRECTED_DATA so CASA's calibration can use them). The telescope is named ``OVRO_MMA``
in the MS, an observatory CASA's measures know at the same site, so CASA can place it
(``OVRO_DSA`` is not in CASA's observatory table). The MS is written as
``<output>/<group_id>.ms.partial`` and renamed when complete; then it is registered: a
``measurement_sets`` row, an ``ms`` product with lineage from the group's ``raw`` product,
and the group moves to ``completed`` (``in_progress`` while converting). A job run tracks a
group that is ``pending``, already ``in_progress`` (a re-queued job re-running the same work)
or ``failed`` (a retried job: the group is reprocessed, counting the retry and clearing its
error); see :func:`dsa110.ops.jobs.start_group_work`. A ``completed`` group converted again
by hand keeps its state.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dsa110.ops.stages import records
from dsa110.ops.stages.common import StageContext, StageError, staged_output
from dsa110.ops.stages.sky import offline_time, phase_centre

JD_MINUS_MJD = 2400000.5
CASA_TELESCOPE = "OVRO_MMA"


async def _start_group(engine: Any, group_id: str) -> bool:
    """Mark the group ``in_progress`` (from pending, in_progress or failed); False if it is
    elsewhere (a completed group converted again by hand keeps its state)."""
    from dsa110.ops.jobs import start_group_work

    try:
        await start_group_work(engine, group_id)
    except Exception:
        return False
    return True


async def _group_state(engine: Any, group_id: str, state: str, error: str | None = None) -> bool:
    """Move a tracked group on from in_progress to completed | failed; False if it has moved."""
    from dsa110.ops.jobs import set_group_state

    try:
        await set_group_state(engine, group_id, state, error=error)
    except Exception:
        return False
    return True


def write_ms(files: list[str], target: Path) -> dict[str, Any]:
    """Read, phase and write; returns what the MS row needs."""
    from pyuvdata import UVData

    offline_time()
    uv = UVData.from_file(sorted(files), axis="freq" if len(files) > 1 else None, file_type="uvh5")
    if uv.Nspws > 1 or not bool((uv.freq_array[1:] > uv.freq_array[:-1]).all()):
        uv.reorder_freqs(channel_order="freq")
    times = uv.time_array - JD_MINUS_MJD
    start, end = float(times.min()), float(times.max())
    half = float(uv.integration_time.max()) / 86400.0 / 2
    mid = (start + end) / 2
    keywords = uv.extra_keywords or {}
    dec = math.degrees(float(keywords["phase_center_dec"])) if "phase_center_dec" in keywords else None
    if dec is None:
        raise StageError(
            "the UVH5 files do not say the pointing declination (extra_keywords/phase_center_dec)"
        )
    ra0, dec0 = phase_centre(mid, dec)
    uv.phase(ra=math.radians(ra0), dec=math.radians(dec0), cat_name="meridian", epoch="J2000")
    uv.telescope.name = CASA_TELESCOPE
    with staged_output(target) as partial:
        uv.write_ms(str(partial), model_data=0j * uv.data_array, corrected_data=uv.data_array, clobber=True)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    return {
        "path": str(target),
        "start_mjd": start - half,
        "end_mjd": end + half,
        "mid_mjd": mid,
        "ra_deg": ra0,
        "dec_deg": dec0,
        "field_name": "meridian",
        "size_bytes": size,
        "n_antennas": int(uv.telescope.Nants),
        "n_channels": int(uv.Nfreqs),
        "n_times": int(uv.Ntimes),
    }


def run(ctx: StageContext, params: dict[str, Any]) -> dict[str, Any]:
    group_id: str | None = params.get("group_id")
    files: list[str] | None = params.get("uvh5_paths")
    if not files and group_id:
        files = ctx.db(lambda e: records.group_files(e, group_id)) or []
    if not files:
        raise StageError(f"no subband files for group {group_id}")
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise StageError(f"subband file missing: {missing[0]}")
    name = group_id or Path(files[0]).name.split("_sb")[0]
    output = ctx.output_dir(params, ctx.data_dir / "ms")
    target = output / f"{name}.ms"
    gpk = ctx.db(lambda e: records.group_pk(e, name)) if group_id else None
    tracking = gpk is not None and bool(ctx.db(lambda e: _start_group(e, name)))
    ctx.progress(0.05, f"reading {len(files)} subband files")
    try:
        ms = write_ms(files, target)
    except Exception as exc:
        if tracking:
            reason = f"conversion failed: {exc}"[:500]
            ctx.db(lambda e: _group_state(e, name, "failed", reason))
        raise
    ctx.progress(0.85, f"wrote {target} ({ms['n_antennas']} antennas, {ms['n_channels']} channels)")
    row = {
        k: ms[k]
        for k in ("path", "start_mjd", "end_mjd", "mid_mjd", "ra_deg", "dec_deg", "field_name", "size_bytes")
    }
    row.update(group_pk=gpk, status="converted", stage="converted", cal_applied=False)
    ids = ctx.db(
        lambda e: records.record_ms(
            e, job_id=ctx.job_id, ms=row, raw_id=f"raw_{name}" if group_id else None, raw_files=files
        )
    )
    if tracking:
        ctx.db(lambda e: _group_state(e, name, "completed"))
    ctx.progress(1.0, "converted")
    return {**ms, "group_id": name, "files": len(files), **(ids or {})}
