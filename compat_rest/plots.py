"""Plots over HTTP: a source's light curve and the sky map, as PNG or SVG, cached.

The graph hands out their URLs (``Source.lightCurvePlotUrl``, ``Query.eseSkyMapUrl``).
Each request fetches the plot's data through the graph (cheap next to drawing it), keys
the rendered image by a digest of that data and the size (``dsa110.plots.cache``) and
answers ``304 Not Modified`` to a client that already holds that version (``ETag``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compat_rest.errors import ApiError, validation_error
from compat_rest.exports import LIGHT_CURVE_DOC
from compat_rest.graph import GraphRunner
from dsa110.plots.cache import PlotCache, digest
from dsa110.plots.lightcurve import LightCurvePlot, Window, light_curve_image
from dsa110.plots.render import MAX_PIXELS, MEDIA, MIN_PIXELS, Canvas
from dsa110.plots.skymap import SkyMap, sky_map_image

SKY_PAGE: Final = 500
MAX_SKY_SOURCES: Final = 50_000
"""Sources drawn on the sky map at most (more are sampled by taking every n-th page)."""
CACHE_CONTROL: Final = "public, max-age=60"

SKY_SOURCES = """
query PlotSkySources($first: Int!, $after: String) {
  sources(first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } nodes { raDeg decDeg }
  }
}
"""
SKY_EVENTS = """
query PlotSkyEvents {
  eseCandidates(first: 500, filter: {statuses: [ACTIVE, INVESTIGATED]}) {
    nodes { significance source { raDeg decDeg } }
  }
  alerts(first: 500, filter: {unresolved: true}) { nodes { source { raDeg decDeg } } }
}
"""

Call = Callable[[str, dict[str, Any]], Awaitable[Any]]


def _canvas(request: Request, fmt: str) -> Canvas:
    if fmt not in MEDIA:
        raise validation_error(f"format must be one of {', '.join(MEDIA)}", parameter="format")
    sizes = {}
    for name, default in (("width", 900), ("height", 500)):
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            sizes[name] = default
            continue
        if not (raw.isascii() and raw.isdigit()) or not MIN_PIXELS <= int(raw) <= MAX_PIXELS:
            raise validation_error(
                f"`{name}` must be an integer in [{MIN_PIXELS}, {MAX_PIXELS}]", parameter=name
            )
        sizes[name] = int(raw)
    return Canvas(fmt, sizes["width"], sizes["height"])


def _flag(request: Request, name: str, default: bool) -> bool:
    raw = (request.query_params.get(name) or "").lower()
    if raw == "":
        return default
    if raw not in ("true", "false", "1", "0"):
        raise validation_error(f"`{name}` must be true or false", parameter=name)
    return raw in ("true", "1")


def light_curve_plot(source: dict[str, Any], normalised: bool) -> LightCurvePlot:
    points = source["lightCurve"]["points"]
    flux, err = ("normFluxJy", "normFluxErrJy") if normalised else ("fluxJy", "fluxErrJy")
    return LightCurvePlot(
        source_id=source["sourceId"],
        mjd=[p["mjd"] for p in points],
        flux_jy=[p[flux] for p in points],
        flux_err_jy=[p[err] for p in points],
        normalised=normalised,
        windows=[
            Window(
                c["candidateId"],
                str(c["status"]).lower(),
                c["startMjd"],
                c["endMjd"],
                c["baselineFluxJy"],
                c["significance"],
            )
            for c in source["eseCandidates"]
        ],
    )


async def sky_map_data(call: Call) -> SkyMap:
    sources: list[tuple[float, float]] = []
    data = await call(SKY_SOURCES, {"first": SKY_PAGE, "after": None})
    total = data["sources"]["totalCount"]
    stride = max(1, -(-total // MAX_SKY_SOURCES))  # every `stride`-th page when there are too many
    page, index = data["sources"], 0
    while True:
        if index % stride == 0:
            sources.extend((n["raDeg"], n["decDeg"]) for n in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        page = (await call(SKY_SOURCES, {"first": SKY_PAGE, "after": page["pageInfo"]["endCursor"]}))[
            "sources"
        ]
        index += 1
    events = await call(SKY_EVENTS, {})
    candidates = [
        (c["source"]["raDeg"], c["source"]["decDeg"], c["significance"])
        for c in events["eseCandidates"]["nodes"]
    ]
    alerts = [(a["source"]["raDeg"], a["source"]["decDeg"]) for a in events["alerts"]["nodes"] if a["source"]]
    return SkyMap(sources, candidates, sorted(set(alerts)), truncated=stride > 1)


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (RFC 9110 section 13.1.2): ``*``, or a
    comma-separated list of tags compared weakly (a ``W/`` prefix is ignored)."""
    if if_none_match is None:
        return False
    tags = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in tags or etag in (tag.removeprefix("W/") for tag in tags)


def plot_routes(runner: GraphRunner, cache: PlotCache) -> list[Route]:
    """``/plots/sources/{source_id}/lightcurve.{fmt}`` and ``/plots/skymap.{fmt}``."""

    async def answer(request: Request, key: str, canvas: Canvas, draw: Callable[[], bytes]) -> Response:
        etag = f'"{key}"'
        headers = {"etag": etag, "cache-control": CACHE_CONTROL}
        if etag_matches(request.headers.get("if-none-match"), etag):
            return Response(status_code=304, headers=headers)
        image = cache.get(key)
        if image is None:
            image = await asyncio.to_thread(draw)
            cache.put(key, image)
        return Response(image, media_type=MEDIA[canvas.fmt], headers=headers)

    def caller(request: Request) -> Call:
        async def call(document: str, variables: dict[str, Any]) -> Any:
            return await runner(document, variables, request)

        return call

    async def light_curve(request: Request) -> Response:
        try:
            canvas = _canvas(request, request.path_params["fmt"])
            normalised = _flag(request, "normalised", True)
            source_id = request.path_params["source_id"]
            if len(source_id) > 128:
                raise validation_error("source id too long", parameter="source_id")
            source = (await caller(request)(LIGHT_CURVE_DOC, {"sourceId": source_id}))["source"]
        except ApiError as error:
            return error.response()
        plot = light_curve_plot(source, normalised)
        key = digest("lightcurve", source, normalised, canvas)
        return await answer(request, key, canvas, lambda: light_curve_image(plot, canvas))

    async def sky_map(request: Request) -> Response:
        try:
            canvas = _canvas(request, request.path_params["fmt"])
            sky = await sky_map_data(caller(request))
        except ApiError as error:
            return error.response()
        key = digest("skymap", sky, canvas)
        return await answer(request, key, canvas, lambda: sky_map_image(sky, canvas))

    return [
        Route("/plots/sources/{source_id}/lightcurve.{fmt}", light_curve, methods=["GET"]),
        Route("/plots/skymap.{fmt}", sky_map, methods=["GET"]),
    ]
