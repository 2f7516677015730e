"""Calibration tables and UVH5 files found on disk: ``/caltables`` and ``/uvh5``.

Directories come from the client (``cal_dir``, ``input_dir``) and are resolved by the graph
under the data roots; UVH5 entries carry their header (read with h5py, never the data)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from compat_rest.convert import after_offset
from compat_rest.errors import validation_error
from compat_rest.ms import MB, PATH_CHARS, TABLE_FIELDS, table_entry
from compat_rest.params import Args, Int, Str
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import INT, STR, TIME, arr, null, obj
from dsa110.settings import Settings

CALTABLES = (
    f"query RestCalTables($dir: String) {{ calTableFiles(directory: $dir, limit: 500) {{ {TABLE_FIELDS} }} }}"
)
UVH5 = """
query RestUvh5($dir: String, $first: Int!, $after: String, $subband: Int, $search: String) {
  uvhFiles(directory: $dir, first: $first, after: $after, subband: $subband, search: $search) {
    totalCount
    nodes {
      path name subbandIdx
      header { sizeBytes modified groupId subband startTime endTime freqMinHz freqMaxHz
               nAntennas phaseCenterRaDeg phaseCenterDecDeg }
    }
  }
}
"""


def caltables(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    now = datetime.now(UTC)
    tables = []
    for table in data["calTableFiles"]:
        entry = table_entry(table, now)
        folder = table["path"].rsplit("/", 1)[0]
        entry["ms_path"] = f"{folder}/{table['msName']}" if table["msName"] else None
        tables.append(entry)
    return {"caltables": tables, "items": tables, "total": len(tables)}


def uvh5(data: dict[str, Any], args: Args) -> dict[str, Any]:
    connection = data["uvhFiles"]
    items = []
    for node in connection["nodes"]:
        header = node["header"] or {}
        items.append(
            {
                "path": node["path"],
                "name": node["name"],
                "timestamp": header.get("groupId"),
                "subband": f"sb{node['subbandIdx']:02d}" if node["subbandIdx"] is not None else None,
                "size": int(header["sizeBytes"]) if header else None,
                "size_mb": header["sizeBytes"] / MB if header else None,
                "modified": header.get("modified"),
                "start_time": header.get("startTime"),
                "end_time": header.get("endTime"),
                "freq_min_hz": header.get("freqMinHz"),
                "freq_max_hz": header.get("freqMaxHz"),
                "n_antennas": header.get("nAntennas"),
                "phase_center_ra_deg": header.get("phaseCenterRaDeg"),
                "phase_center_dec_deg": header.get("phaseCenterDecDeg"),
            }
        )
    return {
        "files": items,
        "items": items,
        "total": connection["totalCount"],
        "limit": args["limit"],
        "offset": args["offset"],
    }


LEGACY_INCOMING = "/data/incoming"
"""The legacy pipeline's incoming directory, which the dashboard's data browser asks for by name."""
LEGACY_MS_OUTPUT = "/stage/dsa110-contimg/ms"
"""The legacy pipeline's Measurement Set directory, the Control page's workflow ``output_dir``."""


def is_legacy(given: object, legacy: str) -> bool:
    """Does ``given`` name the legacy directory ``legacy`` (a trailing slash or not)?"""
    return isinstance(given, str) and given.rstrip("/") == legacy


def input_directory(given: str | None) -> str | None:
    """The directory to list: the legacy incoming path means this deployment's incoming directory."""
    return None if is_legacy(given, LEGACY_INCOMING) else given


def uvh5_variables(args: Args) -> dict[str, Any]:
    subband = args.get("subband")
    number = None
    if subband is not None:
        digits = subband[2:] if subband.startswith("sb") else subband
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 2:
            raise validation_error("query parameter `subband` must look like sb03", parameter="subband")
        number = int(digits)
    return {
        "dir": input_directory(args.get("input_dir")),
        "first": args["limit"],
        "after": after_offset(args["offset"]),
        "subband": number,
        "search": args.get("search"),
    }


def routes(settings: Settings) -> list[RestRoute]:
    return [
        graphql_route(
            "GET",
            "/caltables",
            CALTABLES,
            caltables,
            variables=lambda args: {"dir": args.get("cal_dir")},
            params=[
                Str(
                    "cal_dir",
                    max_length=PATH_CHARS,
                    description="Directory under the data roots (default: MS directory)",
                )
            ],
            response=obj(
                caltables=arr(obj(path=STR, type=null(STR), created_at=TIME, ms_path=null(STR))), total=INT
            ),
            errors=(400, 404, 422),
            tag="calibration tables",
            summary="Calibration tables found under a directory",
        ),
        graphql_route(
            "GET",
            "/uvh5",
            UVH5,
            uvh5,
            variables=uvh5_variables,
            params=[
                Str(
                    "input_dir",
                    max_length=PATH_CHARS,
                    description="Directory under the data roots (default, or /data/incoming: incoming)",
                ),
                Int("limit", 100, ge=1, le=500),
                Int("offset", 0, ge=0, le=10_000_000),
                Str("search", max_length=256),
                Str("subband", max_length=8, description="e.g. sb03"),
            ],
            response=obj(
                files=arr(obj(path=STR, size=null(INT), modified=null(TIME))),
                total=INT,
                limit=INT,
                offset=INT,
            ),
            errors=(400, 404, 422),
            tag="uvh5",
            summary="UVH5 subband files with their headers (header only, never the data)",
        ),
    ]
