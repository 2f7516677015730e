"""What the app answers where no route serves the request: coded 404s, and slash redirects.

* **WebSocket handshakes** are answered only where a WebSocket route is (``/graphql``,
  the legacy status channel); anywhere else - an unknown path, a mount such as ``/api``
  or the static files, which serve HTTP only - the handshake is denied with ``404``
  ``NOT_FOUND`` in the body of the path's layer (``server.trust.deny``). Starlette would
  close it before accept, which a client sees as a bare 403, or hand it to a mount that
  fails on a WebSocket scope.
* **A path that differs from a route by a trailing slash** (``/graphql/``) is redirected
  (307, method and body kept) with a *relative* ``Location``. Starlette's own redirect
  builds an absolute URL from the client's ``Host`` header, so any client could make the
  server answer with a redirect to a host of its choosing.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Match, Router, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from server.trust import Refusal, deny

NOT_FOUND = "NOT_FOUND"


class WebSocketPaths:
    """Deny, with a coded 404, a WebSocket handshake that no WebSocket route would take."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not _websocket_route_for(self.routes, scope):
            refusal = Refusal(404, NOT_FOUND, f"no WebSocket endpoint at {scope['path'][:200]!r}")
            await deny(scope, send, refusal)
            return
        await self.app(scope, receive, send)


def _websocket_route_for(routes: Sequence[BaseRoute], scope: Scope) -> bool:
    # The route the router would pick (its first full match) is a WebSocket route.
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return isinstance(route, WebSocketRoute)
    return False


class SlashRedirect:
    """The router's default: a relative redirect to the path with or without its trailing
    slash when a route serves that one (as Starlette's ``redirect_slashes``, which this
    replaces), else the router's own 404."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (location := self._other_slash(scope)) is not None:
            await RedirectResponse(location, status_code=307)(scope, receive, send)
            return
        await self.router.not_found(scope, receive, send)

    def _other_slash(self, scope: Scope) -> str | None:
        path: str = scope["path"]  # the full path (root path included), as the client gave it
        other = path.rstrip("/") if path.endswith("/") else f"{path}/"
        # "//host" would be a network-path reference: a redirect to another host.
        if not other.startswith("/") or other.startswith("//"):
            return None
        other_scope = {**scope, "path": other}
        if not any(route.matches(other_scope)[0] is not Match.NONE for route in self.router.routes):
            return None
        query = scope.get("query_string", b"").decode("latin-1")
        return other + (f"?{query}" if query else "")


def install(router: Router) -> None:
    """Give ``router`` the relative slash redirect instead of Starlette's (module docstring)."""
    router.redirect_slashes = False
    router.default = SlashRedirect(router)
