"""Every pipeline kind refuses bad parameters with a coded error before anything is queued."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

import dsa110.ops.stages  # noqa: F401  (registers the pipeline kinds)
from dsa110.db.tables import jobs
from dsa110.errors import InputError
from dsa110.ops.queue import kinds, store
from dsa110.ops.stages import params as p

PIPELINE = ("convert", "calibrate", "apply", "image", "photometry", "mosaic", "workflow")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    ms = tmp_path / "a.ms"
    ms.mkdir()
    (ms / "table.dat").write_bytes(b"")
    sb = tmp_path / "2025-11-13T12:00:00_sb00.hdf5"
    sb.write_bytes(b"")
    other = tmp_path / "2025-11-13T12:05:00_sb01.hdf5"
    other.write_bytes(b"")
    fits = tmp_path / "x.fits"
    fits.write_bytes(b"")
    return {"ms": str(ms), "sb": str(sb), "other": str(other), "fits": str(fits), "dir": str(tmp_path)}


def bad_cases(f: dict[str, str]) -> list[tuple[str, dict[str, Any], str]]:
    """(kind, parameters, the field the error names)."""
    return [
        ("convert", {}, "uvh5_paths"),
        ("convert", {"uvh5_paths": ["relative.hdf5"]}, "uvh5_paths"),
        ("convert", {"uvh5_paths": [f["sb"], "/no/such_sb01.hdf5"]}, "uvh5_paths"),
        ("convert", {"uvh5_paths": [f["sb"], f["other"]]}, "uvh5_paths"),
        ("convert", {"uvh5_paths": [f["sb"], f["sb"]]}, "uvh5_paths"),
        ("convert", {"group_id": "yesterday"}, "group_id"),
        (
            "convert",
            {"input_dir": f["dir"], "start_time": "2020-01-01T00:00:00", "end_time": "2020-01-02T00:00:00"},
            "input_dir",
        ),
        ("convert", {"group_id": "2025-11-13T12:00:00", "colour": "red"}, "colour"),
        ("calibrate", {}, "ms_path"),
        ("calibrate", {"ms_path": f["fits"]}, "ms_path"),
        ("calibrate", {"ms_path": f["ms"], "refant": "3; rm -rf /"}, "refant"),
        ("calibrate", {"ms_path": f["ms"], "solint": "forever"}, "solint"),
        ("calibrate", {"ms_path": f["ms"], "cal_ra_deg": 10.0}, "cal_ra_deg"),
        (
            "calibrate",
            {"ms_path": f["ms"], "cal_ra_deg": 10.0, "cal_dec_deg": 95.0, "cal_flux_jy": 1.0},
            "cal_dec_deg",
        ),
        ("apply", {"ms_path": "/nowhere.ms"}, "ms_path"),
        ("apply", {"ms_path": f["ms"], "set_name": "a b"}, "set_name"),
        ("apply", {"ms_path": f["ms"], "set_name": "s", "caltable_paths": [f["ms"]]}, "caltable_paths"),
        ("image", {"ms_path": f["ms"], "imsize": 63}, "imsize"),
        ("image", {"ms_path": f["ms"], "imsize": 100_000}, "imsize"),
        ("image", {"ms_path": f["ms"], "cell_arcsec": 0.0}, "cell_arcsec"),
        ("image", {"ms_path": f["ms"], "robust": float("nan")}, "params"),
        ("image", {"ms_path": f["ms"], "weighting": "heavy"}, "weighting"),
        ("image", {"ms_path": f["ms"], "niter": -1}, "niter"),
        ("image", {"ms_path": f["ms"], "photometry": "yes"}, "photometry"),
        ("photometry", {}, "image_id"),
        ("photometry", {"image_id": 1, "image_path": f["fits"]}, "image_id"),
        ("photometry", {"image_id": 1, "box_pix": 4}, "box_pix"),
        ("photometry", {"image_id": True}, "image_id"),
        ("mosaic", {}, "start_mjd"),
        ("mosaic", {"start_mjd": 60000.0, "end_mjd": 59999.0}, "end_mjd"),
        ("mosaic", {"start_time": "soon", "end_time": "2025-11-13T13:00:00"}, "start_time"),
        ("mosaic", {"start_mjd": 60000.0, "end_mjd": 60001.0, "max_images": 0}, "max_images"),
        ("workflow", {}, "uvh5_paths"),
        ("workflow", {"group_id": "2025-11-13T12:00:00", "image_params": {"imsize": 7}}, "imsize"),
        ("workflow", {"group_id": "2025-11-13T12:00:00", "calibrate_params": {"solint": "x"}}, "solint"),
        ("workflow", {"group_id": "2025-11-13T12:00:00", "calibrate_params": []}, "calibrate_params"),
        (
            "workflow",
            {"group_id": "2025-11-13T12:00:00", "set_name": "s", "calibrator_ms_path": f["ms"]},
            "set_name",
        ),
        ("workflow", {"group_id": "2025-11-13T12:00:00", "calibrator_group_id": "x"}, "group_id"),
    ]


async def test_bad_parameters_of_every_kind_are_refused_with_a_code_and_nothing_is_queued(
    engine: AsyncEngine, files: dict[str, str]
) -> None:
    cases = bad_cases(files)
    assert {kind for kind, _, _ in cases} == set(PIPELINE) <= set(kinds.names())
    for kind, params, field in cases:
        with pytest.raises(InputError) as caught:
            await store.submit(engine, kind, params)
        assert caught.value.code == kinds.BAD_PARAMS, (kind, params)
        assert caught.value.details.get("field") == field, (kind, params, caught.value)
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(jobs))).scalar() == 0


def test_good_parameters_are_normalised(files: dict[str, str]) -> None:
    convert = p.validate_convert({"uvh5_paths": [files["sb"]]})
    assert convert["group_id"] == "2025-11-13T12:00:00" and convert["overwrite"] is True
    found = p.validate_convert(
        {"input_dir": files["dir"], "start_time": "2025-11-13T12:00:00", "end_time": "2025-11-13T12:05:00"}
    )
    assert found["uvh5_paths"] == [files["sb"]]
    image = p.validate_image({"ms_path": files["ms"]})
    assert image["imsize"] == 128 and image["datacolumn"] == "auto" and image["photometry"] is True
    mosaic = p.validate_mosaic({"start_time": "2025-11-13T12:00:00", "end_time": "2025-11-13T13:00:00"})
    assert mosaic["end_mjd"] - mosaic["start_mjd"] == pytest.approx(1 / 24)
    flow = p.validate_workflow({"group_id": "2025-11-13T12:00:00", "image_params": {"imsize": 64}})
    assert flow["image"]["imsize"] == 64 and "ms_path" not in flow["image"] and flow["set_name"] is None


def test_the_server_with_the_pipeline_kinds_never_imports_casa_or_pyuvdata() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from server.app import create_app; from dsa110.ops.queue import kinds;"
        "kinds.load_plugins(); create_app(migrate=False);"
        "heavy = sorted(m for m in ('casatools', 'casatasks', 'pyuvdata', 'reproject') if m in sys.modules);"
        "assert 'convert' in kinds.names() and not heavy, heavy; print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
