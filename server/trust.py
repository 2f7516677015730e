"""Who is calling, from where, how often: one ASGI middleware in front of every route.

For each HTTP request and WebSocket handshake, in this order:

1. **Origin.** WebSocket handshakes, SSE streams and every request that may write
   (POST, PUT, PATCH, DELETE) from a browser must come from this server's own origin
   or one listed in ``DSA110_CORS_ORIGINS``; clients that send no ``Origin`` (scripts,
   the pipeline) are not browsers and pass. 403 ``ORIGIN_NOT_ALLOWED``. Except a JSON
   request without credentials: a browser sends a JSON body to another origin only after
   a CORS preflight, which only listed origins pass, so such a request with a foreign
   ``Origin`` came through a same-origin proxy (the legacy dashboard's Vite dev server
   forwards ``/api`` with the page's ``Origin``, and its Sources and Mosaics pages search
   by POST) or from a script; anonymous, it may only read. With credentials the check
   stands. And a page served from this machine (``Origin`` ``localhost`` or a loopback
   address) calling from this machine (a loopback client address) passes: no remote
   site can send such an ``Origin`` (a rebound DNS name keeps its own), and it is how the
   legacy dashboard's Vite dev server forwards its WebSocket and event streams to
   ``make run`` (with ``changeOrigin`` its ``Host`` is ours, its ``Origin`` the page's).
2. **Content type.** A request that may write and carries a body must say it is JSON:
   a cross-site HTML form or a ``text/plain`` fetch cannot then write (no CSRF).
   415 ``UNSUPPORTED_MEDIA_TYPE``.
3. **Identity.** ``Authorization: Bearer <key or token>`` or ``X-API-Key: <key>``;
   credentials that do not verify are refused (401 ``UNAUTHENTICATED``), never treated
   as anonymous, and so are both headers holding different credentials (which one the
   request acts as is not guessed). No credentials: anonymous, which may read only when
   ``DSA110_ANONYMOUS_READ`` allows it (the health check, static assets, API docs, the
   root page of links and the GraphiQL page are always open; the ``/graphql`` WebSocket
   may still authenticate in its ``connection_init`` payload). The identity goes into the
   scope for the routes.
4. **Budget.** Requests per minute per identity, or per client address when anonymous
   (``dsa110.auth.ratelimit``): 429 ``RATE_LIMITED`` with ``Retry-After``. Charged here only
   for credentials that do not verify (guessing keys spends the address's budget); an
   admitted request is marked (``BUDGET_DUE``) and charged by ``server.budget``, inside the
   per-client request limit, so that a request it refuses (it did no work) costs nothing
   of it.

Refusals are JSON with a stable code: the ``/api`` error envelope under ``/api``, a
GraphQL error body elsewhere; a refused WebSocket handshake gets the same as an HTTP
denial response where the server supports it, else a close with code 1008.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from ipaddress import ip_address
from typing import Final
from urllib.parse import urlsplit

from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from compat_rest.errors import BEARER_CHALLENGE
from dsa110.auth.authenticator import Authenticator, credential_from
from dsa110.auth.identity import IDENTITY_SCOPE_KEY, Forbidden, Identity, Unauthenticated, anonymous
from dsa110.auth.ratelimit import RateLimiter
from dsa110.db.writes import pool_busy_error
from dsa110.settings import Settings

UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS: Final = {"http": 80, "ws": 80, "https": 443, "wss": 443}
WS_DENIAL: Final = "websocket.http.response"
POLICY_VIOLATION: Final = 1008
BUDGET_DUE: Final = "dsa110.budget_due"
"""Scope key: this request is to be charged to its identity's budget (``server.budget``)."""


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _host_port(netloc: str, scheme: str) -> tuple[str, int | None]:
    parts = urlsplit(f"//{netloc}")
    try:
        port = parts.port
    except ValueError:
        return netloc.lower(), None
    return (parts.hostname or "").lower(), port if port is not None else DEFAULT_PORTS.get(scheme)


def origin_allowed(origin: str, host: str | None, scheme: str, allowed: Collection[str]) -> bool:
    """``origin`` is this server's own (same host and port as ``Host``) or in ``allowed``."""
    if origin.rstrip("/") in allowed:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or host is None:
        return False  # "null" (sandboxed frames, file: pages) and nonsense
    server_scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return _host_port(parts.netloc, parts.scheme) == _host_port(host, server_scheme)


class TrustMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        authenticator: Authenticator,
        limiter: RateLimiter,
        open_paths: Collection[str] = ("/healthz",),
        open_prefixes: Collection[str] = (),
        sse_paths: Collection[str] = (),
        ws_init_paths: Collection[str] = (),
        ide_path: str | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.authenticator = authenticator
        self.limiter = limiter
        self.allowed_origins = frozenset(o.rstrip("/") for o in settings.cors_origins)
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = tuple(open_prefixes)
        self.sse_paths = frozenset(sse_paths)
        self.ws_init_paths = frozenset(ws_init_paths)
        self.ide_path = ide_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            scope[IDENTITY_SCOPE_KEY] = await self._admit(scope, Headers(scope=scope))
        except Refusal as refusal:
            await deny(scope, send, refusal)
            return
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope, headers: Headers) -> Identity:
        path: str = scope["path"]
        websocket = scope["type"] == "websocket"
        method = "GET" if websocket else scope["method"]
        open_path = (
            path in self.open_paths
            or path.startswith(self.open_prefixes)
            or self._is_ide_page(scope, headers)
        )
        if (
            websocket
            or self._is_sse(path, headers)
            or (method in UNSAFE_METHODS and not _proxied_read(headers))
        ):
            self._check_origin(scope, headers)
        if method in UNSAFE_METHODS:
            _check_content_type(headers)
        client = scope.get("client")
        address = client[0] if client else None
        try:
            _one_of_each_credential(headers)
            identity = await self.authenticator.identify(credential_from(headers), address)
        except (Unauthenticated, Forbidden) as exc:
            # Guessing keys spends the address's budget.
            await spend_budget(self.settings, self.limiter, anonymous(address))
            status = 401 if isinstance(exc, Unauthenticated) else 403
            raise Refusal(status, exc.code, exc.message, challenge(status)) from None
        except PoolTimeout:  # a key to look up and no connection free: load, as on /graphql
            busy = pool_busy_error()
            wait = str(busy.details["retry_after_s"])
            raise Refusal(503, busy.code, busy.message, {"Retry-After": wait}) from None
        # A GraphQL WebSocket may still authenticate in its connection_init payload.
        may_init = websocket and path in self.ws_init_paths
        if identity.anonymous and not self.settings.anonymous_read and not open_path and not may_init:
            raise Refusal(
                401, "UNAUTHENTICATED", "this server needs credentials for reading too", challenge(401)
            )
        scope[BUDGET_DUE] = not open_path
        return identity

    def _is_ide_page(self, scope: Scope, headers: Headers) -> bool:
        """The GraphiQL page itself (static HTML; its queries then carry the user's key)."""
        return (
            scope["path"] == self.ide_path
            and scope.get("method") == "GET"
            and "text/html" in headers.get("accept", "")
            and b"query=" not in scope.get("query_string", b"")
        )

    def _is_sse(self, path: str, headers: Headers) -> bool:
        return path in self.sse_paths or "text/event-stream" in headers.get("accept", "")

    def _check_origin(self, scope: Scope, headers: Headers) -> None:
        origin = headers.get("origin")
        if origin is None:
            return
        client = scope.get("client")
        try:
            if client and _is_loopback(client[0]) and _is_loopback(urlsplit(origin).hostname):
                return  # a local page calling from this machine (module docstring, 1)
            allowed = origin_allowed(
                origin, headers.get("host"), scope.get("scheme", "http"), self.allowed_origins
            )
        except ValueError:  # "http://[::1", a Host of "[x": nothing a browser sends
            allowed = False
        if not allowed:
            raise Refusal(
                403,
                "ORIGIN_NOT_ALLOWED",
                f"requests from the origin {origin[:200]!r} are not allowed (see DSA110_CORS_ORIGINS)",
            )


async def spend_budget(settings: Settings, limiter: RateLimiter, identity: Identity) -> None:
    """Charge one request to ``identity``'s per-minute budget; ``Refusal`` (429) when it is spent."""
    limit = settings.anonymous_rate_limit_per_minute if identity.anonymous else settings.rate_limit_per_minute
    if limit <= 0:
        return
    verdict = await limiter.hit(identity.rate_key, limit)
    if not verdict.allowed:
        raise Refusal(
            429,
            "RATE_LIMITED",
            f"more than {limit} requests a minute; retry in {verdict.retry_after_s} s",
            {"Retry-After": str(verdict.retry_after_s)},
        )


def _is_loopback(host: str | None) -> bool:
    """``localhost`` or an address of this machine's loopback interface."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _one_of_each_credential(headers: Headers) -> None:
    """Two ``Authorization`` (or ``X-API-Key``) headers with different values are refused:
    acting as the last one sent is a precedence the client cannot see, as for the pair."""
    for name in ("Authorization", "X-API-Key"):
        if len(set(headers.getlist(name))) > 1:
            raise Unauthenticated(f"`{name}` is sent more than once with different credentials: send one")


def _proxied_read(headers: Headers) -> bool:
    """A JSON request without credentials: exempt from the origin check (module docstring, 1)."""
    no_credentials = "authorization" not in headers and "x-api-key" not in headers
    return no_credentials and _is_json(headers.get("content-type", ""))


def _check_content_type(headers: Headers) -> None:
    content_type = headers.get("content-type")
    has_body = headers.get("content-length", "0") not in ("0", "") or "transfer-encoding" in headers
    if content_type is None and not has_body:
        return
    if content_type is None or not _is_json(content_type):
        given = (content_type or "none")[:100]
        raise Refusal(
            415, "UNSUPPORTED_MEDIA_TYPE", f"send JSON (`Content-Type: application/json`), not {given}"
        )


def challenge(status: int) -> dict[str, str]:
    return {"WWW-Authenticate": BEARER_CHALLENGE} if status == 401 else {}


def refusal_body(path: str, code: str, message: str) -> bytes:
    """The error in the shape the path's clients read: the /api envelope, or a GraphQL error."""
    if path == "/api" or path.startswith("/api/"):
        body: object = {"error": message, "status": "error", "code": code, "details": None}
    else:
        body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return json.dumps(body).encode()


async def deny(scope: Scope, send: Send, refusal: Refusal) -> None:
    """Answer an HTTP request or a WebSocket handshake (before accept) with ``refusal``.

    A handshake gets an HTTP denial response where the server supports the extension,
    else a close with code 1008 and the refusal's code as the reason: either completes the
    handshake, as ASGI asks of an app that does not accept.
    """
    body = refusal_body(scope["path"], refusal.code, refusal.message)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in refusal.headers.items()),
    ]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    elif WS_DENIAL in (scope.get("extensions") or {}):
        await send({"type": "websocket.http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": refusal.code})


REFUSAL_STATUS: Final = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403}


def refusal_status(result: object) -> int | None:
    """401 or 403 for a GraphQL result refused as a whole (no data, only that error), else None.

    A mutation the caller may not run is refused before anything executes
    (``schema.permissions.MutationGate``); its HTTP status then says so, as on REST.
    Partial results (a query with one admin-only field) keep 200.
    """
    if getattr(result, "data", None) is not None:
        return None
    codes = {
        str((getattr(e, "extensions", None) or {}).get("code")) for e in getattr(result, "errors", None) or ()
    }
    return REFUSAL_STATUS.get(codes.pop()) if len(codes) == 1 else None
