"""The Virtual Observatory routes: Simple Cone Search over the sources and the held catalogs, VOSI.

``/vo/scs`` searches the monitored sources (the graph's ``sources(filter: {cone})``,
paged and streamed); ``/vo/catalogs/{name}/scs`` an external catalog the pipeline holds
(``catalogSources``); ``/vo/capabilities`` and ``/vo/availability`` are the VOSI
documents naming them. Like every compat route, the answers come from GraphQL documents.
See ``dsa110.vo.scs`` for the protocol's rules.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from compat_rest.errors import ApiError
from compat_rest.exports import SOURCES_LISTING, prepare_listing
from compat_rest.graph import GraphRunner
from dsa110.db.sky import separation_deg
from dsa110.exports.columns import SOURCES, Row, TableSpec
from dsa110.exports.stream import Info, encode
from dsa110.vo import vosi
from dsa110.vo.scs import (
    CATALOG,
    CATALOG_COLUMNS,
    MAX_SR_DEG,
    SCS_MEDIA_TYPE,
    SOURCE_COLUMNS,
    ConeQuery,
    ScsError,
    error_votable,
    parse_query,
)

CATALOG_NAME: Final = re.compile(r"[a-z0-9_]{1,16}")

HELD = "query VoCatalogs { catalogs { name nEntries raDeg decDeg } }"
FIRST_SOURCE = "query VoFirstSource { sources(first: 1) { totalCount nodes { raDeg decDeg } } }"
CATALOG_CONE = """
query VoCatalogCone($ra: Float!, $dec: Float!, $radius: Float!, $catalog: String!, $limit: Int!) {
  catalogSources(raDeg: $ra, decDeg: $dec, radiusArcsec: $radius, catalog: $catalog, limit: $limit) {
    entry { name raDeg decDeg fluxJy fluxErrJy majorArcsec minorArcsec paDeg }
    separationArcsec
  }
}
"""

Call = Callable[[str, dict[str, Any]], Any]


def _project(spec: TableSpec, full: TableSpec, row: Row, distance: float) -> Row:
    """``row`` (in ``full``'s columns, distance appended) restricted to ``spec``'s columns."""
    values = dict(zip([*full.names, "distance_deg"], [*row, distance], strict=True))
    return tuple(values[name] for name in spec.names)


def _status_infos(query: ConeQuery) -> list[Info]:
    return [
        ("QUERY_STATUS", "OK"),
        ("RA", f"{query.ra_deg:.8f}"),
        ("DEC", f"{query.dec_deg:.8f}"),
        ("SR", f"{query.sr_deg:g}"),
        ("VERB", str(query.verb)),
        ("MAXREC", str(query.maxrec)),
    ]


def _answer(
    spec: TableSpec, query: ConeQuery, chunks: AsyncIterator[list[Row]], overflow: list[bool]
) -> Response:
    def trailer() -> list[Info]:
        return [("QUERY_STATUS", "OVERFLOW")] if overflow else []

    body = encode(spec, "votable", chunks, infos=_status_infos(query), trailer=trailer)
    return StreamingResponse(body, media_type=SCS_MEDIA_TYPE)


def _error(error: ScsError) -> Response:
    return Response(
        error_votable(error.code, error.message),
        media_type=SCS_MEDIA_TYPE,
        headers={"X-Error-Code": error.code},
    )


async def _nothing() -> AsyncIterator[list[Row]]:
    return
    yield


async def cone_over_sources(call: Call, query: ConeQuery) -> Response:
    spec = SOURCE_COLUMNS[query.verb]
    overflow: list[bool] = []
    if query.metadata_only:
        return _answer(spec, query, _nothing(), overflow)
    cone = {"raDeg": query.ra_deg % 360.0, "decDeg": query.dec_deg, "radiusArcsec": query.sr_deg * 3600.0}
    variables = {"filter": {"cone": cone}, "orderBy": "SOURCE_ID", "direction": "ASC"}
    prepared = await prepare_listing(call, SOURCES_LISTING, variables, query.maxrec + 1)

    def rows_of(rows: Sequence[Row]) -> list[Row]:
        return [
            _project(spec, SOURCES, row, separation_deg(query.ra_deg, query.dec_deg, row[1], row[2]))
            for row in rows
        ]

    async def chunks() -> AsyncIterator[list[Row]]:
        sent = 0
        async for rows in _chain(prepared.first, prepared.rest):
            kept = rows[: query.maxrec - sent]
            if len(kept) < len(rows):
                overflow.append(True)  # the one row past MAXREC: the answer is cut
            sent += len(kept)
            if kept:
                yield rows_of(kept)

    return _answer(spec, query, chunks(), overflow)


async def _chain(first: list[Row], rest: AsyncIterator[list[Row]]) -> AsyncIterator[list[Row]]:
    yield first
    async for rows in rest:
        yield rows


async def cone_over_catalog(call: Call, catalog: str, query: ConeQuery) -> Response:
    spec = CATALOG_COLUMNS[query.verb]
    overflow: list[bool] = []
    if query.metadata_only:
        return _answer(spec, query, _nothing(), overflow)
    data = await call(
        CATALOG_CONE,
        {
            "ra": query.ra_deg,
            "dec": query.dec_deg,
            "radius": query.sr_deg * 3600.0,
            "catalog": catalog,
            "limit": query.maxrec + 1,
        },
    )
    matches = data["catalogSources"]
    if len(matches) > query.maxrec:
        overflow.append(True)
    entry_names = [n for n in CATALOG.names if n != "distance_deg"]
    rows: list[Row] = []
    for match in matches[: query.maxrec]:
        entry = match["entry"]
        values = dict(zip(entry_names, _catalog_values(entry), strict=True))
        values["distance_deg"] = match["separationArcsec"] / 3600.0
        rows.append(tuple(values[name] for name in spec.names))

    async def chunks() -> AsyncIterator[list[Row]]:
        yield rows

    return _answer(spec, query, chunks(), overflow)


def _catalog_values(entry: dict[str, Any]) -> Row:
    keys = ("name", "raDeg", "decDeg", "fluxJy", "fluxErrJy", "majorArcsec", "minorArcsec", "paDeg")
    return tuple(entry[k] for k in keys)


def vo_routes(runner: GraphRunner, max_records: int) -> list[Route]:
    """``/vo/scs``, ``/vo/catalogs/{catalog}/scs``, ``/vo/capabilities``, ``/vo/availability``."""

    def caller(request: Request) -> Call:
        async def call(document: str, variables: dict[str, Any]) -> Any:
            return await runner(document, variables, request)

        return call

    async def held(call: Call) -> dict[str, Any]:
        return {c["name"]: c for c in (await call(HELD, {}))["catalogs"]}

    async def scs(request: Request) -> Response:
        try:
            query = parse_query(request.query_params, max_records)
            return await cone_over_sources(caller(request), query)
        except ScsError as error:
            return _error(error)
        except ApiError as error:  # the graph refused (it should not, after parse_query)
            return _error(ScsError(error.code, error.message))

    async def catalog_scs(request: Request) -> Response:
        name = request.path_params["catalog"]
        try:
            call = caller(request)
            if not CATALOG_NAME.fullmatch(name) or name not in await held(call):
                raise ScsError("UNKNOWN_CATALOG", f"no catalog named {name[:32]!r} is held here")
            query = parse_query(request.query_params, max_records)
            return await cone_over_catalog(call, name, query)
        except ScsError as error:
            return _error(error)
        except ApiError as error:
            return _error(ScsError(error.code, error.message))

    async def capabilities(request: Request) -> Response:
        call = caller(request)
        base = str(request.base_url).rstrip("/")
        first = (await call(FIRST_SOURCE, {}))["sources"]["nodes"]
        centre = (first[0]["raDeg"], first[0]["decDeg"]) if first else (0.0, 0.0)
        services = [
            vosi.ConeService(
                f"{base}/vo/scs?",
                "Radio sources monitored by the DSA-110 continuum pipeline, with variability metrics",
                MAX_SR_DEG,
                max_records,
                *centre,
            )
        ]
        for name, held_catalog in (await held(call)).items():
            services.append(
                vosi.ConeService(
                    f"{base}/vo/catalogs/{name}/scs?",
                    f"The {name.upper()} catalog as held by the DSA-110 pipeline",
                    MAX_SR_DEG,
                    max_records,
                    held_catalog["raDeg"],
                    held_catalog["decDeg"],
                )
            )
        document = vosi.capabilities(services, f"{base}/vo/capabilities", f"{base}/vo/availability")
        return Response(document, media_type="text/xml")

    async def availability(request: Request) -> Response:
        try:
            await caller(request)(FIRST_SOURCE, {})
        except ApiError as error:
            return Response(
                vosi.availability(False, f"the catalog cannot be read: {error.code}"), media_type="text/xml"
            )
        return Response(vosi.availability(True, "accepting cone searches"), media_type="text/xml")

    return [
        Route("/vo/scs", scs, methods=["GET"]),
        Route("/vo/catalogs/{catalog}/scs", catalog_scs, methods=["GET"]),
        Route("/vo/capabilities", capabilities, methods=["GET"]),
        Route("/vo/availability", availability, methods=["GET"]),
    ]
