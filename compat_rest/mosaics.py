"""Mosaics: query by time range, detail, FITS download, create (queues a mosaic job)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from compat_rest.convert import iso_from_mjd, lower
from compat_rest.errors import validation_error
from compat_rest.files import data_file
from compat_rest.params import Args, Bool, Int, PathInt, Str, Time
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import INT, NUM, STR, TIME, arr, null, obj
from dsa110.auth.identity import Role
from dsa110.settings import Settings
from dsa110.times import datetime_to_mjd

TAG = "mosaics"
MAX_MOSAICS = 10_000
"""Most mosaics one query answers (20 graph pages); ``total`` counts them all regardless."""
MOSAIC_ID = PathInt("mosaic_id", "Integer mosaic id")

MOSAIC_FIELDS = """
  mosaicId name path status createdAt startMjd endMjd noiseJy beamMajorArcsec beamMinorArcsec
  beamPaDeg centerRaDeg centerDecDeg nImages nSources
"""

QUERY = f"""
query RestMosaics($first: Int!, $after: String, $filter: MosaicFilter) {{
  mosaics(first: $first, after: $after, filter: $filter, orderBy: START_MJD, direction: DESC) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {MOSAIC_FIELDS} }}
  }}
}}
"""
DETAIL = f"query RestMosaic($mosaicId: Int!) {{ mosaic(mosaicId: $mosaicId) {{ {MOSAIC_FIELDS} }} }}"
PATH = "query RestMosaicPath($mosaicId: Int!) { mosaic(mosaicId: $mosaicId) { mosaicId path } }"

MOSAIC = obj(
    id=INT,
    name=STR,
    path=STR,
    start_mjd=NUM,
    end_mjd=NUM,
    start_time=TIME,
    end_time=TIME,
    created_at=TIME,
    status=STR,
    n_images=INT,
    image_count=INT,
    n_sources=null(INT),
    source_count=null(INT),
    noise_jy=null(NUM),
    thumbnail_path=null(STR),
)


def mosaic(node: dict[str, Any]) -> dict[str, Any]:
    """The documented fields and the real server's ``Mosaic`` model names together."""
    return {
        "id": node["mosaicId"],
        "name": node["name"],
        "path": node["path"],
        "start_mjd": node["startMjd"],
        "end_mjd": node["endMjd"],
        "start_time": iso_from_mjd(node["startMjd"]),
        "end_time": iso_from_mjd(node["endMjd"]),
        "created_at": node["createdAt"],
        "status": lower(node["status"]),
        "n_images": node["nImages"],
        "image_count": node["nImages"],
        "n_sources": node["nSources"],
        "source_count": node["nSources"],
        "noise_jy": node["noiseJy"],
        "beam_major_arcsec": node["beamMajorArcsec"],
        "beam_minor_arcsec": node["beamMinorArcsec"],
        "beam_pa_deg": node["beamPaDeg"],
        "center_ra_deg": node["centerRaDeg"],
        "center_dec_deg": node["centerDecDeg"],
        "thumbnail_path": None,
    }


def _mjd(iso: str) -> float:
    return datetime_to_mjd(datetime.fromisoformat(iso.replace("Z", "+00:00")))


def query_variables(args: Args) -> dict[str, Any]:
    start, end = args["start_time"], args["end_time"]
    if start is None or end is None:
        # The legacy server answered an empty window with no mosaics; so do we.
        return {"first": 0, "filter": {"mjdMin": 0.0, "mjdMax": -1.0}}
    start_mjd, end_mjd = _mjd(start), _mjd(end)
    if end_mjd < start_mjd:
        raise validation_error("end_time is before start_time", location="body")
    # Overlap: mosaics ending at or after the start and starting at or before the end.
    # Every one of them, newest first, as the legacy server answered; `limit` cuts the list.
    first = args["limit"] if args["limit"] is not None else MAX_MOSAICS
    return {"first": first, "filter": {"mjdMin": start_mjd, "mjdMax": end_mjd}}


CREATE = """mutation RestMosaicCreate(
  $start: DateTime!, $end: DateTime!, $name: String, $calibrator: String
) {
  createMosaicJob(startTime: $start, endTime: $end, name: $name, calibratorName: $calibrator) {
    jobId state
  }
}"""
JOB = obj(id=INT, state=STR)


def create_variables(args: Args) -> dict[str, Any]:
    start = args["start_time"]
    end = args["end_time"]
    if end is None:
        moment = datetime.fromisoformat(start.replace("Z", "+00:00"))
        end = (moment + timedelta(minutes=args["timespan_minutes"])).isoformat().replace("+00:00", "Z")
    return {"start": start, "end": end, "name": args["name"], "calibrator": args["calibrator_name"]}


def routes(settings: Settings) -> list[RestRoute]:
    def fits(data: dict[str, Any], _args: Args) -> Any:
        node = data["mosaic"]
        return data_file(
            node["path"],
            settings.file_roots,
            media_type="application/fits",
            filename=f"mosaic-{node['mosaicId']}.fits",
        )

    return [
        graphql_route(
            "POST",
            "/mosaics/query",
            QUERY,
            lambda data, _args: {
                "mosaics": [mosaic(n) for n in data["mosaics"]["nodes"]],
                "total": data["mosaics"]["totalCount"],
            },
            variables=query_variables,
            paged=lambda data: data["mosaics"],
            body=[
                Time("start_time"),
                Time("end_time"),
                Int("limit", None, ge=1, le=MAX_MOSAICS, description="At most this many, newest first"),
            ],
            response=obj(mosaics=arr(MOSAIC), total=INT),
            tag=TAG,
            summary=f"Mosaics overlapping a time range, newest first (at most {MAX_MOSAICS}; "
            "`total` counts all)",
            role=Role.VIEWER,  # a read sent as POST
        ),
        graphql_route(
            "POST",
            "/mosaics/create",
            CREATE,
            lambda data, _args: {
                "status": "queued",
                "message": "Mosaic job queued; the mosaic appears under /mosaics when the job is done.",
                "mosaic_id": None,
                "job_id": data["createMosaicJob"]["jobId"],
                "job": {
                    "id": data["createMosaicJob"]["jobId"],
                    "state": lower(data["createMosaicJob"]["state"]),
                },
            },
            variables=create_variables,
            body=[
                Time("start_time", required=True),
                Time("end_time", description="Default: start_time + timespan_minutes"),
                Str("name", max_length=128),
                Str("calibrator_name", max_length=64),
                Int("timespan_minutes", 50, ge=1, le=10_080),
                Bool("wait_for_published", True),
            ],
            response=obj(
                status=STR, message=STR, mosaic_id=null(INT), job_id=INT, job=obj(id=INT, state=STR)
            ),
            tag=TAG,
            summary="Queue a mosaic job for a time range",
            role=Role.OPERATOR,
        ),
        graphql_route(
            "GET",
            "/mosaics/{mosaic_id}",
            DETAIL,
            lambda data, _args: mosaic(data["mosaic"]),
            variables=lambda args: {"mosaicId": args["mosaic_id"]},
            params=[MOSAIC_ID],
            response=MOSAIC,
            tag=TAG,
            summary="Mosaic detail",
        ),
        graphql_route(
            "GET",
            "/mosaics/{mosaic_id}/fits",
            PATH,
            fits,
            variables=lambda args: {"mosaicId": args["mosaic_id"]},
            params=[MOSAIC_ID],
            response=None,
            media_type="application/fits",
            tag=TAG,
            summary="Download the mosaic FITS file",
        ),
    ]
