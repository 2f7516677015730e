"""ESE detection: candidates, alert history, and the per-candidate source paths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from compat_rest.convert import compact, iso_from_mjd, lower
from compat_rest.paging import LEGACY_MAX_LIMIT
from compat_rest.params import Args, Bool, Float, Int, Str
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import INT, NUM, STR, TIME, arr, null, obj
from compat_rest.sources import source_subroutes
from dsa110.db.enums import ESE_CANDIDATE_STATUSES as STATUSES
from dsa110.settings import Settings

TAG = "ese"

CANDIDATES = """
query RestEseCandidates($first: Int!, $after: String, $filter: EseCandidateFilter) {
  eseCandidates(first: $first, after: $after, filter: $filter) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes {
      candidateId status score significance startMjd endMjd depth baselineFluxJy minFluxJy
      detectorVersion flaggedAt updatedAt changedBy notes durationDays phase kind falseAlarmProbability
      source { sourceId raDeg decDeg meanFluxJy maxFluxJy firstMjd lastMjd catalogFluxJy sigmaDeviation }
    }
  }
}
"""

ALERTS = """
query RestAlerts($first: Int!, $after: String) {
  alerts(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      alertId alertType severity message triggeredAt resolvedAt
      source { sourceId }
      candidate { candidateId }
    }
  }
}
"""

CANDIDATE = obj(
    id=INT,
    source_id=STR,
    ra_deg=NUM,
    dec_deg=NUM,
    first_detection_at=TIME,
    last_detection_at=TIME,
    max_sigma_dev=NUM,
    current_flux_jy=null(NUM),
    baseline_flux_jy=NUM,
    peak_flux_jy=null(NUM),
    min_flux_jy=NUM,
    depth=NUM,
    score=NUM,
    start_mjd=NUM,
    end_mjd=NUM,
    duration_days=NUM,
    status=STR,
    notes=null(STR),
    phase=null(STR),
    kind=null(STR),
    false_alarm_probability=null(NUM),
)
ALERT = obj(
    id=INT,
    source_id=null(STR),
    candidate_id=null(INT),
    alert_type=STR,
    severity=STR,
    message=STR,
    triggered_at=TIME,
    resolved_at=null(TIME),
)


def candidate(node: dict[str, Any]) -> dict[str, Any]:
    source = node["source"]
    return {
        "id": node["candidateId"],
        "source_id": source["sourceId"],
        "ra_deg": source["raDeg"],
        "dec_deg": source["decDeg"],
        # The source's first and latest epochs (the legacy projection: MIN/MAX of its
        # measurement times); `flagged_at` says when the detector flagged it.
        "first_detection_at": iso_from_mjd(source["firstMjd"]) or node["flaggedAt"],
        "last_detection_at": iso_from_mjd(source["lastMjd"]) or node["flaggedAt"],
        # The detector's significance; the legacy statistic max|F - mean| / std has its own key.
        "max_sigma_dev": node["significance"],
        "sigma_deviation": source["sigmaDeviation"],
        "current_flux_jy": source["meanFluxJy"],
        # The detector's out-of-dip baseline (the legacy server put the catalog flux here;
        # that value is under its own key).
        "baseline_flux_jy": node["baselineFluxJy"],
        "catalog_flux_jy": source["catalogFluxJy"],
        "peak_flux_jy": source["maxFluxJy"],
        "min_flux_jy": node["minFluxJy"],
        "depth": node["depth"],
        "score": node["score"],
        "start_mjd": node["startMjd"],
        "end_mjd": node["endMjd"],
        "duration_days": node["durationDays"],
        "status": lower(node["status"]),
        "notes": node["notes"],
        "detector_version": node["detectorVersion"],
        "flagged_at": node["flaggedAt"],
        "updated_at": node["updatedAt"],
        "changed_by": node["changedBy"],
        # ese-drw-3.0 (additive; null for older and legacy rows): the detector's phase, what
        # part of the dip it saw, and the calibrated false-alarm probability per source-year.
        "phase": lower(node["phase"]),
        "kind": lower(node["kind"]),
        "false_alarm_probability": node["falseAlarmProbability"],
    }


def candidate_variables(operating_point: float) -> Callable[[Args], dict[str, Any]]:
    """The list's filter. By default the candidates flagged at the survey's operating point
    (``Settings.ese_operating_point``): the dashboard's list is what the detector stands by
    at the rate its figures are measured at, not every candidate it opened to rate (those
    far above it, and those it rejected since, are a steady source's noise: ~1.4 % of steady
    source-years open one, ``dsa110.science.ese_live_null``). ``max_false_alarm`` chooses
    another point; ``all_candidates`` lists every one."""

    def variables(args: Args) -> dict[str, Any]:
        status = args["status"]
        chosen = args.get("max_false_alarm")
        return {
            "first": args["limit"],
            "filter": compact(
                {
                    "statuses": None if status == "all" else [status.upper()],
                    "minSignificance": args["min_sigma"],
                    "maxFalseAlarm": chosen,
                    "operatingPoint": None
                    if chosen is not None or args["all_candidates"]
                    else operating_point,
                }
            ),
        }

    return variables


def shape_candidates(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    connection = data["eseCandidates"]
    return {"candidates": [candidate(n) for n in connection["nodes"]], "total": connection["totalCount"]}


def alert(node: dict[str, Any]) -> dict[str, Any]:
    source, cand = node["source"], node["candidate"]
    return {
        "id": node["alertId"],
        "source_id": source["sourceId"] if source else None,
        "candidate_id": cand["candidateId"] if cand else None,
        "alert_type": node["alertType"],
        "severity": node["severity"],
        "message": node["message"],
        "triggered_at": node["triggeredAt"],
        "resolved_at": node["resolvedAt"],
    }


def routes(settings: Settings) -> list[RestRoute]:
    return [
        graphql_route(
            "GET",
            "/ese/candidates",
            CANDIDATES,
            shape_candidates,
            variables=candidate_variables(settings.ese_operating_point),
            paged=lambda data: data["eseCandidates"],
            params=[
                Int("limit", 100, ge=1, le=LEGACY_MAX_LIMIT),
                Str(
                    "status",
                    "active",
                    enum=(*STATUSES, "all"),
                    description="Review state; `all` for every state (the legacy server listed only active)",
                ),
                Float("min_sigma", description="Lowest significance (legacy `min_sigma`)"),
                Float(
                    "max_false_alarm",
                    ge=0.0,
                    le=1.0,
                    description="Highest false-alarm probability per steady source-year (ese-drw-3.0); "
                    "default: the survey's operating point (`DSA110_ESE_OPERATING_POINT`, here "
                    f"{settings.ese_operating_point:g}), candidates the detector rejected since left out, "
                    "legacy (unrated) ones kept",
                ),
                Bool(
                    "all_candidates",
                    False,
                    description="Every candidate the detector opened, at any false-alarm probability, "
                    "rejected ones too",
                ),
            ],
            response=obj(candidates=arr(CANDIDATE), total=INT),
            tag=TAG,
            summary="ESE candidates, highest score first",
        ),
        graphql_route(
            "GET",
            "/alerts/history",
            ALERTS,
            lambda data, _args: [alert(n) for n in data["alerts"]["nodes"]],
            variables=lambda args: {"first": args["limit"]},
            paged=lambda data: data["alerts"],
            params=[Int("limit", 50, ge=1, le=LEGACY_MAX_LIMIT)],
            response=arr(ALERT),
            tag=TAG,
            summary="Alert log, newest first (a bare list, as documented)",
        ),
        *source_subroutes("/ese/candidates", TAG),
    ]
