"""QA: the file browser, FITS and CASA-table inspection, artefacts, thumbnails, calibration
QA of an MS (metrics, bandpass and SPW plots, completeness) and notebook generation.

Every path is resolved by the graph under the data roots (``..`` / control characters:
422; outside the roots or missing: 404). Files are served only after a second check that
their real location is under the roots (:func:`compat_rest.files.data_file`).
"""

from __future__ import annotations

import re
from typing import Any

from compat_rest.calqa import CAL_QA, calibration, png
from compat_rest.errors import not_found, validation_error
from compat_rest.files import data_file
from compat_rest.graph import GraphCall
from compat_rest.params import Args, Int, PathStr, Str
from compat_rest.routing import RestRoute, graphql_route, multi_query_route
from compat_rest.shapes import ANY, BOOL, INT, STR, TIME, arr, null, obj
from dsa110.auth.identity import Role
from dsa110.settings import Settings

TAG = "qa"
PATH_CHARS = 4096
MS_PATH = PathStr("ms_path", "MS path without its leading `/`", max_length=PATH_CHARS)
ANY_PATH = PathStr("path", "File path without its leading `/`", max_length=PATH_CHARS)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,254}")

LISTING = """
query RestQaDirectory($path: String, $offset: Int!, $limit: Int!) {
  qaDirectory(path: $path, offset: $offset, limit: $limit) {
    path total counts entries { name path kind isDir sizeBytes modified }
  }
}
"""
FITS = """
query RestQaFits($path: String!, $hdu: Int!) {
  fitsFile(path: $path, hdu: $hdu) {
    path sizeBytes hdu header dataShape wcs hdus { index name kind shape }
    statistics { nPixels nFinite min max mean std median madRms sampledEvery }
  }
}
"""
CASA = """
query RestQaCasa($path: String!, $offset: Int!, $rows: Int!) {
  casaTable(path: $path, offset: $offset, rows: $rows) {
    path nRows tableType infoType infoSubtype keywords subtables rows offset
    columns { name valueType ndim shape unit comment }
  }
}
"""
ARTIFACTS = """
query RestQaArtifacts($first: Int!, $filter: QaArtifactFilter) {
  qaArtifacts(first: $first, filter: $filter) {
    nodes { kind name path mediaType createdAt url group { groupId } }
  }
}
"""
FILE = "query RestQaFile($path: String!) { qaFile(path: $path) { path name kind } }"
THUMBNAIL = (
    "query RestThumb($path: String!, $size: Int!) { thumbnail(path: $path, size: $size) { path name } }"
)
IMAGE_QA = """
query RestImageQa($path: String!) {
  msFile(path: $path) {
    path
    measurementSet { images { imageId path noiseJy dynamicRange beamMajorArcsec beamMinorArcsec beamPaDeg
                              nMeasurements createdAt thumbnailUrl } }
  }
}
"""
NOTEBOOK = """
mutation RestNotebook($groupId: String!, $type: String!, $output: String) {
  generateQaNotebook(groupId: $groupId, notebookType: $type, outputPath: $output) { path notebookType cells }
}
"""
GROUP_OF_MS = (
    "query RestGroupOfMs($path: String!) { msFile(path: $path) { measurementSet { group { groupId } } } }"
)


def _download(data: dict[str, Any], settings: Settings) -> Any:
    found = data["qaFile"]
    return data_file(
        found["path"], settings.file_roots, media_type="application/octet-stream", filename=found["name"]
    )


def _bytes(size: float | None) -> int | None:
    """Bytes as the integer the document shows (the graph's Float carries sizes past 2^31)."""
    return None if size is None else int(size)


def listing(data: dict[str, Any], args: Args) -> dict[str, Any]:
    found = data["qaDirectory"]
    entries = found["entries"]
    counts = found["counts"] or {}
    return {
        "path": found["path"],
        "directories": [
            {"name": e["name"], "path": e["path"], "kind": e["kind"]} for e in entries if e["isDir"]
        ],
        "files": [
            {
                "name": e["name"],
                "path": e["path"],
                "size": _bytes(e["sizeBytes"]),
                "modified": e["modified"],
                "kind": e["kind"],
            }
            for e in entries
            if not e["isDir"]
        ],
        "entries": [
            {
                **e,
                "type": e["kind"],
                "is_dir": e["isDir"],
                "size": _bytes(e["sizeBytes"]),
                "modified_time": e["modified"],
            }
            for e in entries
        ],
        "total": found["total"],
        "offset": args["offset"],
        "limit": args["limit"],
        "total_dirs": sum(v for k, v in counts.items() if k in ("directory", "ms", "caltable", "casatable")),
        "total_files": sum(
            v for k, v in counts.items() if k not in ("directory", "ms", "caltable", "casatable")
        ),
        "fits_count": counts.get("fits", 0),
        "casatable_count": sum(counts.get(k, 0) for k in ("ms", "caltable", "casatable")),
    }


def fits(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    f = data["fitsFile"]
    return {
        "path": f["path"],
        "exists": True,
        "size_bytes": _bytes(f["sizeBytes"]),
        "hdu": f["hdu"],
        "hdus": f["hdus"],
        "header": f["header"],
        "header_keys": list(f["header"]),
        "data_shape": f["dataShape"],
        "shape": f["dataShape"],
        "naxis": len(f["dataShape"]),
        "wcs": f["wcs"],
        "statistics": f["statistics"],
    }


def casa(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    t = data["casaTable"]
    return {
        "path": t["path"],
        "exists": True,
        "table_type": t["tableType"],
        "info_type": t["infoType"],
        "info_subtype": t["infoSubtype"],
        "num_rows": t["nRows"],
        "nrows": t["nRows"],
        "columns": [
            {
                "name": c["name"],
                "dtype": c["valueType"],
                "ndim": c["ndim"],
                "shape": c["shape"],
                "unit": c["unit"],
            }
            for c in t["columns"]
        ],
        "keywords": t["keywords"],
        "subtables": t["subtables"],
        "rows": t["rows"],
        "offset": t["offset"],
    }


def artifact_item(node: dict[str, Any]) -> dict[str, Any]:
    return {
        "group_id": node["group"]["groupId"] if node["group"] else None,
        "name": node["name"],
        "path": node["path"],
        "artifact_type": node["kind"],
        "media_type": node["mediaType"],
        "timestamp": node["createdAt"],
        "created_at": node["createdAt"],
        "url": node["url"],
    }


def thumbs(data: dict[str, Any], args: Args) -> dict[str, Any]:
    """The newest picture of each group (the legacy thumbnail strip)."""
    seen: set[str | None] = set()
    items = []
    for node in data["qaArtifacts"]["nodes"]:
        item = artifact_item(node)
        if node["mediaType"].startswith("image/") and item["group_id"] not in seen:
            seen.add(item["group_id"])
            items.append(item)
    return {"items": items[: args["limit"]]}


async def fetch_ms_qa(call: GraphCall, args: Args) -> tuple[Any, Any]:
    return await call(CAL_QA, {"path": args["ms_path"]}), await call(IMAGE_QA, {"path": args["ms_path"]})


def image_qa(images: dict[str, Any]) -> dict[str, Any] | None:
    """The legacy ``ImageQA`` of the MS's image (None when the MS has none yet).

    Every field of the legacy model: the dashboard's QA panels read ``ms_path`` and
    ``overall_quality`` (required in its ``ImageQA`` type). No job writes image QA here
    (``job_id`` null), the graph has no image peak yet (``peak_flux`` null), and images
    are not graded, so ``overall_quality`` is the legacy vocabulary's ``unknown``.
    """
    registered = images["msFile"]["measurementSet"]
    image = registered["images"][0] if registered and registered["images"] else None
    if image is None:
        return None
    return {
        "ms_path": images["msFile"]["path"],
        "job_id": None,
        "image_path": image["path"],
        "rms_noise": image["noiseJy"],
        "peak_flux": None,
        "dynamic_range": image["dynamicRange"],
        "beam_major": image["beamMajorArcsec"],
        "beam_minor": image["beamMinorArcsec"],
        "beam_pa": image["beamPaDeg"],
        "num_sources": image["nMeasurements"],
        "thumbnail_path": image["thumbnailUrl"],
        "overall_quality": "unknown",
        "timestamp": image["createdAt"],
    }


def _image_qa_or_404(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    found = image_qa(data)
    if found is None:
        raise not_found("no image has been made from this MS yet")
    return found


def ms_qa(result: tuple[Any, Any], args: Args) -> dict[str, Any]:
    cal, images = result
    calibration_qa = calibration(cal, args)
    return {
        "ms_path": calibration_qa["ms_path"],
        "calibration_qa": calibration_qa,
        "image_qa": image_qa(images),
        "flagging_stats": calibration_qa["flagging"],
    }


async def fetch_notebook(call: GraphCall, args: Args) -> Any:
    group_id = args.get("group_id")
    if group_id is None and args.get("ms_path"):
        found = await call(GROUP_OF_MS, {"path": args["ms_path"]})
        registered = found["msFile"]["measurementSet"]
        group_id = registered["group"]["groupId"] if registered and registered["group"] else None
        if group_id is None:
            raise not_found("the MS belongs to no observation group")
    if group_id is None:
        raise validation_error("give `group_id` (or `ms_path`)", parameter="group_id", location="body")
    return await call(
        NOTEBOOK, {"groupId": group_id, "type": args["notebook_type"], "output": args.get("output_path")}
    )


def routes(settings: Settings) -> list[RestRoute]:
    def file_name(args: Args) -> str:
        for key in ("group", "name"):
            if not _NAME.fullmatch(args[key]):
                raise validation_error(f"path parameter `{key}` is not a plain file name", parameter=key)
        return str(settings.qa_dir / args["group"] / args["name"])

    ms_only: dict[str, Any] = {"params": [MS_PATH], "errors": (400, 404, 422)}
    return [
        graphql_route(
            "GET",
            "/qa/directories",
            LISTING,
            listing,
            variables=lambda args: {
                "path": args.get("path"),
                "offset": args["offset"],
                "limit": args["limit"],
            },
            params=[
                Str("path", max_length=PATH_CHARS),
                Int("offset", 0, ge=0, le=10_000_000),
                Int("limit", 200, ge=1, le=1000),
            ],
            response=obj(
                path=STR,
                directories=arr(obj(name=STR, path=STR)),
                files=arr(obj(name=STR, path=STR, size=null(INT), modified=TIME)),
                total=INT,
            ),
            errors=(400, 404, 422),
            tag=TAG,
            summary="A directory under the data roots (default: the QA directory), paged",
        ),
        graphql_route(
            "GET",
            "/qa/fits/{path:path}",
            FITS,
            fits,
            variables=lambda args: {"path": args["path"], "hdu": args["hdu"]},
            params=[ANY_PATH, Int("hdu", 0, ge=0, le=1000)],
            response=obj(path=STR, header=ANY, data_shape=arr(INT), wcs=ANY),
            errors=(400, 404, 422),
            tag=TAG,
            summary="A FITS file: header, shape, WCS and pixel statistics",
        ),
        graphql_route(
            "GET",
            "/qa/casa/{path:path}",
            CASA,
            casa,
            variables=lambda args: {"path": args["path"], "offset": args["offset"], "rows": args["rows"]},
            params=[ANY_PATH, Int("offset", 0, ge=0, le=1_000_000_000), Int("rows", 10, ge=0, le=100)],
            response=obj(
                path=STR,
                table_type=null(STR),
                num_rows=INT,
                columns=arr(obj(name=STR, dtype=STR, shape=arr(INT))),
            ),
            errors=(400, 404, 422),
            tag=TAG,
            summary="A CASA table: columns, keywords, subtables and its first rows",
        ),
        graphql_route(
            "GET",
            "/qa/file/{group}/{name}",
            FILE,
            lambda data, _args: _download(data, settings),
            variables=lambda args: {"path": file_name(args)},
            params=[
                PathStr("group", "QA group folder", max_length=255),
                PathStr("name", "File name", max_length=255),
            ],
            response=None,
            media_type="application/octet-stream",
            errors=(400, 404, 422),
            tag=TAG,
            summary="A file of a group's QA folder",
        ),
        graphql_route(
            "GET",
            "/qa/thumbs",
            ARTIFACTS,
            thumbs,
            variables=lambda args: {"first": 500, "filter": {"kinds": ["plot", "thumbnail"]}},
            params=[Int("limit", 100, ge=1, le=500)],
            response=obj(items=arr(obj(group_id=null(STR), path=STR, artifact_type=STR, timestamp=TIME))),
            tag=TAG,
            summary="The newest QA picture of each group",
        ),
        graphql_route(
            "GET",
            "/qa/thumbnail",
            THUMBNAIL,
            lambda data, _args: png(data["thumbnail"]["path"], settings),
            variables=lambda args: {"path": args["path"], "size": args["size"]},
            params=[Str("path", required=True, max_length=PATH_CHARS), Int("size", 512, ge=16, le=2048)],
            response=None,
            media_type="image/png",
            errors=(400, 404, 422),
            tag=TAG,
            summary="A PNG thumbnail of a FITS image or picture under the data roots (cached)",
        ),
        graphql_route(
            "GET",
            "/qa/download",
            FILE,
            lambda data, _args: _download(data, settings),
            variables=lambda args: {"path": args["path"]},
            params=[Str("path", required=True, max_length=PATH_CHARS)],
            response=None,
            media_type="application/octet-stream",
            errors=(400, 404, 422),
            tag=TAG,
            summary="Download a file under the data roots (QA artefacts' URLs)",
        ),
        multi_query_route(
            "POST",
            "/qa/notebook/generate",
            [NOTEBOOK, GROUP_OF_MS],
            fetch_notebook,
            lambda data, _args: {
                "notebook_path": data["generateQaNotebook"]["path"],
                "status": "generated",
                "success": True,
                "cells": data["generateQaNotebook"]["cells"],
                "message": f"notebook written with {data['generateQaNotebook']['cells']} cells",
            },
            body=[
                Str("group_id", max_length=64),
                Str("ms_path", max_length=PATH_CHARS),
                Str("notebook_type", "full", enum=("full", "calibration", "image")),
                Str("output_path", max_length=PATH_CHARS),
            ],
            response=obj(notebook_path=STR, status=STR, success=BOOL),
            errors=(400, 404, 422),
            tag=TAG,
            summary="Write a QA notebook for an observation group (runs top to bottom in Jupyter)",
            role=Role.OPERATOR,  # writes a file and records it
        ),
        graphql_route(
            "GET",
            "/qa",
            ARTIFACTS,
            lambda data, args: {"items": [artifact_item(n) for n in data["qaArtifacts"]["nodes"]]},
            variables=lambda args: {"first": args["limit"], "filter": None},
            params=[Int("limit", 100, ge=1, le=500)],
            response=obj(items=arr(obj(group_id=null(STR), path=STR, artifact_type=STR, timestamp=TIME))),
            tag=TAG,
            summary="Recent QA artefacts, newest first",
        ),
        graphql_route(
            "GET",
            "/qa/image/{ms_path:path}",
            IMAGE_QA,
            _image_qa_or_404,
            variables=lambda args: {"path": args["ms_path"]},
            response=ANY,
            tag=TAG,
            summary="Image QA of an MS's image (noise, dynamic range, beam, sources, thumbnail)",
            **ms_only,
        ),
        multi_query_route(
            "GET",
            "/qa/{ms_path:path}",
            [CAL_QA, IMAGE_QA],
            fetch_ms_qa,
            ms_qa,
            response=obj(ms_path=STR, calibration_qa=ANY, image_qa=ANY, flagging_stats=ANY),
            tag=TAG,
            summary="Calibration and image QA of an MS",
            **ms_only,
        ),
    ]
