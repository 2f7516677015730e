"""Measurement Sets, calibration tables and UVH5 files: the legacy /api paths.

``{ms_path}`` is an absolute path with its leading ``/`` dropped (the legacy convention; a
path relative to a data root works too). Every path goes through the graph, which resolves
it under the configured data roots: ``..`` or control characters answer 422, anything
outside the roots 404, in the envelope.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from compat_rest.convert import after_offset, compact, iso_from_mjd
from compat_rest.errors import validation_error
from compat_rest.graph import GraphCall
from compat_rest.paging import LEGACY_MAX_LIMIT, collect
from compat_rest.params import Args, Bool, Float, Int, Json, PathStr, Str, Time
from compat_rest.routing import RestRoute, graphql_route, multi_query_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, null, obj
from dsa110.auth.identity import Role
from dsa110.science.calibrators import quality
from dsa110.science.site import airy_primary_beam
from dsa110.settings import Settings

TAG = "measurement sets"
PATH_CHARS = 4096
MS_PATH = PathStr("ms_path", "MS path without its leading `/`", max_length=PATH_CHARS)
GB = 1024.0**3
MB = 1024.0**2
SORTS = {
    "time_desc": ("MID_MJD", "DESC"),
    "time_asc": ("MID_MJD", "ASC"),
    "name_asc": ("PATH", "ASC"),
    "name_desc": ("PATH", "DESC"),
    "size_asc": ("PATH", "ASC"),  # the legacy size sorts ordered by path too
    "size_desc": ("PATH", "DESC"),
}

MS_FIELDS = """
  msId path startMjd endMjd midMjd status stage calApplied fieldName raDeg decDeg createdAt stageUpdatedAt
  sizeBytes group { groupId hasCalibrator calibrators } images { imageId path }
"""
MS_LIST = f"""
query RestMsList($first: Int!, $after: String, $filter: MeasurementSetFilter,
                 $orderBy: MeasurementSetOrderField!, $direction: OrderDirection!) {{
  measurementSets(first: $first, after: $after, filter: $filter, orderBy: $orderBy, direction: $direction) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {MS_FIELDS} }}
  }}
}}
"""
ALL_MS = "query RestMsCount { measurementSets(first: 0) { totalCount } }"
FILE_FIELDS = """
  path sizeBytes nRows startMjd endMjd midMjd startTime endTime durationS integrationS
  fields { fieldId name raDeg decDeg }
  spectralWindows { spwId name nChannels freqMinHz freqMaxHz totalBandwidthHz }
  antennas { antennaId name station } nBaselines nChannels freqMinHz freqMaxHz bandwidthHz dataColumns
  calibrated telescope pointingDecDeg meridianRaDeg
"""
METADATA = f"""
query RestMsMetadata($path: String!) {{
  msFile(path: $path) {{
    {FILE_FIELDS}
    flagging {{
      totalFraction rfiChannels
      perAntenna {{ id fraction }} perField {{ id fraction }} perSpw {{ id fraction }}
    }}
  }}
}}
"""
MATCHES = """
query RestMsCalibrators($path: String!, $radius: Float!, $topN: Int!) {
  msFile(path: $path) {
    path midMjd
    calibratorMatches(radiusDeg: $radius, topN: $topN) {
      pointingRaDeg pointingDecDeg midMjd hasCalibrator
      matches { name raDeg decDeg fluxJy sepDeg pbResponse weightedFlux quality }
    }
  }
}
"""
TABLE_FIELDS = "path name tableType kind modified sizeBytes msName nRows"
EXISTING = (
    f"query RestMsTables($path: String!) {{ msFile(path: $path) {{ path calTables {{ {TABLE_FIELDS} }} }} }}"
)
VALIDATE = """
query RestValidate($path: String!, $table: String!) {
  msFile(path: $path) {
    validateCalTable(caltablePath: $table) {
      compatible issues warnings caltablePath msPath msAntennas caltableAntennas
      msFreqMinHz msFreqMaxHz caltableFreqMinHz caltableFreqMaxHz validStartMjd validEndMjd
    }
  }
}
"""
DISCOVER = """
mutation RestDiscover($paths: [String!], $recursive: Boolean!) {
  discoverMeasurementSets(paths: $paths, recursive: $recursive) {
    discovered registered updated skipped scanned
  }
}
"""


def _best_calibrator(group: dict[str, Any] | None) -> tuple[bool, str | None, str | None]:
    if not group or not isinstance(group.get("calibrators"), list) or not group["calibrators"]:
        return bool(group and group.get("hasCalibrator")), None, None
    best = max(group["calibrators"], key=lambda m: m.get("weighted_flux") or 0.0)
    sep = best.get("sep_deg")
    pb = float(airy_primary_beam([sep])[0]) if isinstance(sep, int | float) else None
    return bool(group.get("hasCalibrator")), best.get("name"), quality(pb) if pb is not None else None


def ms_entry(node: dict[str, Any]) -> dict[str, Any]:
    has_cal, cal_name, cal_quality = _best_calibrator(node["group"])
    size = node["sizeBytes"]
    return {
        "id": node["msId"],
        "path": node["path"],
        "ms_path": node["path"],
        "group_id": node["group"]["groupId"] if node["group"] else None,
        "start_mjd": node["startMjd"],
        "end_mjd": node["endMjd"],
        "mid_mjd": node["midMjd"],
        "start_time": iso_from_mjd(node["startMjd"]),
        "status": node["status"],
        "stage": node["stage"],
        "stage_updated_at": node["stageUpdatedAt"],
        "processed_at": node["createdAt"],
        "field_name": node["fieldName"],
        "cal_applied": node["calApplied"],
        "is_calibrated": node["calApplied"],
        "is_imaged": bool(node["images"]),
        "imagename": node["images"][0]["path"] if node["images"] else None,
        "has_calibrator": has_cal,
        "calibrator_name": cal_name,
        "calibrator_quality": cal_quality,
        # Computed per MS on request (GET /qa/calibration/{ms}); not stored, so not listed.
        "calibration_quality": None,
        "image_quality": None,
        "size_gb": size / GB if size is not None else None,
    }


MS_ENTRY = obj(
    path=STR,
    mid_mjd=null(NUM),
    status=STR,
    stage=STR,
    cal_applied=BOOL,
    has_calibrator=BOOL,
    is_imaged=BOOL,
    start_time=null(TIME),
    size_gb=null(NUM),
)


def _mjd(value: str | None) -> float | None:
    """A validated ISO time (``...Z``) -> MJD."""
    if value is None:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() / 86400.0 + 40587.0


def list_variables(args: Args) -> dict[str, Any]:
    order, direction = SORTS[args.get("sort_by") or "time_desc"]
    filter_ = compact(
        {
            "search": args.get("search"),
            "stages": [args["stage"]] if args.get("stage") else None,
            "statuses": [args["status"]] if args.get("status") else None,
            "hasCalibrator": args.get("has_calibrator"),
            "calApplied": args.get("is_calibrated"),
            "imaged": args.get("is_imaged"),
            "mjdMin": _mjd(args.get("start_date")),
            "mjdMax": _mjd(args.get("end_date")),
        }
    )
    return {
        "first": args["limit"],
        "after": after_offset(args.get("offset") or 0),
        "filter": filter_,
        "orderBy": order,
        "direction": direction,
    }


def _connection(data: dict[str, Any]) -> dict[str, Any]:
    connection: dict[str, Any] = data["measurementSets"]
    return connection


QUALITY_SCAN = 10_000
"""Calibrator MSs looked at for a ``calibrator_quality`` filter (a few a day: years of them)."""


async def fetch_list(call: GraphCall, args: Args) -> tuple[Any, int]:
    variables = list_variables(args)
    everything = (await call(ALL_MS, {}))["measurementSets"]["totalCount"]
    wanted = args.get("calibrator_quality")
    if wanted is None:
        return await collect(call, MS_LIST, variables, _connection, max_rows=variables["first"]), everything
    # The quality is the best match's primary-beam band, worked out here from the group's
    # calibrator list (``_best_calibrator``), as the legacy server did per row: so the MSs with
    # a calibrator are read and this page cut from the ones of that quality. (useMSList,
    # frontend queries.ts, sends `calibrator_quality=excellent|good|marginal|poor`.)
    scan = {**variables, "after": None, "filter": {"hasCalibrator": True, **variables["filter"]}}
    data = await collect(call, MS_LIST, scan, _connection, max_rows=QUALITY_SCAN)
    connection = data["measurementSets"]
    kept = [n for n in connection["nodes"] if _best_calibrator(n["group"])[2] == wanted]
    offset = args.get("offset") or 0
    connection["nodes"] = kept[offset : offset + args["limit"]]
    connection["totalCount"] = len(kept)
    return data, everything


def shape_list(result: tuple[Any, int], args: Args) -> dict[str, Any]:
    data, everything = result
    connection = data["measurementSets"]
    items = [ms_entry(n) for n in connection["nodes"]]
    return {
        "ms_list": items,
        "items": items,
        "total": connection["totalCount"],
        "filtered": connection["totalCount"],
        "total_registered": everything,
        "limit": args["limit"],
        "offset": args.get("offset") or 0,
    }


def metadata(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    f = data["msFile"]
    fields = f["fields"]
    flags = f["flagging"]
    centre = fields[0] if fields else None
    return {
        "path": f["path"],
        "start_time": f["startTime"],
        "end_time": f["endTime"],
        "start_mjd": f["startMjd"],
        "end_mjd": f["endMjd"],
        "mid_mjd": f["midMjd"],
        "duration_sec": f["durationS"],
        "duration_seconds": f["durationS"],
        "integration_sec": f["integrationS"],
        "num_fields": len(fields),
        "field_names": [x["name"] for x in fields],
        "fields": [
            {"field_id": x["fieldId"], "name": x["name"], "ra_deg": x["raDeg"], "dec_deg": x["decDeg"]}
            for x in fields
        ],
        "field_ra_deg": centre["raDeg"] if centre else None,
        "field_dec_deg": centre["decDeg"] if centre else None,
        "spectral_windows": [
            {
                "spw_id": s["spwId"],
                "name": s["name"],
                "num_channels": s["nChannels"],
                "freq_min_hz": s["freqMinHz"],
                "freq_max_hz": s["freqMaxHz"],
                "bandwidth_hz": s["totalBandwidthHz"],
            }
            for s in f["spectralWindows"]
        ],
        "freq_min_ghz": f["freqMinHz"] / 1e9 if f["freqMinHz"] is not None else None,
        "freq_max_ghz": f["freqMaxHz"] / 1e9 if f["freqMaxHz"] is not None else None,
        "frequency_hz": (f["freqMinHz"] + f["freqMaxHz"]) / 2 if f["freqMinHz"] is not None else None,
        "bandwidth_hz": f["bandwidthHz"],
        "num_channels": f["nChannels"],
        "n_channels": f["nChannels"],
        "num_antennas": len(f["antennas"]),
        "n_antennas": len(f["antennas"]),
        "n_baselines": f["nBaselines"],
        "n_rows": f["nRows"],
        "antennas": [
            {"antenna_id": a["antennaId"], "name": a["name"], "station": a["station"]} for a in f["antennas"]
        ],
        "data_columns": f["dataColumns"],
        "size_gb": f["sizeBytes"] / GB,
        "calibrated": f["calibrated"],
        "telescope": f["telescope"],
        "pointing_dec_deg": f["pointingDecDeg"],
        "meridian_ra_deg": f["meridianRaDeg"],
        "flagging_stats": {
            "total_fraction": flags["totalFraction"],
            "per_antenna": {str(x["id"]): x["fraction"] for x in flags["perAntenna"]},
            "per_field": {str(x["id"]): x["fraction"] for x in flags["perField"]},
            "per_spw": {str(x["id"]): x["fraction"] for x in flags["perSpw"]},
            "rfi_channels": flags["rfiChannels"],
        },
    }


def matches(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    found = data["msFile"]["calibratorMatches"]
    return {
        "ms_path": data["msFile"]["path"],
        "pointing_dec": found["pointingDecDeg"],
        "pointing_ra": found["pointingRaDeg"],
        "mid_mjd": found["midMjd"],
        "has_calibrator": found["hasCalibrator"],
        "matches": [
            {
                "name": m["name"],
                "ra_deg": m["raDeg"],
                "dec_deg": m["decDeg"],
                "flux_jy": m["fluxJy"],
                "sep_deg": m["sepDeg"],
                "pb_response": m["pbResponse"],
                "weighted_flux": m["weightedFlux"],
                "quality": m["quality"],
                "recommended_fields": None,
            }
            for m in found["matches"]
        ],
    }


def table_entry(table: dict[str, Any], now: datetime) -> dict[str, Any]:
    modified = datetime.fromisoformat(table["modified"].replace("Z", "+00:00"))
    return {
        "path": table["path"],
        "filename": table["name"],
        "type": table["tableType"],
        "table_type": table["tableType"],
        "kind": table["kind"],
        "size_mb": table["sizeBytes"] / MB,
        "modified_time": table["modified"],
        "created_at": table["modified"],
        "age_hours": (now - modified).total_seconds() / 3600.0,
    }


async def fetch_existing(call: GraphCall, args: Args) -> tuple[Any, list[Any]]:
    data = await call(EXISTING, {"path": args["ms_path"]})
    checks = [
        await call(VALIDATE, {"path": args["ms_path"], "table": t["path"]})
        for t in data["msFile"]["calTables"]
    ]
    return data, checks


def existing(result: tuple[Any, list[Any]], _args: Args) -> dict[str, Any]:
    data, checks = result
    now = datetime.now(UTC)
    tables = []
    for table, check in zip(data["msFile"]["calTables"], checks, strict=True):
        tables.append(
            {**table_entry(table, now), "compatible": check["msFile"]["validateCalTable"]["compatible"]}
        )
    families = {"k_tables": ("K",), "bp_tables": ("BA", "BP"), "g_tables": ("G", "GA", "GP", "2G")}
    grouped = {key: [t for t in tables if t["type"] in types] for key, types in families.items()}
    return {
        "ms_path": data["msFile"]["path"],
        "caltables": tables,
        **grouped,
        "has_k": bool(grouped["k_tables"]),
        "has_bp": bool(grouped["bp_tables"]),
        "has_g": bool(grouped["g_tables"]),
    }


def compatibility(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    c = data["msFile"]["validateCalTable"]

    def ghz(value: float | None) -> float | None:
        return value / 1e9 if value is not None else None

    return {
        "compatible": c["compatible"],
        "is_compatible": c["compatible"],
        "issues": c["issues"],
        "warnings": c["warnings"],
        "caltable_path": c["caltablePath"],
        "ms_path": c["msPath"],
        "ms_antennas": c["msAntennas"],
        "caltable_antennas": c["caltableAntennas"],
        "ms_freq_min_ghz": ghz(c["msFreqMinHz"]),
        "ms_freq_max_ghz": ghz(c["msFreqMaxHz"]),
        "caltable_freq_min_ghz": ghz(c["caltableFreqMinHz"]),
        "caltable_freq_max_ghz": ghz(c["caltableFreqMaxHz"]),
        "valid_start_mjd": c["validStartMjd"],
        "valid_end_mjd": c["validEndMjd"],
    }


def discover_variables(args: Args) -> dict[str, Any]:
    raw = args.get("search_paths")
    if raw is not None and (not isinstance(raw, list) or not all(isinstance(p, str) for p in raw)):
        raise validation_error("body field `search_paths` must be a list of paths", parameter="search_paths")
    paths = list(raw or []) + ([args["scan_dir"]] if args.get("scan_dir") else [])
    return {"paths": paths or None, "recursive": args["recursive"]}


def discovered(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    d = data["discoverMeasurementSets"]
    return {
        "success": True,
        "discovered": len(d["discovered"]),
        "registered": len(d["registered"]),
        "updated": len(d["updated"]),
        "skipped": len(d["skipped"]),
        "count": len(d["discovered"]),
        "scan_dir": d["scanned"][0] if len(d["scanned"]) == 1 else d["scanned"],
        "paths": d["discovered"],
    }


LIST_PARAMS = [Int("limit", 50, ge=1, le=500), Int("offset", 0, ge=0, le=10_000_000)]
TABLE = obj(path=STR, filename=STR, type=null(STR), size_mb=NUM, modified_time=TIME)


def routes(settings: Settings) -> list[RestRoute]:
    def ms_vars(args: Args) -> dict[str, Any]:
        return {"path": args["ms_path"]}

    return [
        multi_query_route(
            "GET",
            "/ms",
            [MS_LIST, ALL_MS],
            fetch_list,
            shape_list,
            params=[
                Str("search", max_length=256),
                Bool("has_calibrator"),
                Bool("is_calibrated"),
                Bool("is_imaged"),
                Str("calibrator_quality", enum=("excellent", "good", "marginal", "poor")),
                Time("start_date"),
                Time("end_date"),
                Str("sort_by", "time_desc", enum=tuple(SORTS)),
                Int("limit", 100, ge=1, le=LEGACY_MAX_LIMIT),
                Int("offset", 0, ge=0, le=10_000_000),
                Bool(
                    "scan", False, description="Ignored: discovery is POST /ms/discover (a GET never writes)"
                ),
                Str("scan_dir", max_length=PATH_CHARS, description="Ignored, see `scan`"),
            ],
            response=obj(ms_list=arr(MS_ENTRY), items=arr(MS_ENTRY), total=INT, filtered=INT),
            tag=TAG,
            summary="Registered Measurement Sets, filtered and paged",
        ),
        graphql_route(
            "GET",
            "/ms_index",
            MS_LIST,
            lambda data, args: {
                "items": [ms_entry(n) for n in data["measurementSets"]["nodes"]],
                "total": data["measurementSets"]["totalCount"],
            },
            variables=list_variables,
            paged=_connection,
            params=[
                Str("stage", max_length=32),
                Str("status", max_length=32),
                Int("limit", 100, ge=1, le=LEGACY_MAX_LIMIT),
                Int("offset", 0, ge=0, le=10_000_000),
            ],
            response=obj(
                items=arr(obj(id=INT, path=STR, ms_path=STR, stage=STR, status=STR, mid_mjd=null(NUM))),
                total=INT,
            ),
            tag=TAG,
            summary="The MS index (registry rows), most recent first",
        ),
        multi_query_route(
            "GET",
            "/control/ms/list",
            [MS_LIST, ALL_MS],
            fetch_list,
            shape_list,
            params=[Str("stage", max_length=32), Str("status", max_length=32), *LIST_PARAMS],
            response=obj(ms_list=arr(MS_ENTRY), total=INT, limit=INT, offset=INT),
            tag=TAG,
            summary="Measurement Sets by processing stage and status",
        ),
        graphql_route(
            "POST",
            "/ms/discover",
            DISCOVER,
            discovered,
            variables=discover_variables,
            body=[Json("search_paths"), Str("scan_dir", max_length=PATH_CHARS), Bool("recursive", True)],
            response=obj(discovered=INT, registered=INT, skipped=INT, success=BOOL, count=INT),
            errors=(400, 404, 422),
            tag=TAG,
            summary="Find Measurement Sets under the data roots and register new ones",
            role=Role.OPERATOR,  # registers what it finds
        ),
        graphql_route(
            "GET",
            "/ms/{ms_path:path}/metadata",
            METADATA,
            metadata,
            variables=ms_vars,
            params=[MS_PATH],
            response=obj(
                path=STR,
                n_antennas=INT,
                n_baselines=INT,
                n_channels=INT,
                frequency_hz=null(NUM),
                bandwidth_hz=NUM,
                duration_seconds=null(NUM),
                field_ra_deg=null(NUM),
                field_dec_deg=null(NUM),
                fields=arr(ANY),
                antennas=arr(ANY),
                data_columns=arr(STR),
                flagging_stats=ANY,
            ),
            errors=(400, 404, 422),
            tag=TAG,
            summary="What the MS holds, read from the file",
        ),
        graphql_route(
            "GET",
            "/ms/{ms_path:path}/calibrator-matches",
            MATCHES,
            matches,
            variables=lambda args: {
                "path": args["ms_path"],
                "radius": args["radius_deg"],
                "topN": args["top_n"],
            },
            params=[
                MS_PATH,
                Str("catalog", "vla", enum=("vla",)),
                Float("radius_deg", 1.5, ge=0.01, le=10.0),
                Int("top_n", 5, ge=1, le=100),
            ],
            response=obj(
                ms_path=STR,
                has_calibrator=BOOL,
                matches=arr(obj(name=STR, sep_deg=NUM, pb_response=NUM, quality=STR)),
            ),
            errors=(400, 404, 422),
            tag=TAG,
            summary="VLA calibrators in the MS's beam, weighted by the primary beam",
        ),
        multi_query_route(
            "GET",
            "/ms/{ms_path:path}/existing-caltables",
            [EXISTING, VALIDATE],
            fetch_existing,
            existing,
            params=[MS_PATH],
            response=obj(
                ms_path=STR,
                caltables=arr(TABLE),
                k_tables=arr(TABLE),
                bp_tables=arr(TABLE),
                g_tables=arr(TABLE),
                has_k=BOOL,
                has_bp=BOOL,
                has_g=BOOL,
            ),
            errors=(400, 404, 422),
            tag=TAG,
            summary="Calibration tables beside the MS, newest first, each checked against it",
        ),
        graphql_route(
            "POST",
            "/ms/{ms_path:path}/validate-caltable",
            VALIDATE,
            compatibility,
            variables=lambda args: {"path": args["ms_path"], "table": args["caltable_path"]},
            params=[MS_PATH],
            body=[Str("caltable_path", required=True, max_length=PATH_CHARS)],
            response=obj(compatible=BOOL, issues=arr(STR), warnings=arr(STR)),
            errors=(400, 404, 422),
            tag=TAG,
            summary="Can this calibration table be applied to the MS? With reasons",
            role=Role.VIEWER,  # a read that takes a JSON body
        ),
    ]
