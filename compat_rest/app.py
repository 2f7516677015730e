"""``compat_app``: the /api sub-application (routes, OpenAPI, Swagger UI, envelope 404s)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from compat_rest import (
    batch,
    calfiles,
    calqa,
    catalog,
    catalog_validation,
    core,
    ese,
    events_log,
    health,
    images,
    jobs,
    js9,
    lifecycle,
    live_docs,
    mosaics,
    ms,
    observing,
    operations,
    pipeline,
    products,
    qa,
    regions,
    sources,
    streaming,
    validation_report,
    visualization,
)
from compat_rest.errors import UnknownPath, error_response
from compat_rest.exports import with_formats
from compat_rest.graph import GraphRunner
from compat_rest.openapi import openapi_document
from compat_rest.routing import RestRoute, build_routes, check_routes
from compat_rest.swagger import swagger_html, swagger_static_app
from dsa110.settings import Settings
from server.limits import BodyTooLarge

API_PREFIX = "/api"
# `lifecycle` before `products`: its POST /data/{id}/... paths must not fall to GET /data/{id:path}.
SECTIONS = (
    core,
    health,
    ese,
    mosaics,
    sources,
    images,
    regions,
    observing,
    lifecycle,
    products,
    catalog,
    catalog_validation,
    validation_report,
    ms,
    calfiles,
    calqa,
    qa,
    jobs,
    batch,
    streaming,
    visualization,
    js9,
    pipeline,
    events_log,
    operations,
    live_docs,
)


def declared_routes(settings: Settings) -> list[RestRoute]:
    """Every documented path, section by section (literal paths before templated ones)."""
    return with_formats([route for section in SECTIONS for route in section.routes(settings)], settings)


def compat_app(schema: Any, engine: AsyncEngine, settings: Settings, bus: Any = None) -> Starlette:
    """The REST compatibility layer; mount it at ``/api`` after any other ``/api/...`` route.

    It answers every path under its mount (unknown ones with a 404 in the envelope), so
    routes such as ``/api/ws/status`` must be listed before the mount to be reached.
    """
    runner = GraphRunner(schema, engine, settings, bus)
    checked = check_routes(declared_routes(settings), runner)
    document = openapi_document(checked, prefix=API_PREFIX)
    page = swagger_html(f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/docs/static")

    async def openapi(_: Request) -> JSONResponse:
        return JSONResponse(document)

    async def docs(_: Request) -> HTMLResponse:
        return HTMLResponse(page)

    served = build_routes(checked, runner)
    routes: list[BaseRoute] = [
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Mount("/docs/static", app=swagger_static_app(), name="swagger-static"),
        *served,
        # The legacy dashboard prefixes some paths twice (`apiClient.get("/api/...")` on a
        # client whose base is already `/api`: the image and source detail tables, the
        # observing page's calibrator matches, the SPW plot, JS9 analysis, the data detail
        # page's publish and finalize; legacy-pipeline-facts §6). The same routes answer
        # there, so those panels work; a path not served is a 404 as anywhere else.
        Mount(API_PREFIX, routes=[*served, Route("/{rest:path}", UnknownPath(), methods=None)]),
        Route("/{rest:path}", UnknownPath(), methods=None),
    ]

    async def too_large(_: Request, exc: Exception) -> JSONResponse:
        # A streamed body over the server-wide limit, met while a route read it (the
        # middleware answers declared lengths itself): 413 in the envelope, not a 500.
        limit = exc.max_bytes if isinstance(exc, BodyTooLarge) else None
        return error_response(413, "PAYLOAD_TOO_LARGE", str(exc), {"max_bytes": limit})

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        # What Starlette itself refuses (the Swagger UI's static files: a missing file, a
        # method they do not take) in the envelope, not its plain-text default.
        status = exc.status_code if isinstance(exc, HTTPException) else 400
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "BAD_REQUEST")
        detail = exc.detail if isinstance(exc, HTTPException) else "bad request"
        response = error_response(status, code, str(detail)[:200])
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        return response

    app = Starlette(routes=routes, exception_handlers={BodyTooLarge: too_large, HTTPException: http_error})
    app.state.compat_routes = checked
    return app
