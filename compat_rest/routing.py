"""A compat route = a GraphQL document + variables from the validated request + a shaping function.

``graphql_route`` declares one; ``build_routes`` turns the declarations into Starlette
routes that parse and validate parameters, run the document in-process, shape the result
and answer errors in the documented envelope. The same declarations feed the OpenAPI
document, so adding a path is a few lines in a section module.

Every route that is not a GET declares the role it needs (``role=Role.OPERATOR``; a read
sent as POST, such as a search, declares ``Role.VIEWER``), and every route's documents must
validate against the schema: ``check_routes`` refuses to build the layer otherwise, so a
renamed graph field stops the server at start-up instead of switching a documented path off.
The role is checked before the body is parsed (401 ``UNAUTHENTICATED`` / 403 ``FORBIDDEN``),
and the caller's identity goes with every document the route runs, so the mutation's own
role check and audit record apply too. A body is JSON, parsed strictly and bounded as
``compat_rest.query_json`` says (400 ``INVALID_JSON``, ``NESTED_TOO_DEEP`` or
``INVALID_UNICODE``: the codes ``/graphql`` gives the same faults), and an object (else 422).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from graphql import OperationType
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from compat_rest.errors import ApiError, error_response, validation_error
from compat_rest.graph import GraphCall, GraphRunner, document_operation
from compat_rest.paging import Connection, collect
from compat_rest.params import Args, Param, parse_object
from compat_rest.query_json import json_body
from compat_rest.shapes import Schema
from dsa110.auth.identity import Role, identity_in
from dsa110.errors import PublicError
from server.limits import BodyTooLarge

log = logging.getLogger("dsa110.compat")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY_DEPTH: Final = 32
"""Arrays and objects nested in a request body: the deepest documented body (a region's
polygon, a job's parameters) needs a handful; deeper is 400 ``NESTED_TOO_DEEP``."""

Variables = Callable[[Args], dict[str, Any]]
Shape = Callable[[Any, Args], Any]
Fetch = Callable[[GraphCall, Args], Awaitable[Any]]


@dataclass(frozen=True)
class RestRoute:
    path: str  # Starlette template, e.g. "/sources/{source_id}" or "/data/{data_id:path}"
    method: str
    tag: str
    summary: str
    shape: Shape
    response: Schema | None  # None: not JSON (a file, an image)
    documents: tuple[str, ...] = ()
    fetch: Fetch | None = None
    params: tuple[Param, ...] = ()
    body: tuple[Param, ...] = ()
    media_type: str = "application/json"
    status_code: int = 200
    errors: tuple[int, ...] = (400, 422)
    description: str = ""
    other_responses: tuple[tuple[int, Schema], ...] = ()  # non-envelope answers, e.g. a 503 health body
    served_elsewhere: bool = False  # documented here, answered by the server (the real-time channels)
    role: Role | None = None  # required unless GET: who may call it (see the module docstring)
    other_media_types: tuple[str, ...] = ()  # success answers in other formats (`?format=` tables)


def graphql_route(
    method: str,
    path: str,
    document: str,
    shape: Shape,
    *,
    variables: Variables | None = None,
    params: Sequence[Param] = (),
    body: Sequence[Param] = (),
    response: Schema | None,
    tag: str,
    summary: str,
    errors: Sequence[int] = (400, 422),
    media_type: str = "application/json",
    description: str = "",
    role: Role | None = None,
    paged: Connection | None = None,
) -> RestRoute:
    """One document, run with ``variables(args)``, answered by ``shape(data, args)``.

    With ``paged`` (the connection in an answer), a ``first`` above one graph page is
    fetched page by page and merged (see ``compat_rest.paging``).
    """
    make_vars = variables or (lambda _args: {})

    async def fetch(call: GraphCall, args: Args) -> Any:
        values = make_vars(args)
        if paged is None:
            return await call(document, values)
        return await collect(call, document, values, paged, max_rows=values["first"])

    return RestRoute(
        path=path,
        method=method,
        tag=tag,
        summary=summary,
        shape=shape,
        response=response,
        documents=(document,),
        fetch=fetch,
        params=tuple(params),
        body=tuple(replace(p, where="body") for p in body),
        media_type=media_type,
        errors=tuple(errors),
        description=description,
        role=role,
    )


def multi_query_route(
    method: str,
    path: str,
    documents: Sequence[str],
    fetch: Fetch,
    shape: Shape,
    *,
    params: Sequence[Param] = (),
    body: Sequence[Param] = (),
    response: Schema | None,
    tag: str,
    summary: str,
    errors: Sequence[int] = (400, 422),
    media_type: str = "application/json",
    description: str = "",
    other_responses: Sequence[tuple[int, Schema]] = (),
    role: Role | None = None,
) -> RestRoute:
    """A route whose answer needs the documents run more than once (e.g. paging a long list)."""
    return RestRoute(
        path=path,
        method=method,
        tag=tag,
        summary=summary,
        shape=shape,
        response=response,
        documents=tuple(documents),
        fetch=fetch,
        params=tuple(params),
        body=tuple(replace(p, where="body") for p in body),
        media_type=media_type,
        errors=tuple(errors),
        description=description,
        other_responses=tuple(other_responses),
        role=role,
    )


class SafeJSONResponse(JSONResponse):
    """JSON that never fails on a non-finite float: NaN and infinities become null."""

    def render(self, content: Any) -> bytes:
        try:
            return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
        except ValueError:
            return json.dumps(_finite(content), ensure_ascii=False, separators=(",", ":")).encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


IGNORED_HEADER: Final = "X-Ignored-Parameters"
"""Names a request sent that its route does not read (a typo'd filter is otherwise silent)."""
UNREAD_NOT_NAMED: Final = frozenset({"_"})
"""Query parameters clients add on purpose and no route reads: jQuery's cache-buster."""
_PRINTABLE_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,64}")
MAX_NAMED_UNREAD: Final = 20


async def parse_args(route: RestRoute, request: Request) -> tuple[Args, list[str]]:
    """The route's arguments from the path, the query and the body, and the names the
    request sent that the route does not read (``body.<key>`` for the body's)."""
    args: Args = {}
    read = {param.name for param in route.params if param.where == "query"} | UNREAD_NOT_NAMED
    unread = sorted(set(request.query_params) - read)
    path_params = request.path_params
    query = request.query_params
    for param in route.params:
        raw = path_params.get(param.name) if param.where == "path" else query.get(param.name)
        if raw is None or (raw == "" and param.where == "query"):
            if param.required:
                raise validation_error(
                    f"{param.where} parameter `{param.name}` is required",
                    parameter=param.name,
                    location=param.where,
                )
            args[param.name] = param.default
        else:
            args[param.name] = param.from_text(raw)
    if route.body:
        raw_body = await request.body()
        # Strict and bounded, with the codes /graphql gives the same faults (INVALID_JSON,
        # NESTED_TOO_DEEP, INVALID_UNICODE: compat_rest.query_json); an empty body is {}.
        payload: Any = json_body(raw_body, MAX_BODY_DEPTH) if raw_body.strip() else {}
        if not isinstance(payload, dict):
            raise validation_error("the request body must be a JSON object", location="body")
        args.update(parse_object(route.body, payload))
        known = {param.name for param in route.body}
        unread += sorted(f"body.{key}" for key in payload if key not in known)
    return args, unread


def name_unread(response: Response, unread: list[str]) -> Response:
    """Say in ``IGNORED_HEADER`` which parameters were not read (printable names, at most
    ``MAX_NAMED_UNREAD``; others counted), so a client can see its typo."""
    if unread:
        shown = [name for name in unread if _PRINTABLE_NAME.fullmatch(name)][:MAX_NAMED_UNREAD]
        more = len(unread) - len(shown)
        response.headers[IGNORED_HEADER] = ", ".join(shown + ([f"+{more} more"] if more else []))
    return response


class PathEndpoint:
    """Every method of one path: dispatch, validation, execution, shaping, the envelope."""

    def __init__(self, routes: Sequence[RestRoute], runner: GraphRunner) -> None:
        self.routes = {route.method: route for route in routes}
        self.runner = runner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # An ASGI app, so its route takes every method and refuses the others itself (with
        # the path's own `Allow`): a method Starlette's route did not list (PROPFIND, LOCK,
        # QUERY...) was a plain-text 405 without the envelope.
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        # HEAD is GET without the body (RFC 9110 §9.3.2: monitors probe /api/health so), and
        # safe: a GET that would write (the legacy `save_to_file`) is refused on it.
        if request.method == "HEAD" and "GET" in self.routes:
            answer = without_body(await self._answer(request, self.routes["GET"], head=True))
            if answer.status_code == 405:
                answer.headers["Allow"] = "GET"
            return answer
        return await self._answer(request, self.routes.get(request.method))

    async def _answer(self, request: Request, route: RestRoute | None, head: bool = False) -> Response:
        if route is None:
            allowed = ", ".join(sorted(self.routes))
            refused = error_response(
                405,
                "METHOD_NOT_ALLOWED",
                f"{request.method[:16]} is not allowed here; use {allowed}",
                {"allowed": allowed},
            )
            refused.headers["Allow"] = allowed
            return refused
        try:
            if route.role is not None:
                _check_role(route, request, self.runner.settings.anonymous_read)
            args, unread = await parse_args(route, request)
            assert route.fetch is not None

            async def call(document: str, variables: dict[str, Any]) -> Any:
                if head and is_mutation(document):
                    raise ApiError(
                        405,
                        "METHOD_NOT_ALLOWED",
                        "HEAD writes nothing, and this GET would: send it as GET",
                        {"allowed": "GET"},
                    )
                return await self.runner(document, variables, request)

            data = await route.fetch(call, args)
            out = route.shape(data, args)
        except ApiError as error:
            return error.response()
        except BodyTooLarge:  # a streamed body over the limit: the middleware answers 413
            raise
        except Exception:
            log.exception("compat route %s %s failed", route.method, route.path)
            return error_response(500, "INTERNAL_SERVER_ERROR", "Internal server error.")
        answer = out if isinstance(out, Response) else SafeJSONResponse(out, status_code=route.status_code)
        return name_unread(answer, unread)


def without_body(response: Response) -> Response:
    """``response``'s status and headers (its ``Content-Length`` included), no body. A file
    is answered as it is: ``FileResponse`` sends headers alone to a HEAD itself, and makes
    its ``Content-Length``, ``ETag`` and ``Last-Modified`` only as it is sent."""
    if isinstance(response, FileResponse):
        return response
    bare = Response(status_code=response.status_code, background=response.background)
    bare.raw_headers = list(response.raw_headers)
    return bare


def is_mutation(document: str) -> bool:
    """Does ``document`` (a route's own, one operation) hold a mutation?"""
    operation = document_operation(document)
    return operation is not None and operation.operation is OperationType.MUTATION


def _check_role(route: RestRoute, request: Request, anonymous_read: bool) -> None:
    assert route.role is not None
    try:
        identity_in(request.scope).require(
            route.role, f"{route.method} {route.path}", anonymous_read=anonymous_read
        )
    except PublicError as exc:
        status = 401 if exc.code == "UNAUTHENTICATED" else 403
        raise ApiError(status, exc.code, exc.message) from None


def undeclared_routes(routes: Sequence[RestRoute]) -> list[str]:
    """Routes other than GET that declare no role (must be empty)."""
    return [f"{r.method} {r.path}" for r in routes if r.method not in SAFE_METHODS and r.role is None]


class RouteDocumentError(RuntimeError):
    """A compat route's GraphQL document does not validate against the schema it would run on."""


def check_routes(routes: Sequence[RestRoute], runner: GraphRunner) -> list[RestRoute]:
    """The routes, once each is known to be servable; raises if one is not.

    A route that may write without declaring its role, or whose document the schema rejects
    (a field renamed or removed), is a programming error: the layer is not built, and the
    error names each such route with the validation messages.
    """
    if undeclared := undeclared_routes(routes):
        raise RuntimeError(
            f"REST routes without a declared role: {', '.join(undeclared)} (add role=Role....)"
        )
    broken = [
        f"{route.method} {route.path}: {problem}"
        for route in routes
        for document in route.documents
        for problem in runner.problems(document)
    ]
    if broken:
        raise RouteDocumentError(
            "REST routes whose GraphQL documents do not validate against the schema:\n  "
            + "\n  ".join(broken)
        )
    return list(routes)


def build_routes(routes: Sequence[RestRoute], runner: GraphRunner) -> list[Route]:
    """One Starlette route per path (all its methods), in declaration order."""
    by_path: dict[str, list[RestRoute]] = {}
    for route in routes:
        if route.served_elsewhere:
            continue
        by_path.setdefault(route.path, []).append(route)
    return [Route(path, PathEndpoint(group, runner), methods=None) for path, group in by_path.items()]
