"""Pointing and observing: pointing history, calibrator matches, timeline (+ PNG), groups, reprocess."""

from __future__ import annotations

import io
import itertools
from typing import Any

from PIL import Image, ImageDraw
from starlette.responses import Response

from compat_rest.convert import compact, iso_from_mjd, lower
from compat_rest.core import recent_group
from compat_rest.graph import GraphCall
from compat_rest.params import Args, Bool, Float, Int, PathStr
from compat_rest.routing import RestRoute, graphql_route, multi_query_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, null, obj
from dsa110.auth.identity import Role
from dsa110.settings import Settings

TAG = "observing"
PAGE = 500
MAX_GROUPS = 50_000  # pointing history over ~170 days of 5-minute groups; beyond, the answer is cut
GROUP_ID = PathStr("group_id", "Observation timestamp `YYYY-MM-DDTHH:MM:SS`", max_length=64)

POINTING = """
query RestPointing($first: Int!, $after: String, $filter: GroupFilter) {
  groups(first: $first, after: $after, filter: $filter, orderBy: GROUP_ID, direction: ASC) {
    pageInfo { hasNextPage endCursor }
    nodes { groupId midMjd measurementSets { raDeg decDeg } }
  }
}
"""

TIMELINE = """
query RestTimeline($gapThresholdHours: Float!) {
  observationTimeline(gapThresholdHours: $gapThresholdHours) {
    segments { firstGroupId startMjd endMjd groupCount subbandFileCount }
    groupCount subbandFileCount truncated
  }
}
"""

MATCHES = """
query RestCalibratorMatches($first: Int!, $filter: GroupFilter) {
  groups(first: $first, filter: $filter, orderBy: RECEIVED_AT, direction: DESC) {
    nodes { groupId hasCalibrator calibrators receivedAt updatedAt }
  }
}
"""

GROUP = """
query RestGroup($groupId: String!) {
  group(groupId: $groupId) {
    groupId state receivedAt updatedAt presentSubbands expectedSubbands hasCalibrator calibrators
    retryCount error midMjd
    qaArtifacts { name path createdAt }
  }
}
"""

REPROCESS = (
    "mutation RestReprocess($groupId: String!) { reprocessGroup(groupId: $groupId) { groupId state } }"
)


async def all_groups(call: GraphCall, document: str, variables: dict[str, Any]) -> tuple[list[Any], bool]:
    """Every group the document selects, page by page (the graph caps a page)."""
    nodes: list[Any] = []
    after = None
    while True:
        data = await call(document, {**variables, "first": PAGE, "after": after})
        connection = data["groups"]
        nodes.extend(connection["nodes"])
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes, False
        if len(nodes) >= MAX_GROUPS:
            return nodes[:MAX_GROUPS], True
        after = connection["pageInfo"]["endCursor"]


async def fetch_pointing(call: GraphCall, args: Args) -> tuple[list[Any], bool]:
    filter_ = {"mjdMin": args["start_mjd"], "mjdMax": args["end_mjd"]}
    return await all_groups(call, POINTING, {"filter": filter_})


def shape_pointing(found: tuple[list[Any], bool], _args: Args) -> dict[str, Any]:
    """One sample per group: its mid-epoch and the phase centre of its Measurement Set
    (what the legacy converter recorded in ``pointing_history``). ``truncated``: the range
    held more than ``MAX_GROUPS`` groups and the answer stops at the first of them (ask
    for a later ``start_mjd`` for the rest)."""
    nodes, truncated = found
    items = []
    for node in nodes:
        positions = [
            ms for ms in node["measurementSets"] if ms["raDeg"] is not None and ms["decDeg"] is not None
        ]
        if not positions:
            continue
        items.append(
            {
                "timestamp": node["midMjd"],
                "mjd": node["midMjd"],
                "time": iso_from_mjd(node["midMjd"]),
                "group_id": node["groupId"],
                "ra_deg": positions[0]["raDeg"],
                "dec_deg": positions[0]["decDeg"],
            }
        )
    return {"items": items, "truncated": truncated, "limit": MAX_GROUPS}


def shape_matches(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    items, flat = [], []
    for node in data["groups"]["nodes"]:
        matches = node["calibrators"] if isinstance(node["calibrators"], list) else []
        items.append(
            {
                "group_id": node["groupId"],
                "matched": bool(node["hasCalibrator"]),
                "matches": matches,
                "received_at": node["receivedAt"],
                "last_update": node["updatedAt"],
            }
        )
        for match in matches:
            if isinstance(match, dict):
                flat.append(
                    {
                        "target_group_id": node["groupId"],
                        "calibrator_name": match.get("name"),
                        "sep_deg": match.get("sep_deg"),
                        "weighted_flux": match.get("weighted_flux"),
                        # The document's calibrator-group pairing never existed in the real
                        # pipeline (calibrators are sources in the beam); kept null.
                        "calibrator_group_id": None,
                        "time_diff_minutes": None,
                        "quality_score": None,
                    }
                )
    return {"items": items, "matches": flat}


def timeline_variables(args: Args) -> dict[str, Any]:
    # maxGroups left to the graph's default: the most groups a timeline covers.
    return {"gapThresholdHours": args["gap_threshold_hours"]}


def timeline(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    """Groups split into segments wherever consecutive epochs are more than the threshold apart
    (legacy-pipeline-facts §3.10, on the groups we know rather than a directory walk); the
    graph computes the segments in the database, this adds the gaps and the legacy names."""
    found = data["observationTimeline"]
    segments = [
        {
            "group_id": s["firstGroupId"],
            "start_mjd": s["startMjd"],
            "end_mjd": s["endMjd"],
            "file_count": s["subbandFileCount"],
            "n_groups": s["groupCount"],
        }
        for s in found["segments"]
    ]
    hours = 24.0
    observations = [{**s, "duration_hours": (s["end_mjd"] - s["start_mjd"]) * hours} for s in segments]
    gaps = [
        {
            "start_mjd": a["end_mjd"],
            "end_mjd": b["start_mjd"],
            "duration_hours": (b["start_mjd"] - a["end_mjd"]) * hours,
        }
        for a, b in itertools.pairwise(segments)
    ]
    return {
        "observations": observations,
        "gaps": gaps,
        "earliest_time": iso_from_mjd(segments[0]["start_mjd"]) if segments else None,
        "latest_time": iso_from_mjd(segments[-1]["end_mjd"]) if segments else None,
        "total_files": found["subbandFileCount"],
        "unique_timestamps": found["groupCount"],
        "segments": [
            {
                "start_time": iso_from_mjd(s["start_mjd"]),
                "end_time": iso_from_mjd(s["end_mjd"]),
                "file_count": s["file_count"],
            }
            for s in segments
        ],
        "truncated": found["truncated"],
    }


def timeline_png(data: dict[str, Any], args: Args) -> Response:
    """One horizontal bar per observing segment over the whole span."""
    summary = timeline(data, args)
    width, height = args["width"] * 100, args["height"] * 100
    picture = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(picture)
    observations = summary["observations"]
    margin = 40
    if observations:
        start, end = observations[0]["start_mjd"], observations[-1]["end_mjd"]
        span = max(end - start, 1e-6)
        scale = (width - 2 * margin) / span
        for segment in observations:
            x0 = margin + (segment["start_mjd"] - start) * scale
            x1 = max(x0 + 2, margin + (segment["end_mjd"] - start) * scale)
            draw.rectangle((x0, height * 0.35, x1, height * 0.65), fill=(31, 119, 180))
        draw.text(
            (margin, height - 25), f"{summary['earliest_time']}  ->  {summary['latest_time']}", fill="black"
        )
    else:
        draw.text((margin, height // 2), "no observations", fill="black")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return Response(buffer.getvalue(), media_type="image/png")


def shape_group(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    node = data["group"]
    state = lower(node["state"])
    return {
        **recent_group(node),
        "created_at": node["receivedAt"],
        "completed_at": node["updatedAt"] if state == "completed" else None,
        "mid_mjd": node["midMjd"],
        "retry_count": node["retryCount"],
        "error": node["error"],
        # legacy GroupDetail.qa: QAArtifact{group_id, name, path, created_at}
        "qa": [
            {"group_id": node["groupId"], "name": a["name"], "path": a["path"], "created_at": a["createdAt"]}
            for a in node.get("qaArtifacts") or []
        ],
        "perf_total_time": None,
        "writer_type": None,
    }


TIMELINE_PARAMS = [Float("gap_threshold_hours", 1.0, ge=0.0, le=8760.0)]


def routes(settings: Settings) -> list[RestRoute]:
    return [
        multi_query_route(
            "GET",
            "/pointing_history",
            [POINTING],
            fetch_pointing,
            shape_pointing,
            params=[
                Float("start_mjd", required=True, ge=0.0, le=100_000.0),
                Float("end_mjd", required=True, ge=0.0, le=100_000.0),
            ],
            response=obj(
                items=arr(obj(timestamp=NUM, ra_deg=NUM, dec_deg=NUM, group_id=STR, time=TIME)),
                truncated=BOOL,
                limit=INT,
            ),
            tag=TAG,
            summary="Pointing (MS phase centre) per observation group in an MJD range",
        ),
        graphql_route(
            "GET",
            "/calibrator_matches",
            MATCHES,
            shape_matches,
            variables=lambda args: {
                "first": args["limit"],
                "filter": compact({"hasCalibrator": True if args["matched_only"] else None}),
            },
            params=[Int("limit", 50, ge=1, le=500), Bool("matched_only", False)],
            response=obj(
                items=arr(
                    obj(group_id=STR, matched=BOOL, matches=arr(ANY), received_at=TIME, last_update=TIME)
                ),
                matches=arr(obj(target_group_id=STR, calibrator_name=null(STR))),
            ),
            tag=TAG,
            summary="Calibrators in the beam of recent observation groups",
        ),
        graphql_route(
            "GET",
            "/observation_timeline",
            TIMELINE,
            timeline,
            variables=timeline_variables,
            params=TIMELINE_PARAMS,
            response=obj(
                observations=arr(obj(group_id=STR, start_mjd=NUM, end_mjd=NUM, duration_hours=NUM)),
                gaps=arr(obj(start_mjd=NUM, end_mjd=NUM, duration_hours=NUM)),
                earliest_time=null(TIME),
                latest_time=null(TIME),
                total_files=INT,
                unique_timestamps=INT,
                segments=arr(obj(start_time=TIME, end_time=TIME, file_count=INT)),
            ),
            tag=TAG,
            summary="Observing segments and the gaps between them",
        ),
        graphql_route(
            "GET",
            "/observation_timeline/plot",
            TIMELINE,
            timeline_png,
            variables=timeline_variables,
            params=[*TIMELINE_PARAMS, Int("width", 16, ge=2, le=40), Int("height", 4, ge=1, le=20)],
            response=None,
            media_type="image/png",
            tag=TAG,
            summary="The observation timeline as a PNG",
        ),
        graphql_route(
            "GET",
            "/groups/{group_id}",
            GROUP,
            shape_group,
            variables=lambda args: {"groupId": args["group_id"]},
            params=[GROUP_ID],
            response=obj(
                group_id=STR,
                state=STR,
                subbands_present=INT,
                expected_subbands=INT,
                has_calibrator=null(BOOL),
                created_at=TIME,
                completed_at=null(TIME),
                received_at=TIME,
                last_update=TIME,
                qa=arr(obj(group_id=STR, name=STR, path=STR, created_at=TIME)),
            ),
            tag=TAG,
            summary="An observation group",
        ),
        graphql_route(
            "POST",
            "/reprocess/{group_id}",
            REPROCESS,
            lambda data, _args: {
                "ok": True,
                "group_id": data["reprocessGroup"]["groupId"],
                "state": lower(data["reprocessGroup"]["state"]),
            },
            variables=lambda args: {"groupId": args["group_id"]},
            params=[GROUP_ID],
            response=obj(ok=BOOL),
            tag=TAG,
            summary="Queue an observation group for reprocessing",
            role=Role.OPERATOR,
        ),
    ]
