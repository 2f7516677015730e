"""Table exports over HTTP: sources, light curves, an image's measurements, ESE candidates.

Two ways in, one machinery:

* export URLs (``/exports/sources.csv?filter=...``), which the graph hands out
  (``Query.sourcesExportUrl``, ``Source.lightCurveExportUrl``, ...): every row the
  filter selects, paged through the graph 500 at a time and streamed, so a 10^6-row
  export holds one page in memory;
* ``?format=votable|csv|ecsv|fits`` on the REST forms (``/api/sources/search``,
  ``/api/sources/{id}/lightcurve``, ``/api/images/{id}/measurements``,
  ``/api/ese/candidates``): the same rows the JSON answer would hold, as a table.

Like every compat route, an export runs GraphQL documents against the schema (the
filter is the graph's own input, validated by it); the first page is fetched before
the response starts, so a bad filter or an unknown source is a 4xx envelope, not a
broken download.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from compat_rest.convert import page_window
from compat_rest.errors import ApiError, validation_error
from compat_rest.ese import candidate_variables
from compat_rest.graph import GraphCall, GraphRunner
from compat_rest.params import Str
from compat_rest.query_json import json_parameter
from compat_rest.routing import RestRoute
from compat_rest.sources import search_variables
from dsa110.exports.columns import ESE_CANDIDATES, LIGHT_CURVE, MEASUREMENTS, SOURCES, Row, TableSpec
from dsa110.exports.stream import FORMATS, encode, filename
from dsa110.settings import Settings

log = logging.getLogger("dsa110.exports")

PAGE: Final = 500
MAX_FILTER_CHARS: Final = 16_384
MAX_FILTER_DEPTH: Final = 8
"""Nesting a ``filter`` may hold: the graph's filter inputs need 2 (``{"cone": {...}}``)."""
MAX_IMAGE_ID: Final = 2**31 - 1  # the graph's Int (32 bits)
FORMAT_PARAM = Str(
    "format", "json", enum=("json", *FORMATS), description="json, or a table: votable, csv, ecsv, fits"
)

# --- the graph documents and their rows -------------------------------------------------

PAGE_INFO = "pageInfo { hasNextPage endCursor }"

SOURCES_DOC = f"""
query ExportSources(
  $filter: SourceFilter, $orderBy: SourceOrderField!, $direction: OrderDirection!,
  $first: Int!, $after: String
) {{
  sources(filter: $filter, orderBy: $orderBy, direction: $direction, first: $first, after: $after) {{
    {PAGE_INFO}
    nodes {{
      sourceId raDeg decDeg catalogFluxJy nEpochs meanFluxJy minFluxJy maxFluxJy v eta chi2Nu
      sigmaDeviation vsAbsSignificantMax mAbsSignificantMax firstMjd lastMjd maxSnr newSource newHighSigma
    }}
  }}
}}
"""

LIGHT_CURVE_DOC = """
query ExportLightCurve($sourceId: String!) {
  source(sourceId: $sourceId) {
    sourceId raDeg decDeg
    lightCurve {
      nReferences
      points { mjd time fluxJy fluxErrJy normFluxJy normFluxErrJy corrected imageId }
    }
    eseCandidates { candidateId status startMjd endMjd significance depth baselineFluxJy }
  }
}
"""

MEASUREMENTS_DOC = f"""
query ExportMeasurements($imageId: Int!, $first: Int!, $after: String) {{
  image(imageId: $imageId) {{
    imageId path midMjd freqGhz beamMajorArcsec beamMinorArcsec beamPaDeg noiseJy
    measurements(first: $first, after: $after) {{
      {PAGE_INFO}
      nodes {{
        source {{ sourceId }} raDeg decDeg mjd peakFluxJy peakFluxErrJy intFluxJy intFluxErrJy
        localRmsJy snr forced
      }}
    }}
  }}
}}
"""

CANDIDATES_DOC = f"""
query ExportEseCandidates(
  $filter: EseCandidateFilter, $orderBy: EseCandidateOrderField!, $direction: OrderDirection!,
  $first: Int!, $after: String
) {{
  eseCandidates(filter: $filter, orderBy: $orderBy, direction: $direction, first: $first, after: $after) {{
    {PAGE_INFO}
    nodes {{
      candidateId status score significance startMjd endMjd durationDays depth baselineFluxJy minFluxJy
      detectorVersion phase kind falseAlarmProbability redNoiseRms flaggedAt updatedAt changedBy notes
      source {{ sourceId raDeg decDeg }}
    }}
  }}
}}
"""

_SOURCE_FIELDS = (
    *("sourceId", "raDeg", "decDeg", "catalogFluxJy", "nEpochs", "meanFluxJy", "minFluxJy", "maxFluxJy"),
    *("v", "eta", "chi2Nu", "sigmaDeviation", "vsAbsSignificantMax", "mAbsSignificantMax"),
    *("firstMjd", "lastMjd", "maxSnr", "newSource", "newHighSigma"),
)


def source_row(node: Mapping[str, Any]) -> Row:
    return tuple(node[name] for name in _SOURCE_FIELDS)


def measurement_row(node: Mapping[str, Any]) -> Row:
    return (
        node["source"]["sourceId"],
        node["raDeg"],
        node["decDeg"],
        node["mjd"],
        node["peakFluxJy"],
        node["peakFluxErrJy"],
        node["intFluxJy"],
        node["intFluxErrJy"],
        node["localRmsJy"],
        node["snr"],
        node["forced"],
    )


def candidate_row(node: Mapping[str, Any]) -> Row:
    source = node["source"]
    return (
        node["candidateId"],
        source["sourceId"],
        source["raDeg"],
        source["decDeg"],
        str(node["status"]).lower(),
        node["score"],
        node["significance"],
        node["startMjd"],
        node["endMjd"],
        node["durationDays"],
        node["depth"],
        node["baselineFluxJy"],
        node["minFluxJy"],
        node["detectorVersion"],
        _lower(node["phase"]),
        _lower(node["kind"]),
        node["falseAlarmProbability"],
        node["redNoiseRms"],
        node["flaggedAt"],
        node["updatedAt"],
        node["changedBy"],
        node["notes"],
    )


def _lower(value: Any) -> str | None:
    """An enum's value as the database spells it (``CONFIRMED`` -> ``confirmed``), None kept."""
    return None if value is None else str(value).lower()


def light_curve_rows(source: Mapping[str, Any]) -> list[Row]:
    """Raw and normalised points, each marked with the candidate window that holds it."""
    windows = source["eseCandidates"]
    rows: list[Row] = []
    for p in source["lightCurve"]["points"]:
        holder = next((c for c in windows if c["startMjd"] <= p["mjd"] <= c["endMjd"]), None)
        rows.append(
            (
                p["mjd"],
                p["time"],
                p["fluxJy"],
                p["fluxErrJy"],
                p["normFluxJy"],
                p["normFluxErrJy"],
                p["corrected"],
                p["imageId"],
                holder is not None,
                holder["candidateId"] if holder is not None else 0,
            )
        )
    return rows


def light_curve_meta(source: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "source_id": source["sourceId"],
        "ra_deg": source["raDeg"],
        "dec_deg": source["decDeg"],
        "n_references": source["lightCurve"]["nReferences"],
        "ese_windows": [
            {
                "candidate_id": c["candidateId"],
                "status": str(c["status"]).lower(),
                "start_mjd": c["startMjd"],
                "end_mjd": c["endMjd"],
                "significance": c["significance"],
                "depth": c["depth"],
                "baseline_flux_jy": c["baselineFluxJy"],
            }
            for c in source["eseCandidates"]
        ],
    }


_IMAGE_META = {
    "imageId": "image_id",
    "path": "path",
    "midMjd": "mid_mjd",
    "freqGhz": "freq_ghz",
    "beamMajorArcsec": "beam_major_arcsec",
    "beamMinorArcsec": "beam_minor_arcsec",
    "beamPaDeg": "beam_pa_deg",
    "noiseJy": "noise_jy",
}


def image_meta(image: Mapping[str, Any]) -> dict[str, Any]:
    return {name: image[key] for key, name in _IMAGE_META.items()}


# --- paging through a connection ----------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """A connection to page through: which document, where the connection is, how a node becomes a row."""

    spec: TableSpec
    document: str
    connection: Callable[[Mapping[str, Any]], Mapping[str, Any]]
    row: Callable[[Mapping[str, Any]], Row]
    meta: Callable[[Mapping[str, Any]], dict[str, Any]] = field(default=lambda _data: {})


SOURCES_LISTING = Listing(SOURCES, SOURCES_DOC, lambda d: d["sources"], source_row)
CANDIDATES_LISTING = Listing(ESE_CANDIDATES, CANDIDATES_DOC, lambda d: d["eseCandidates"], candidate_row)
MEASUREMENTS_LISTING = Listing(
    MEASUREMENTS,
    MEASUREMENTS_DOC,
    lambda d: d["image"]["measurements"],
    measurement_row,
    lambda d: image_meta(d["image"]),
)


@dataclass
class Prepared:
    """An export whose first page is in hand: its metadata, first rows and the rest to come."""

    spec: TableSpec
    meta: dict[str, Any]
    first: list[Row]
    rest: AsyncIterator[list[Row]]


async def _no_more() -> AsyncIterator[list[Row]]:
    return
    yield  # an empty async generator


async def prepare_listing(
    call: GraphCall,
    listing: Listing,
    variables: dict[str, Any],
    max_rows: int,
    after: str | None = None,
    page: int = PAGE,
) -> Prepared:
    """Fetch the first page now (errors surface here) and page lazily after it, up to ``max_rows``."""
    size = min(page, max_rows)
    data = await call(listing.document, {**variables, "first": size, "after": after})
    connection = listing.connection(data)
    first = [listing.row(node) for node in connection["nodes"]][:max_rows]

    async def rest() -> AsyncIterator[list[Row]]:
        sent, info = len(first), connection["pageInfo"]
        while info["hasNextPage"] and sent < max_rows:
            data_ = await call(
                listing.document,
                {**variables, "first": min(page, max_rows - sent), "after": info["endCursor"]},
            )
            connection_ = listing.connection(data_)
            rows = [listing.row(node) for node in connection_["nodes"]]
            if not rows:
                return
            sent += len(rows)
            info = connection_["pageInfo"]
            yield rows

    return Prepared(listing.spec, listing.meta(data), first, rest())


async def prepare_light_curve(call: GraphCall, source_id: str) -> Prepared:
    data = await call(LIGHT_CURVE_DOC, {"sourceId": source_id})
    source = data["source"]
    return Prepared(LIGHT_CURVE, light_curve_meta(source), light_curve_rows(source), _no_more())


def table_response(
    prepared: Prepared, fmt: str, stem: str, query: Mapping[str, Any] | None = None
) -> Response:
    """The prepared export as a streamed download in ``fmt``."""
    meta = {**prepared.meta, "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
    if query:
        meta["query"] = dict(query)

    async def chunks() -> AsyncIterator[list[Row]]:
        yield prepared.first
        try:
            async for rows in prepared.rest:
                yield rows
        except ApiError as error:
            # Headers are gone; the table ends short. Logged: a concurrent change, or a bug.
            log.warning("export of %s stopped after its first rows: %s", stem, error.message)

    body = encode(prepared.spec, fmt, chunks(), meta=meta)
    disposition = f'attachment; filename="{filename(stem, fmt)}"'
    return StreamingResponse(
        body, media_type=FORMATS[fmt].media_type, headers={"content-disposition": disposition}
    )


# --- ?format= on the REST forms -----------------------------------------------------------

Prepare = Callable[[GraphCall, dict[str, Any], Settings], Any]
"""A table answer's rows for one REST form (the server's settings: the ESE operating point)."""


def _search(call: GraphCall, args: dict[str, Any], settings: Settings) -> Any:
    variables = search_variables(args)
    variables.pop("withPoints")
    first = variables.pop("first")
    return prepare_listing(call, SOURCES_LISTING, variables, first, variables.pop("after"))


def _candidates(call: GraphCall, args: dict[str, Any], settings: Settings) -> Any:
    variables = candidate_variables(settings.ese_operating_point)(args)
    first = variables.pop("first")
    return prepare_listing(
        call, CANDIDATES_LISTING, {**variables, "orderBy": "SCORE", "direction": "DESC"}, first
    )


def _measurements(call: GraphCall, args: dict[str, Any], settings: Settings) -> Any:
    window = page_window(args["page"], args["page_size"])
    return prepare_listing(
        call, MEASUREMENTS_LISTING, {"imageId": args["image_id"]}, window["first"], window["after"]
    )


def _light_curve(call: GraphCall, args: dict[str, Any], settings: Settings) -> Any:
    return prepare_light_curve(call, args["source_id"])


FORMATTED: Final[Mapping[tuple[str, str], tuple[Prepare, Callable[[dict[str, Any]], str]]]] = {
    ("POST", "/sources/search"): (_search, lambda _a: "sources"),
    ("GET", "/sources/{source_id}/lightcurve"): (_light_curve, lambda a: f"lightcurve_{a['source_id']}"),
    ("GET", "/ese/candidates/{source_id}/lightcurve"): (
        _light_curve,
        lambda a: f"lightcurve_{a['source_id']}",
    ),
    ("GET", "/images/{image_id}/measurements"): (
        _measurements,
        lambda a: f"image_{a['image_id']}_measurements",
    ),
    ("GET", "/ese/candidates"): (_candidates, lambda _a: "ese_candidates"),
}


def with_formats(routes: Sequence[RestRoute], settings: Settings) -> list[RestRoute]:
    """``routes`` with ``?format=`` added to the forms that have a table answer."""
    return [
        _formatted(route, settings) if (route.method, route.path) in FORMATTED else route for route in routes
    ]


def _formatted(route: RestRoute, settings: Settings) -> RestRoute:
    prepare, stem = FORMATTED[(route.method, route.path)]
    fetch, shape = route.fetch, route.shape
    assert fetch is not None

    async def fetch_formatted(call: GraphCall, args: dict[str, Any]) -> Any:
        fmt = args["format"]
        if fmt == "json":
            return await fetch(call, args)
        return table_response(await prepare(call, args, settings), fmt, stem(args))

    def shape_formatted(data: Any, args: dict[str, Any]) -> Any:
        return data if isinstance(data, Response) else shape(data, args)

    return replace(
        route,
        params=(*route.params, FORMAT_PARAM),
        other_media_types=tuple(f.media_type for f in FORMATS.values()),
        fetch=fetch_formatted,
        shape=shape_formatted,
        description=(route.description + " `?format=` gives the same rows as a table.").strip(),
    )


# --- the export URLs ----------------------------------------------------------------------


def _format_of(request: Request) -> str:
    fmt = request.path_params["fmt"]
    if fmt not in FORMATS:
        raise validation_error(f"format must be one of {', '.join(FORMATS)}", parameter="format")
    return str(fmt)


def _json_filter(request: Request) -> Any:
    raw = request.query_params.get("filter")
    if raw is None or raw == "":
        return None
    value = json_parameter("filter", raw, MAX_FILTER_CHARS, MAX_FILTER_DEPTH)
    if not isinstance(value, dict):
        raise validation_error("`filter` must be a JSON object (the graph's filter input)")
    return value


def _ordering(request: Request, default_field: str, default_direction: str) -> dict[str, str]:
    query = request.query_params
    order_by = query.get("orderBy") or default_field
    direction = query.get("direction") or default_direction
    for name, value in (("orderBy", order_by), ("direction", direction)):
        if len(value) > 64 or not value.replace("_", "").isalnum():
            raise validation_error(f"`{name}` must be a value of the graph's enum", parameter=name)
    return {"orderBy": order_by, "direction": direction}


def _limit(request: Request, ceiling: int) -> int:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        return ceiling
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= ceiling:
        raise validation_error(f"`limit` must be an integer in [1, {ceiling}]", parameter="limit")
    return int(raw)


def export_routes(runner: GraphRunner, max_rows: int) -> list[Route]:
    """The ``/exports/...`` routes (mounted at the root: URLs the graph hands out)."""

    def endpoint(build: Callable[[Request, GraphCall, str], Awaitable[Response]]) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            async def call(document: str, variables: dict[str, Any]) -> Any:
                return await runner(document, variables, request)

            try:
                fmt = _format_of(request)
                return await build(request, call, fmt)
            except ApiError as error:
                return error.response()

        return handle

    async def sources(request: Request, call: GraphCall, fmt: str) -> Response:
        variables = {"filter": _json_filter(request), **_ordering(request, "SOURCE_ID", "ASC")}
        prepared = await prepare_listing(call, SOURCES_LISTING, variables, _limit(request, max_rows))
        return table_response(prepared, fmt, "sources", variables)

    async def candidates(request: Request, call: GraphCall, fmt: str) -> Response:
        variables = {"filter": _json_filter(request), **_ordering(request, "SCORE", "DESC")}
        prepared = await prepare_listing(call, CANDIDATES_LISTING, variables, _limit(request, max_rows))
        return table_response(prepared, fmt, "ese_candidates", variables)

    async def light_curve(request: Request, call: GraphCall, fmt: str) -> Response:
        source_id = request.path_params["source_id"]
        if len(source_id) > 128:
            raise validation_error("source id too long", parameter="source_id")
        return table_response(await prepare_light_curve(call, source_id), fmt, f"lightcurve_{source_id}")

    async def measurements(request: Request, call: GraphCall, fmt: str) -> Response:
        key = request.path_params["image_id"]
        if not (key.isascii() and key.isdigit()):
            raise validation_error("image id must be a non-negative integer", parameter="image_id")
        if len(key) > 10 or int(key) > MAX_IMAGE_ID:  # the graph's Int: 32 bits, as /api/images/{id}
            raise validation_error("image id is out of range", parameter="image_id")
        prepared = await prepare_listing(
            call, MEASUREMENTS_LISTING, {"imageId": int(key)}, _limit(request, max_rows)
        )
        return table_response(prepared, fmt, f"image_{key}_measurements")

    return [
        Route("/exports/sources.{fmt}", endpoint(sources)),
        Route("/exports/ese_candidates.{fmt}", endpoint(candidates)),
        Route("/exports/sources/{source_id}/lightcurve.{fmt}", endpoint(light_curve)),
        Route("/exports/images/{image_id}/measurements.{fmt}", endpoint(measurements)),
    ]
