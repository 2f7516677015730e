"""``/api/visualization/*``: the legacy frontend's file browser, FITS and CASA-table panels.

The legacy server mounted these under ``/api/visualization`` (absent from the API
document, called by the dashboard's QA pages). They run the same graph documents as the
``/api/qa`` browser, so paths resolve under the configured data roots here too (the legacy
``fits``/``casatable`` paths read any file on the server), and answer in the frontend's
``DirectoryListing``, ``FITSInfo`` and ``CasaTableInfo`` shapes.
"""

from __future__ import annotations

import fnmatch
import html
import json
from typing import Any
from urllib.parse import quote

from starlette.responses import HTMLResponse

from compat_rest import qa
from compat_rest.calqa import CAL_QA
from compat_rest.graph import GraphCall
from compat_rest.params import Args, Bool, Int, Json, Str
from compat_rest.routing import RestRoute, graphql_route, multi_query_route
from compat_rest.shapes import ANY, BOOL, INT, STR, arr, null, obj
from dsa110.auth.identity import Role
from dsa110.settings import Settings

TAG = "visualization"
PATTERN_CHARS = 256

ENTRY = obj(name=STR, path=STR, type=STR, size=STR, modified_time=null(STR), is_dir=BOOL)
LISTING = obj(
    path=STR, entries=arr(ENTRY), total_files=INT, total_dirs=INT, fits_count=INT, casatable_count=INT
)
FITS_INFO = obj(path=STR, exists=BOOL, shape=arr(INT), naxis=INT, header_keys=arr(STR), error=null(STR))


def human_size(size: int | float | None) -> str:
    """Bytes as the legacy browser printed them: ``512 B``, ``1.5 KB``, ``2.0 GB`` (powers of 1024)."""
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024.0 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024.0
    raise AssertionError("unreachable")


def _kept(name: str, include: str | None, exclude: str | None) -> bool:
    return (include is None or fnmatch.fnmatch(name, include)) and not (
        exclude is not None and fnmatch.fnmatch(name, exclude)
    )


def browse(data: dict[str, Any], args: Args) -> dict[str, Any]:
    """A ``DirectoryListing``; include/exclude glob patterns filter the page's entries by name."""
    listed = qa.listing(data, args)
    entries = [
        {
            "name": e["name"],
            "path": e["path"],
            "type": "directory" if e["isDir"] and e["kind"] == "directory" else e["kind"],
            "size": human_size(e["sizeBytes"]),
            "modified_time": e["modified"],
            "is_dir": e["isDir"],
        }
        for e in data["qaDirectory"]["entries"]
        if _kept(e["name"], args["include_pattern"], args["exclude_pattern"])
    ]
    return {
        "path": listed["path"],
        "entries": entries,
        "total_files": listed["total_files"],
        "total_dirs": listed["total_dirs"],
        "fits_count": listed["fits_count"],
        "casatable_count": listed["casatable_count"],
    }


THUMB_KINDS = ("fits", "image")
MAX_THUMBS = 200
SCANNED = 1000
"""Entries of the directory looked at for pictures (its first page, as ``/visualization/browse``)."""


def thumbnails(data: dict[str, Any], args: Args) -> HTMLResponse:
    """The legacy directory thumbnail page (HTML): one tile per FITS image or picture of the
    directory, each a PNG from ``/api/qa/thumbnail`` (rendered from the FITS data, cached)."""
    listed = data["qaDirectory"]
    pictures = [
        e
        for e in listed["entries"]
        if e["kind"] in THUMB_KINDS and _kept(e["name"], args["include_pattern"], args["exclude_pattern"])
    ][: args["limit"]]
    size = args["size"]
    tiles = "".join(
        '<figure class="thumb"><img loading="lazy" alt="{name}" '
        'src="/api/qa/thumbnail?path={path}&amp;size={size}"><figcaption>{name}</figcaption></figure>'.format(
            name=html.escape(e["name"]), path=html.escape(quote(e["path"], safe="/")), size=size
        )
        for e in pictures
    )
    title = html.escape(listed["path"])
    empty = "" if pictures else "<p>No FITS images or pictures in this directory.</p>"
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title><style>"
        ".thumbs{display:flex;flex-wrap:wrap;gap:8px}.thumb{margin:0;text-align:center;font:12px sans-serif}"
        f".thumb img{{max-width:{size}px;max-height:{size}px}}</style></head><body>"
        f"<h3>{title}</h3><p>{len(pictures)} of {listed['total']} entries</p>{empty}"
        f"<div class='thumbs'>{tiles}</div></body></html>"
    )
    return HTMLResponse(page)


def fits_info(data: dict[str, Any], args: Args) -> dict[str, Any]:
    found = qa.fits(data, args)
    return {
        "path": found["path"],
        "exists": True,
        "shape": found["shape"],
        "naxis": found["naxis"],
        "header_keys": found["header_keys"],
        "summary": found["hdus"],
        "statistics": found["statistics"],
        "error": None,
    }


def casatable_info(data: dict[str, Any], args: Args) -> dict[str, Any]:
    found = qa.casa(data, args)
    return {
        "path": found["path"],
        "exists": True,
        "nrows": found["nrows"],
        "columns": [c["name"] for c in found["columns"]],
        "column_details": found["columns"],
        "keywords": found["keywords"],
        "subtables": found["subtables"],
        "is_writable": False,  # the server opens tables read-only
        "error": None,
    }


VIEW_STATISTICS = ("nPixels", "nFinite", "min", "max", "mean", "std", "median", "madRms")
VIEW_HEADER_CARDS = ("OBJECT", "TELESCOP", "DATE-OBS", "BUNIT", "BMAJ", "BMIN", "BPA", "CRVAL1", "CRVAL2")


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(
        f"<tr><th>{html.escape(k)}</th><td>{_cell(v)}</td></tr>" for k, v in pairs if v is not None
    )


def fits_view(data: dict[str, Any], args: Args) -> HTMLResponse:
    """The QA page's FITS viewer (legacy: a JS9 page at 600 x 600): the file's summary (HDUs,
    shape, key header cards, pixel statistics, all read by astropy through the graph) and
    the image rendered as a PNG by ``/api/qa/thumbnail``, at the asked size. The page needs
    no script or internet (observatory networks); JS9 on the Sky page loads ``/images/{id}/fits``."""
    f = data["fitsFile"]
    path, shape = f["path"], f["dataShape"]
    hdus = "".join(
        f"<tr><td>{h['index']}</td><td>{html.escape(str(h['name']))}</td><td>{html.escape(str(h['kind']))}</td>"
        f"<td>{html.escape(' x '.join(str(n) for n in h['shape'] or []))}</td></tr>"
        for h in f["hdus"]
    )
    header = f["header"] if isinstance(f["header"], dict) else {}
    stats = f["statistics"] or {}
    summary = _rows(
        [("path", path), ("size", human_size(f["sizeBytes"])), ("shape", " x ".join(map(str, shape)) or None)]
        + [(card, header.get(card)) for card in VIEW_HEADER_CARDS]
        + [(key, stats.get(key)) for key in VIEW_STATISTICS]
    )
    width, height = args["width"], args["height"]
    picture = (
        f'<img class="fits-image" alt="{html.escape(path)}" width="{width}" height="{height}" '
        f'style="object-fit:contain" src="/api/qa/thumbnail?path={html.escape(quote(path, safe="/"))}'
        f'&amp;size={max(width, height)}">'
        if len(shape) >= 2
        else "<p>This HDU holds no image to display.</p>"
    )
    page = (
        f'<div class="fits-view"><h3>{html.escape(path.rsplit("/", 1)[-1])}</h3>'
        f'<table class="fits-summary">{summary}</table>'
        '<table class="fits-hdus"><thead><tr>'
        "<th>HDU</th><th>name</th><th>kind</th><th>shape</th></tr></thead>"
        f"<tbody>{hdus}</tbody></table>{picture}</div>"
    )
    return HTMLResponse(page)


CELL_CHARS = 80
"""A table viewer cell shows at most this many characters of its value (arrays are long)."""


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return html.escape(text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "\u2026")


def casatable_view(data: dict[str, Any], args: Args) -> HTMLResponse:
    """The QA page's CASA table viewer: the first rows and columns as an HTML table."""
    t = data["casaTable"]
    names = [c["name"] for c in t["columns"]][: args["max_cols"]]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in ["row", *names])
    body = "".join(
        f"<tr><td>{t['offset'] + i}</td>{''.join(f'<td>{_cell(row.get(n))}</td>' for n in names)}</tr>"
        for i, row in enumerate(t["rows"])
    )
    shown = (
        f"rows {t['offset']}-{t['offset'] + len(t['rows']) - 1} of {t['nRows']}" if t["rows"] else "no rows"
    )
    page = (
        f'<div class="casa-table-view"><p>{html.escape(t["path"])}: {shown}, '
        f"{len(names)} of {len(t['columns'])} columns</p>"
        f'<table class="casa-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    )
    return HTMLResponse(page)


GOOD_FLAGGED = 0.1
"""A table with this fraction of its solutions flagged or more is a reason (the QA's ``good`` limit)."""


NOTEBOOK_TYPES = ("full", "calibration", "image")
LEGACY_NOTEBOOK_TYPES = ("qa", "fits", "ms")
"""The QA notebook generator's menu (frontend ``QANotebookGenerator.tsx``: ``notebook_type:
"qa" | "fits" | "ms"``, default ``"qa"``). The legacy server ignored the field and always wrote
its one QA notebook; here they are the full notebook of the MS's group."""


async def fetch_generated_notebook(call: GraphCall, args: Args) -> Any:
    kind = args["notebook_type"]
    return await qa.fetch_notebook(
        call, {**args, "notebook_type": "full" if kind in LEGACY_NOTEBOOK_TYPES else kind}
    )


async def fetch_qa_notebook(call: GraphCall, args: Args) -> dict[str, Any]:
    """The MS's QA (calibration tables, flags, image), then its group's notebook (a write)."""
    cal, images = await qa.fetch_ms_qa(call, args)
    notebook = await qa.fetch_notebook(call, {**args, "group_id": None, "notebook_type": "full"})
    return {"qa": qa.ms_qa((cal, images), args), "notebook": notebook["generateQaNotebook"]}


def qa_summary(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    """The legacy ``QAResultSummary{ms_path, success, reasons, metrics, artifacts}`` (and the
    notebook's path). ``success``: the calibration quality is good or marginal (no table with
    30 % or more of its solutions flagged, none missing); each table at or over 10 % flagged,
    each problematic SPW and a missing or incomplete set of tables is a reason."""
    report, notebook = data["qa"], data["notebook"]
    cal = report["calibration_qa"]
    quality = cal["overall_quality"]
    reasons = [] if quality == "good" else [f"calibration quality is {quality}"]
    tables = {"K": cal["k_metrics"], "BP": cal["bp_metrics"], "G": cal["g_metrics"]}
    for kind, m in tables.items():
        if m is not None and m["flag_fraction"] is not None and m["flag_fraction"] >= GOOD_FLAGGED:
            reasons.append(f"{kind} table: {100 * m['flag_fraction']:.1f}% of solutions flagged")
    reasons += [f"SPW {s['spw_id']} is problematic" for s in cal["per_spw_stats"] if s["is_problematic"]]
    image = report["image_qa"]
    artifacts = [notebook["path"]] + [m["path"] for m in tables.values() if m is not None]
    if image is not None:
        artifacts.append(image["image_path"])
    return {
        "ms_path": report["ms_path"],
        "success": quality in ("good", "marginal"),
        "reasons": reasons,
        "metrics": {
            "overall_quality": quality,
            "flagged_fraction": cal["flags_total"],
            **cal["calibration_quality"],
            "tables": {kind: m for kind, m in tables.items() if m is not None},
            "image": image,
        },
        "artifacts": artifacts,
        "notebook_path": notebook["path"],
        "message": f"QA notebook written with {notebook['cells']} cells",
    }


def routes(settings: Settings) -> list[RestRoute]:
    path = Str("path", required=True, max_length=qa.PATH_CHARS)
    return [
        graphql_route(
            "GET",
            "/visualization/browse",
            qa.LISTING,
            browse,
            variables=lambda args: {"path": args["path"], "offset": args["offset"], "limit": args["limit"]},
            params=[
                Str("path", max_length=qa.PATH_CHARS, description="Default: the QA directory"),
                Bool("recursive", False, description="Ignored: one level per request, paged"),
                Str("include_pattern", max_length=PATTERN_CHARS, description="Glob on entry names"),
                Str("exclude_pattern", max_length=PATTERN_CHARS, description="Glob on entry names"),
                Int("offset", 0, ge=0, le=10_000_000),
                Int("limit", 200, ge=1, le=1000),
            ],
            response=LISTING,
            errors=(400, 404, 422),
            tag=TAG,
            summary="A directory under the data roots (the dashboard's file browser)",
        ),
        graphql_route(
            "GET",
            "/visualization/directory/thumbnails",
            qa.LISTING,
            thumbnails,
            variables=lambda args: {"path": args["path"], "offset": 0, "limit": SCANNED},
            params=[
                Str("path", max_length=qa.PATH_CHARS, description="Default: the QA directory"),
                Bool("recursive", False, description="Ignored: one level"),
                Str("include_pattern", max_length=PATTERN_CHARS, description="Glob on entry names"),
                Str("exclude_pattern", max_length=PATTERN_CHARS, description="Glob on entry names"),
                Int("limit", 60, ge=1, le=MAX_THUMBS, description="Tiles at most"),
                Int("size", 256, ge=32, le=1024, description="Thumbnail size in pixels"),
            ],
            response=None,
            media_type="text/html",
            errors=(400, 404, 422),
            tag=TAG,
            summary="Thumbnails of the FITS images and pictures of a directory (HTML page)",
        ),
        graphql_route(
            "GET",
            "/visualization/fits/info",
            qa.FITS,
            fits_info,
            variables=lambda args: {"path": args["path"], "hdu": 0},
            params=[path],
            response=obj(
                path=STR, exists=BOOL, shape=arr(INT), naxis=INT, header_keys=arr(STR), error=null(STR)
            ),
            errors=(400, 404, 422),
            tag=TAG,
            summary="A FITS file's shape, header keys and HDUs",
        ),
        graphql_route(
            "GET",
            "/visualization/fits/view",
            qa.FITS,
            fits_view,
            variables=lambda args: {"path": args["path"], "hdu": 0},
            params=[
                path,
                Int("width", 600, ge=64, le=2048, description="Display width, pixels"),
                Int("height", 600, ge=64, le=2048, description="Display height, pixels"),
            ],
            response=None,
            media_type="text/html",
            errors=(400, 404, 422),
            tag=TAG,
            summary="A FITS file's summary and its image (HTML, the QA page's FITS viewer)",
        ),
        graphql_route(
            "GET",
            "/visualization/casatable/info",
            qa.CASA,
            casatable_info,
            variables=lambda args: {"path": args["path"], "offset": 0, "rows": 0},
            params=[path],
            response=obj(path=STR, exists=BOOL, nrows=INT, columns=arr(STR), keywords=ANY, is_writable=BOOL),
            errors=(400, 404, 422),
            tag=TAG,
            summary="A CASA table's rows, columns, keywords and subtables",
        ),
        graphql_route(
            "GET",
            "/visualization/casatable/view",
            qa.CASA,
            casatable_view,
            variables=lambda args: {"path": args["path"], "offset": 0, "rows": args["max_rows"]},
            params=[
                path,
                Int("max_rows", 10, ge=1, le=100, description="Rows shown"),
                Int("max_cols", 10, ge=1, le=50, description="Columns shown"),
            ],
            response=None,
            media_type="text/html",
            errors=(400, 404, 422),
            tag=TAG,
            summary="A CASA table's first rows and columns (HTML, the QA page's table viewer)",
        ),
        multi_query_route(
            "POST",
            "/visualization/notebook/generate",
            [qa.NOTEBOOK, qa.GROUP_OF_MS],
            fetch_generated_notebook,
            lambda data, _args: {
                "notebook_path": data["generateQaNotebook"]["path"],
                "success": True,
                "message": f"notebook written with {data['generateQaNotebook']['cells']} cells",
            },
            body=[
                Str("ms_path", max_length=qa.PATH_CHARS),
                Str("group_id", max_length=64),
                Str(
                    "notebook_type",
                    "full",
                    enum=NOTEBOOK_TYPES + LEGACY_NOTEBOOK_TYPES,
                    description="The legacy menu's qa, fits and ms mean full",
                ),
                Str("output_path", max_length=qa.PATH_CHARS),
                Str("title", max_length=256, description="Ignored: the notebook names its group"),
                Str(
                    "qa_root",
                    max_length=qa.PATH_CHARS,
                    description="Ignored: notebooks go to the QA directory",
                ),
                Json("artifacts", description="Ignored: the notebook lists its group's QA artifacts"),
            ],
            response=obj(notebook_path=STR, success=BOOL, message=STR),
            errors=(400, 404, 422),
            tag=TAG,
            summary="Write a QA notebook for the observation group of an MS",
            role=Role.OPERATOR,  # writes a file and records it
        ),
        multi_query_route(
            "POST",
            "/visualization/notebook/qa",
            [CAL_QA, qa.IMAGE_QA, qa.NOTEBOOK, qa.GROUP_OF_MS],
            fetch_qa_notebook,
            qa_summary,
            body=[
                Str("ms_path", required=True, max_length=qa.PATH_CHARS),
                Str(
                    "qa_root",
                    max_length=qa.PATH_CHARS,
                    description="Ignored: notebooks go to the QA directory",
                ),
                Str("output_path", max_length=qa.PATH_CHARS, description="Under the data roots"),
                Json("thresholds", description="Ignored: the QA's own limits apply (10 % / 30 % flagged)"),
                Json("gaintables", description="Ignored: the tables beside the MS are used"),
                Json("extra_metadata", description="Ignored"),
            ],
            response=obj(ms_path=STR, success=BOOL, reasons=arr(STR), metrics=ANY, artifacts=arr(STR)),
            errors=(400, 404, 422),
            tag=TAG,
            summary="QA of an MS (calibration tables, flags, image) and a QA notebook for its group",
            role=Role.OPERATOR,  # writes a file and records it
        ),
    ]
