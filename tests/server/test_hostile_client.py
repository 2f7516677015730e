"""What a hostile (or lost) client met at the edges of the server, each answered with a code.

The cases are a probe's findings: a subscription asked for as one JSON answer, WebSocket
handshakes refused (for their Origin, or at a path with no WebSocket) that made uvicorn log
an ERROR line, or were closed with a bare 403, a trailing-slash redirect built from the
client's ``Host``, a GET parameter that is not JSON reported as a bad body, and ``/``
answering a 404. Spoken to in process, and through a real uvicorn server where the answer
depends on it (denial responses, the server's log).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from httpx_ws import WebSocketDisconnect
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Route, Router
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from dsa110 import json_text
from dsa110.settings import Settings
from server.app import create_app
from server.fallback import install as install_fallback
from server.graphql_http import Refused, decode, decode_parameter
from server.ws_protocol import DirectSendWebSocketProtocol
from tests.live.conftest import TransportWs, running
from tests.waiting import eventually

SUBSCRIPTION = "subscription { pipelineStatus { queue { pending } } }"
TWO_OPERATIONS = "query Q { __typename } subscription S { pipelineStatus { queue { pending } } }"
EVIL = "https://evil.example.org"
NOT_A_WEBSOCKET = ("/nope", "/api/nope", "/graphql/static/graphiql.min.css")


@pytest.fixture
def settings(empty_db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0)


def _error(response: httpx.Response) -> dict[str, Any]:
    return response.json()["errors"][0]  # type: ignore[no-any-return]


# -- a subscription over plain HTTP ---------------------------------------------------------


async def test_a_subscription_over_plain_http_is_refused_with_a_code(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with running(settings) as live:
        asked = [
            await live.http.post("/graphql", json={"query": SUBSCRIPTION}),
            await live.http.get("/graphql", params={"query": SUBSCRIPTION}),
            await live.http.post("/graphql", json={"query": TWO_OPERATIONS, "operationName": "S"}),
            await live.http.get("/graphql", params={"query": TWO_OPERATIONS, "operationName": "S"}),
            await live.http.post(
                "/graphql",
                json={"query": SUBSCRIPTION},
                headers={"accept": "application/graphql-response+json"},
            ),
        ]
        for response in asked:
            assert response.status_code == 400, response.text
            error = _error(response)
            assert error["extensions"]["code"] == "SUBSCRIPTION_NEEDS_STREAM"
            assert "graphql-transport-ws" in error["message"]
            assert "Accept: text/event-stream" in error["message"]
            assert "data" not in response.json()
        # The document's query still runs (over SSE the subscription streams: test_processes).
        query = await live.http.post("/graphql", json={"query": TWO_OPERATIONS, "operationName": "Q"})
        assert query.status_code == 200 and query.json() == {"data": {"__typename": "Query"}}
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- WebSocket handshakes: in process (no denial responses) and against uvicorn ---------------


async def test_a_websocket_at_a_path_without_one_is_closed_with_not_found(settings: Settings) -> None:
    async with running(settings) as live:
        for path in NOT_A_WEBSOCKET:
            with pytest.raises(WebSocketDisconnect) as closed:
                async with live.ws(path, protocol=""):
                    pass
            assert (closed.value.code, closed.value.reason) == (1008, "NOT_FOUND"), path
        async with live.ws("/graphql") as ws:  # the WebSocket routes are still reached
            assert (await TransportWs(ws).init())["type"] == "connection_ack"
        async with live.ws("/api/ws/status", protocol="") as ws:
            assert json.loads(await ws.receive_text())["type"] == "status_update"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.asynccontextmanager
async def uvicorn_server(settings: Settings) -> AsyncIterator[tuple[str, list[logging.LogRecord]]]:
    """The app under uvicorn in this process, with the WebSocket protocol `serve` runs;
    yields (ws:// base URL, what uvicorn logged), complete once the block is left."""
    logger = logging.getLogger("uvicorn.error")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    config = uvicorn.Config(
        create_app(settings, migrate=False),
        host="127.0.0.1",
        port=0,
        ws=DirectSendWebSocketProtocol,
        ws_per_message_deflate=False,
        log_config=None,  # leave logging as it is: the records come to the handler above
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: server.started or task.done())
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}", handler.records
    finally:
        server.should_exit = True
        await task  # waits for the connections' tasks: everything they log is in by then
        logger.removeHandler(handler)
        logger.setLevel(level)


async def _denied(url: str, **options: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(InvalidStatus) as denied:
        async with connect(url, **options):
            pass
    response = denied.value.response
    return response.status_code, json.loads(response.body or b"null")


async def test_a_real_server_denies_handshakes_with_a_coded_body_and_logs_no_error(
    settings: Settings,
) -> None:
    async with uvicorn_server(dataclasses.replace(settings, cors_origins=())) as (base, records):
        status, body = await _denied(f"{base}/graphql", subprotocols=["graphql-transport-ws"], origin=EVIL)
        assert status == 403 and body["errors"][0]["extensions"]["code"] == "ORIGIN_NOT_ALLOWED"
        for path in NOT_A_WEBSOCKET:
            status, body = await _denied(f"{base}{path}")
            code = body["code"] if path.startswith("/api/") else body["errors"][0]["extensions"]["code"]
            assert (status, code) == (404, "NOT_FOUND"), (path, body)
        async with connect(f"{base}/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    assert errors == []


# -- HTTP edges ---------------------------------------------------------------------------------


async def test_a_trailing_slash_redirects_without_echoing_the_host(settings: Settings) -> None:
    async with running(settings) as live:
        evil_host = {"host": "evil.example"}
        got = await live.http.get("/graphql/", params={"query": "{ __typename }"}, headers=evil_host)
        assert got.status_code == 307
        assert got.headers["location"] == "/graphql?query=%7B+__typename+%7D"
        posted = await live.http.post("/graphql/", json={"query": "{ __typename }"}, headers=evil_host)
        assert (posted.status_code, posted.headers["location"]) == (307, "/graphql")
        followed = await live.http.post(posted.headers["location"], json={"query": "{ __typename }"})
        assert followed.json() == {"data": {"__typename": "Query"}}
        assert (await live.http.get("/healthz/", headers=evil_host)).headers["location"] == "/healthz"
        # A path no route holds either way: 404 with a code, no Location. (A path such as
        # "//evil.example/" cannot reach the "//host" guard here: every route of this app
        # starts with "/" and a name, so nothing matches "//evil.example" with or without the
        # guard; ``test_the_slash_redirect_never_points_to_another_host`` exercises it.)
        missing = await live.http.get("/nope/")
        assert missing.status_code == 404 and "location" not in missing.headers
        assert _error(missing)["extensions"]["code"] == "NOT_FOUND"


def test_no_route_of_the_app_takes_a_path_that_starts_with_two_slashes(tmp_path: Path) -> None:
    """Why the live test cannot reach the guard: a path "//x" (as a client's ``GET //x/``
    arrives) matches no route, so there is nothing to redirect to. A route added with a
    parameter first (``/{name}``) would change that: the guard then answers (next test)."""
    app = create_app(Settings(data_dir=tmp_path), migrate=False)
    for path in ("//evil.example", "//graphql", "//healthz", "//api/x", "//", "///graphql"):
        scope = {"type": "http", "path": path, "root_path": "", "method": "GET", "headers": []}
        assert all(route.matches(scope)[0] is Match.NONE for route in app.router.routes), path


async def test_the_slash_redirect_never_points_to_another_host() -> None:
    """A router with a route that takes "//evil.fits" (``{path:path}`` may start with "/"):
    for ``GET //evil.fits/`` the slash redirect would send ``Location: //evil.fits``, a
    network-path reference (the host ``evil.fits``); it answers the router's 404 instead."""

    async def fits(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.path_params["path"])

    router = Router(routes=[Route("/{path:path}.fits", fits)])
    install_fallback(router)
    transport = httpx.ASGITransport(app=router)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        moved = await client.get("/files/a/b.fits/", params={"q": "1"})
        assert (moved.status_code, moved.headers["location"]) == (307, "/files/a/b.fits?q=1")
        assert (await client.get("http://testserver//evil.fits")).text == "/evil"  # as it is
        for url in ("http://testserver//evil.fits/", "http://testserver///evil.fits/"):
            evil = await client.get(url)
            assert evil.status_code == 404 and "location" not in evil.headers, evil.headers


@pytest.mark.parametrize("name", ["variables", "extensions"])
async def test_a_get_parameter_that_is_not_json_is_named(settings: Settings, name: str) -> None:
    async with running(settings) as live:
        response = await live.http.get("/graphql", params={"query": "{ __typename }", name: "{bad"})
        assert response.status_code == 400
        error = _error(response)
        assert error["extensions"]["code"] == "INVALID_JSON"
        assert error["message"] == f"the `{name}` parameter is not valid JSON"


def test_a_json_refusal_with_a_new_code_keeps_its_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``JsonFault`` code the messages do not word yet: a coded 400 all the same, not a
    ``KeyError`` (a 500)."""

    def refuse(data: str | bytes, max_depth: int) -> Any:
        raise json_text.JsonFault("TOO_MANY_KEYS")

    monkeypatch.setattr(json_text, "strict_loads", refuse)
    for parse, name in ((decode, "body"), (lambda text: decode_parameter("variables", text), "`variables`")):
        with pytest.raises(Refused) as caught:
            parse("{}")
        assert (caught.value.status_code, caught.value.code) == (400, "TOO_MANY_KEYS")
        assert name in caught.value.reason and "JSON" in caught.value.reason


async def test_the_root_points_a_new_user_to_the_entry_points(settings: Settings) -> None:
    # Open like the health check: a server that needs credentials for reading still answers it.
    async with running(dataclasses.replace(settings, anonymous_read=False)) as live:
        response = await live.http.get("/")
        assert response.status_code == 200
        hrefs = {link["href"] for link in response.json()["links"]}
        assert hrefs == {"/graphql", "/api/docs", "/healthz"}
        page = await live.http.get("/", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for href in hrefs:
            assert f'href="{href}"' in page.text
        assert (await live.http.get("/graphql", params={"query": "{ __typename }"})).status_code == 401
