"""Parameter checks of the pipeline kinds, run before a job is queued (light: no CASA, no numpy).

Each ``validate_<kind>`` refuses a bad parameter with ``BAD_JOB_PARAMS`` naming the field,
checks that named inputs exist (a UVH5 file is a file, a Measurement Set a directory with
``table.dat``), and returns the normalised parameters that are stored with the job.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from dsa110.ops.queue.kinds import bad, flag, integer, number, only, text

MAX_FILES: Final = 64
MAX_PATH: Final = 4096
NAME_RE: Final = re.compile(r"^[A-Za-z0-9_.:+-]{1,64}$")
GROUP_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
UVH5_RE: Final = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})_sb(\d{2})\.hdf5$")
WEIGHTINGS: Final = ("natural", "uniform", "briggs")
COLUMNS: Final = ("auto", "data", "corrected")
SOLINT_RE: Final = re.compile(r"^(inf|int|\d{1,6}(\.\d+)?(s|min|h))$")


def path(params: Mapping[str, Any], name: str, kind: str | None, required: bool = True) -> str | None:
    """An absolute path; ``kind`` ``file`` / ``dir`` / ``table`` must exist as such."""
    if params.get(name) is None:
        if required:
            raise bad(f"`{name}` is required", name)
        return None
    value = text(params, name, "", MAX_PATH)
    if not value.startswith("/"):
        raise bad(f"`{name}` must be an absolute path", name)
    p = Path(value)
    if kind == "file" and not p.is_file():
        raise bad(f"`{name}`: no file {value[:200]!r}", name)
    if kind == "dir" and not p.is_dir():
        raise bad(f"`{name}`: no directory {value[:200]!r}", name)
    if kind == "table" and not (p / "table.dat").is_file():
        raise bad(f"`{name}`: {value[:200]!r} is not a CASA table (Measurement Set)", name)
    return value


def paths(params: Mapping[str, Any], name: str, kind: str, max_items: int = MAX_FILES) -> list[str] | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not isinstance(raw, list) or not raw or len(raw) > max_items:
        raise bad(f"`{name}` must be a list of 1 to {max_items} absolute paths", name)
    out = []
    for i, item in enumerate(raw):
        out.append(path({name: item}, name, kind))
        if out[-1] in out[:-1]:
            raise bad(f"`{name}` names {item!r} twice (item {i})", name)
    return [p for p in out if p is not None]


def name(params: Mapping[str, Any], field: str, default: str | None = None) -> str | None:
    if params.get(field) is None:
        return default
    value = text(params, field, "", 64)
    if not NAME_RE.match(value):
        raise bad(f"`{field}` must be 1-64 letters, digits or _.:+-", field)
    return value


def group_id(params: Mapping[str, Any], field: str = "group_id") -> str | None:
    if params.get(field) is None:
        return None
    value = text(params, field, "", 32)
    if not GROUP_RE.match(value):
        raise bad(f"`{field}` must be a group timestamp YYYY-MM-DDTHH:MM:SS", field)
    return value


def timestamp(params: Mapping[str, Any], field: str) -> str | None:
    if params.get(field) is None:
        return None
    value = text(params, field, "", 40)
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise bad(f"`{field}` must be an ISO time, e.g. 2025-11-13T12:00:00", field) from None
    return value


def _files_in(directory: str, start: str, end: str) -> list[str]:
    """The subband files in ``directory`` whose group timestamp is in [start, end)."""
    found = []
    for entry in sorted(Path(directory).iterdir())[:100_000]:
        match = UVH5_RE.search(entry.name)
        if match and start <= match.group(1) < end:
            found.append(str(entry))
    return found


def validate_convert(params: Mapping[str, Any]) -> dict[str, Any]:
    only(
        params,
        {
            "group_id",
            "uvh5_paths",
            "input_dir",
            "output_dir",
            "start_time",
            "end_time",
            "missing_subbands",
            "overwrite",
        },
    )
    out: dict[str, Any] = {
        "group_id": group_id(params),
        "uvh5_paths": paths(params, "uvh5_paths", "file"),
        "output_dir": path(params, "output_dir", None, required=False),
        "overwrite": flag(params, "overwrite", True),
    }
    input_dir = path(params, "input_dir", "dir", required=False)
    start, end = timestamp(params, "start_time"), timestamp(params, "end_time")
    missing = params.get("missing_subbands", [])
    if not isinstance(missing, list) or len(missing) > 32 or not all(type(i) is int for i in missing):
        raise bad("`missing_subbands` must be a list of subband numbers", "missing_subbands")
    if out["uvh5_paths"] is None and input_dir and start and end:
        found = _files_in(input_dir, start, end)
        if not found:
            raise bad(f"no *_sbNN.hdf5 files in {input_dir!r} between {start} and {end}", "input_dir")
        out["uvh5_paths"] = found[:MAX_FILES]
    if out["uvh5_paths"] is None and out["group_id"] is None:
        raise bad(
            "give `uvh5_paths`, a `group_id`, or `input_dir` with `start_time` and `end_time`", "uvh5_paths"
        )
    if out["uvh5_paths"]:
        stamps = {m.group(1) for p in out["uvh5_paths"] if (m := UVH5_RE.search(p))}
        if len(stamps) > 1:
            raise bad("`uvh5_paths` must be the subbands of one group (one timestamp)", "uvh5_paths")
        if out["group_id"] is None and stamps:
            out["group_id"] = stamps.pop()
    out["missing_subbands"] = list(missing)
    return out


def _calibrator(params: Mapping[str, Any]) -> dict[str, float] | None:
    given = [k for k in ("cal_ra_deg", "cal_dec_deg", "cal_flux_jy") if params.get(k) is not None]
    if not given:
        return None
    if len(given) != 3:
        raise bad("give all of `cal_ra_deg`, `cal_dec_deg`, `cal_flux_jy`, or none", given[0])
    return {
        "cal_ra_deg": number(params, "cal_ra_deg", 0.0, 0.0, 360.0),
        "cal_dec_deg": number(params, "cal_dec_deg", 0.0, -90.0, 90.0),
        "cal_flux_jy": number(params, "cal_flux_jy", 1.0, 1e-3, 1e5),
    }


def _refant(params: Mapping[str, Any]) -> str:
    value = params.get("refant", "auto")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10_000:
        return str(value)
    if isinstance(value, str) and (value == "auto" or re.fullmatch(r"[A-Za-z0-9_-]{1,16}", value)):
        return value
    raise bad("`refant` must be an antenna number or name, or auto", "refant")


def validate_calibrate(params: Mapping[str, Any], need_ms: bool = True) -> dict[str, Any]:
    only(
        params,
        {"ms_path", "refant", "set_name", "solint", "minsnr", "cal_ra_deg", "cal_dec_deg", "cal_flux_jy"},
    )
    solint = text(params, "solint", "inf", 16)
    if not SOLINT_RE.match(solint):
        raise bad("`solint` must be inf, int, or a time like 60s, 5min", "solint")
    return {
        "ms_path": path(params, "ms_path", "table") if need_ms else None,
        "refant": _refant(params),
        "set_name": name(params, "set_name"),
        "solint": solint,
        "minsnr": number(params, "minsnr", 3.0, 0.0, 1000.0),
        "calibrator": _calibrator(params),
    }


def validate_apply(params: Mapping[str, Any], need_ms: bool = True) -> dict[str, Any]:
    only(params, {"ms_path", "set_name", "caltable_paths"})
    out = {
        "ms_path": path(params, "ms_path", "table") if need_ms else None,
        "set_name": name(params, "set_name"),
        "caltable_paths": paths(params, "caltable_paths", "table", 8),
    }
    if out["set_name"] and out["caltable_paths"]:
        raise bad("give `set_name` or `caltable_paths`, not both", "caltable_paths")
    return out


def validate_image(params: Mapping[str, Any], need_ms: bool = True) -> dict[str, Any]:
    only(
        params,
        {
            "ms_path",
            "imsize",
            "cell_arcsec",
            "niter",
            "weighting",
            "robust",
            "datacolumn",
            "photometry",
            "output_dir",
        },
    )
    imsize = integer(params, "imsize", 128, 16, 4096)
    if imsize % 2:
        raise bad("`imsize` must be even", "imsize")
    weighting = text(params, "weighting", "natural", 16)
    if weighting not in WEIGHTINGS:
        raise bad(f"`weighting` must be one of {', '.join(WEIGHTINGS)}", "weighting")
    column = text(params, "datacolumn", "auto", 16)
    if column not in COLUMNS:
        raise bad(f"`datacolumn` must be one of {', '.join(COLUMNS)}", "datacolumn")
    return {
        "ms_path": path(params, "ms_path", "table") if need_ms else None,
        "imsize": imsize,
        "cell_arcsec": number(params, "cell_arcsec", 60.0, 0.1, 3600.0),
        "niter": integer(params, "niter", 500, 0, 1_000_000),
        "weighting": weighting,
        "robust": number(params, "robust", 0.5, -2.0, 2.0),
        "datacolumn": column,
        "photometry": flag(params, "photometry", True),
        "output_dir": path(params, "output_dir", None, required=False),
    }


def validate_photometry(params: Mapping[str, Any]) -> dict[str, Any]:
    """The catalog sources on an image, or (the legacy batch form) one position on a FITS file."""
    only(
        params,
        {"image_id", "image_path", "fits_path", "ra_deg", "dec_deg", "box_pix", "detect", "max_sources"},
    )
    image_id = params.get("image_id")
    if image_id is not None:
        image_id = integer(params, "image_id", 0, 1, 2**53)
    image_path = path(params, "image_path", "file", required=False)
    fits_path = path(params, "fits_path", "file", required=False)
    if image_path and fits_path:
        raise bad("give `image_path` or `fits_path`, not both", "fits_path")
    image_path = image_path or fits_path
    if (image_id is None) == (image_path is None):
        raise bad("give one of `image_id` or `image_path`", "image_id")
    position = [k for k in ("ra_deg", "dec_deg") if params.get(k) is not None]
    if len(position) == 1:
        raise bad("give both `ra_deg` and `dec_deg`, or neither", position[0])
    box = integer(params, "box_pix", 5, 1, 31)
    if box % 2 == 0:
        raise bad("`box_pix` must be odd", "box_pix")
    return {
        "image_id": image_id,
        "image_path": image_path,
        "box_pix": box,
        "detect": flag(params, "detect", True),
        "max_sources": integer(params, "max_sources", 100_000, 1, 200_000),
        "ra_deg": number(params, "ra_deg", 0.0, 0.0, 360.0) if position else None,
        "dec_deg": number(params, "dec_deg", 0.0, -90.0, 90.0) if position else None,
    }


def _mjd(params: Mapping[str, Any], mjd_field: str, time_field: str) -> float | None:
    if params.get(mjd_field) is not None:
        return number(params, mjd_field, 0.0, 0.0, 100_000.0)
    stamp = timestamp(params, time_field)
    if stamp is None:
        return None
    moment = datetime.fromisoformat(stamp)
    return (moment.replace(tzinfo=None) - datetime(1858, 11, 17)).total_seconds() / 86400.0


def validate_mosaic(params: Mapping[str, Any]) -> dict[str, Any]:
    only(
        params,
        {"start_mjd", "end_mjd", "start_time", "end_time", "name", "calibrator_name"}
        | {"max_images", "cell_arcsec"},
    )
    start, end = _mjd(params, "start_mjd", "start_time"), _mjd(params, "end_mjd", "end_time")
    if start is None or end is None:
        raise bad(
            "give the time range: `start_mjd` and `end_mjd` (or `start_time` and `end_time`)", "start_mjd"
        )
    if not start < end or end - start > 31:
        raise bad("the time range must be positive and at most 31 days", "end_mjd")
    cell = params.get("cell_arcsec")
    return {
        "start_mjd": start,
        "end_mjd": end,
        "name": name(params, "name"),
        "calibrator_name": name(params, "calibrator_name"),  # the legacy form's label; not used
        "max_images": integer(params, "max_images", 200, 1, 2000),
        "cell_arcsec": None if cell is None else number(params, "cell_arcsec", 60.0, 0.1, 3600.0),
    }


def _nested(params: Mapping[str, Any], field: str) -> dict[str, Any]:
    value = params.get(field)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise bad(f"`{field}` must be an object", field)
    return dict(value)


def validate_workflow(params: Mapping[str, Any]) -> dict[str, Any]:
    """convert -> calibrate -> apply -> image -> photometry, each step's parameters checked now."""
    only(
        params,
        {
            "group_id",
            "uvh5_paths",
            "input_dir",
            "output_dir",
            "start_time",
            "end_time",
            "calibrator_group_id",
            "calibrator_uvh5_paths",
            "calibrator_ms_path",
            "set_name",
            "calibrate_params",
            "apply_params",
            "image_params",
            "photometry",
        },
    )
    convert = validate_convert(
        {
            k: params[k]
            for k in ("group_id", "uvh5_paths", "input_dir", "output_dir", "start_time", "end_time")
            if k in params
        }
    )
    cal_sources = [
        k
        for k in ("calibrator_group_id", "calibrator_uvh5_paths", "calibrator_ms_path", "set_name")
        if params.get(k)
    ]
    if len(cal_sources) > 1:
        raise bad(f"give one calibration source, not {' and '.join(cal_sources)}", cal_sources[1])
    calibrator: dict[str, Any] | None = None
    if params.get("calibrator_group_id") or params.get("calibrator_uvh5_paths"):
        calibrator = validate_convert(
            {
                "group_id": params.get("calibrator_group_id"),
                "uvh5_paths": params.get("calibrator_uvh5_paths"),
                "output_dir": params.get("output_dir"),
            }
        )
    cal_ms = path(params, "calibrator_ms_path", "table", required=False)
    calibrate = _step(validate_calibrate, _nested(params, "calibrate_params"))
    apply = _step(validate_apply, _nested(params, "apply_params"))
    image = _step(validate_image, _nested(params, "image_params"))
    return {
        "convert": convert,
        "calibrator": calibrator,
        "calibrator_ms_path": cal_ms,
        "set_name": name(params, "set_name"),
        "calibrate": calibrate,
        "apply": apply,
        "image": image,
        "photometry": flag(params, "photometry", True),
    }


def _step(validate: Any, given: dict[str, Any]) -> dict[str, Any]:
    """A step's parameters, checked without its ``ms_path`` (an earlier step makes the MS)."""
    given.pop("ms_path", None)
    checked: dict[str, Any] = validate(given, need_ms=False)
    checked.pop("ms_path", None)
    return checked


def finite(value: float) -> bool:
    return math.isfinite(value)
