"""``GET /``: where to go from here, for someone who opened the server's address.

Static and tiny: JSON for clients, a page of links for browsers. It reads nothing, so it
is open to every caller like the health check.
"""

from __future__ import annotations

import html
from typing import Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

LINKS: Final = {
    "/graphql": "the GraphQL API: POST queries and mutations; open it in a browser for GraphiQL; "
    "subscriptions over WebSocket (graphql-transport-ws) or SSE (Accept: text/event-stream)",
    "/api/docs": "the REST API (the legacy dashboard's /api paths) and its OpenAPI document",
    "/healthz": "health of this server process",
}
_BODY: Final = {
    "service": "dsa110-graph",
    "links": [{"href": href, "what": what} for href, what in LINKS.items()],
}
_PAGE: Final = (
    # The viewport line: a phone would lay the page out 980 px wide and shrink it to fit.
    '<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content="width=device-width, '
    'initial-scale=1"><title>dsa110-graph</title><h1>dsa110-graph</h1><ul>'
    + "".join(f'<li><a href="{href}">{href}</a>: {html.escape(what)}' for href, what in LINKS.items())
    + "</ul>"
)


async def home(request: Request) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return HTMLResponse(_PAGE)
    return JSONResponse(_BODY)
