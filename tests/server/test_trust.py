"""The front door: credentials, anonymous reads, CORS, content types, Origin, request budgets.

Spoken to as clients would: HTTP and WebSocket against the app (in process), and a real
uvicorn server where the behaviour depends on it (WebSocket denial responses).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from dsa110.auth.identity import Role
from dsa110.auth.keys import revoke_key
from dsa110.settings import Settings
from server.app import create_app
from tests.auth.issuer import AUDIENCE, ISSUER, Issuer
from tests.credentials import key_headers
from tests.databases import REDIS_URL, scratch_database
from tests.live.conftest import LiveApp, TransportWs, running
from tests.live.servers import server_process

EVIL = "https://evil.example.org"
DASHBOARD = "https://dash.example.org"
ME = "{ me { name kind role } }"
CREATE_JOB = 'mutation { createMosaicJob(startTime: "2025-10-24T00:00:00Z", endTime: "2025-10-24T06:00:00Z") { jobId } }'


@pytest.fixture
def base_settings(empty_db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, api_key_cache_s=0)


@contextlib.asynccontextmanager
async def app_with(settings: Settings, **changes: Any) -> AsyncIterator[LiveApp]:
    async with running(dataclasses.replace(settings, **changes)) as live:
        yield live


def _graph_code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


async def test_credentials_that_do_not_verify_are_refused_not_ignored(base_settings: Settings) -> None:
    async with app_with(base_settings) as live:
        viewer = await key_headers(live.engine, Role.VIEWER, "short-lived")
        assert (await live.http.post("/graphql", json={"query": ME}, headers=viewer)).json()["data"][
            "me"
        ] == {
            "name": "key:short-lived",
            "kind": "key",
            "role": "VIEWER",
        }
        await revoke_key(live.engine, "short-lived")
        for headers in (
            viewer,  # revoked
            {"Authorization": "Bearer d110_000000000000_" + "x" * 43},  # unknown
            {"Authorization": "Basic dXNlcjpwYXNz"},  # another scheme
            {"Authorization": "Bearer "},
            {"X-API-Key": "not-a-key"},
            {"Authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig"},  # a JWT, and no issuer configured
            {"Authorization": "Bearer " + "k" * 10_000},
        ):
            for path in ("/graphql", "/api/status"):
                refused = await live.http.get(path, params={"query": ME}, headers=headers)
                assert refused.status_code == 401, (headers, refused.text)
                assert refused.headers["www-authenticate"] == 'Bearer realm="dsa110"'
                body = refused.json()
                code = body["code"] if path.startswith("/api") else body["errors"][0]["extensions"]["code"]
                assert code == "UNAUTHENTICATED"
        anonymous = (await live.http.post("/graphql", json={"query": ME})).json()["data"]["me"]
        assert anonymous == {"name": "anonymous", "kind": "anonymous", "role": None}


async def test_two_different_credentials_are_refused_and_refusals_say_why(base_settings: Settings) -> None:
    async with app_with(base_settings) as live:
        viewer = await key_headers(live.engine, Role.VIEWER, "looker")
        operator = await key_headers(live.engine, Role.OPERATOR, "doer")
        viewer_key = viewer["Authorization"].removeprefix("Bearer ")
        operator_key = operator["Authorization"].removeprefix("Bearer ")
        # Which key a request acts as must not hang on a precedence the client cannot see.
        both = {"Authorization": f"Bearer {viewer_key}", "X-API-Key": operator_key}
        refused = await live.http.post("/graphql", json={"query": ME}, headers=both)
        assert refused.status_code == 401 and _graph_code(refused) == "UNAUTHENTICATED"
        assert "different credentials" in refused.json()["errors"][0]["message"]
        # The same header twice with different keys: the last one used to win, silently.
        for name, values in (
            ("Authorization", (f"Bearer {operator_key}", f"Bearer {viewer_key}")),
            ("X-API-Key", (operator_key, viewer_key)),
        ):
            for path in ("/graphql", "/api/status"):
                twice = await live.http.post(
                    path, json={"query": ME}, headers=[(name, values[0]), (name, values[1])]
                )
                assert twice.status_code == 401, (name, path, twice.text)
                assert "more than once" in twice.text
        repeated = [("Authorization", f"Bearer {operator_key}")] * 2
        me = (await live.http.post("/graphql", json={"query": ME}, headers=repeated)).json()["data"]["me"]
        assert me["name"] == "key:doer"
        same = {"Authorization": f"Bearer {operator_key}", "X-API-Key": operator_key}
        me = (await live.http.post("/graphql", json={"query": ME}, headers=same)).json()["data"]["me"]
        assert me["name"] == "key:doer"
        for headers, says in (
            ({"Authorization": "Bearer "}, "holds no key or token"),
            ({"Authorization": "Bearer nope"}, "not an API key"),
            ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer scheme"),
        ):
            answer = await live.http.post("/graphql", json={"query": ME}, headers=headers)
            assert answer.status_code == 401 and says in answer.json()["errors"][0]["message"], answer.text


async def test_oidc_tokens_from_the_configured_issuer(base_settings: Settings, tmp_path: Path) -> None:
    issuer = Issuer(tmp_path)
    oidc = {"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE, "oidc_jwks": str(issuer.jwks_file)}
    async with app_with(base_settings, **oidc) as live:
        bearer = {"Authorization": f"Bearer {issuer.token(role='operator', sub='astro-7')}"}
        me = (await live.http.post("/graphql", json={"query": ME}, headers=bearer)).json()["data"]["me"]
        assert me == {"name": "oidc:astro-7", "kind": "oidc", "role": "OPERATOR"}
        job = await live.http.post("/graphql", json={"query": CREATE_JOB}, headers=bearer)
        assert "errors" not in job.json()
        expired = {"Authorization": f"Bearer {issuer.token(lifetime_s=-300)}"}
        assert (await live.http.get("/api/status", headers=expired)).status_code == 401
        no_role = {"Authorization": f"Bearer {issuer.token(role=None)}"}
        refused = await live.http.get("/api/status", headers=no_role)
        assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"


async def test_reads_need_credentials_when_anonymous_reading_is_off(base_settings: Settings) -> None:
    async with app_with(base_settings, anonymous_read=False) as live:
        for path in ("/api/status", "/api/ese/candidates", "/api/sse/status"):
            refused = await live.http.get(path)
            assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHENTICATED", path
        assert _graph_code(await live.http.post("/graphql", json={"query": ME})) == "UNAUTHENTICATED"
        # Always open: health, the GraphiQL page and its assets, the API documents.
        assert (await live.http.get("/healthz")).status_code == 200
        page = await live.http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200 and "graphiql" in page.text.lower()
        assert (await live.http.get("/graphql/static/dsa110-graphiql.js")).status_code == 200
        assert (await live.http.get("/api/openapi.json")).status_code == 200
        assert (
            await live.http.get("/graphql", params={"query": ME}, headers={"Accept": "text/html"})
        ).status_code == 401
        viewer = await key_headers(live.engine, Role.VIEWER)
        assert (await live.http.get("/api/status", headers=viewer)).status_code == 200
        with pytest.raises(WebSocketDisconnect) as closed:
            async with live.ws("/api/ws/status", protocol=""):
                pass
        assert closed.value.code == 1008
        live.http.headers.update(viewer)
        async with live.ws("/api/ws/status", protocol="") as ws:
            assert json.loads(await ws.receive_text())["type"] == "status_update"


async def test_cors_is_off_by_default_and_follows_the_allow_list(base_settings: Settings) -> None:
    preflight = {"Origin": DASHBOARD, "Access-Control-Request-Method": "POST"}
    async with app_with(base_settings) as live:
        answer = await live.http.get("/api/status", headers={"Origin": DASHBOARD})
        assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
        assert (
            "access-control-allow-origin"
            not in (await live.http.options("/graphql", headers=preflight)).headers
        )
    async with app_with(base_settings, cors_origins=(DASHBOARD,)) as live:
        allowed = await live.http.options(
            "/graphql", headers={**preflight, "Access-Control-Request-Headers": "authorization"}
        )
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == DASHBOARD
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        got = await live.http.get("/api/status", headers={"Origin": DASHBOARD})
        assert got.headers["access-control-allow-origin"] == DASHBOARD
        other = await live.http.options("/graphql", headers={**preflight, "Origin": EVIL})
        assert "access-control-allow-origin" not in other.headers


async def test_writes_must_be_json_so_a_cross_site_form_cannot_write(base_settings: Settings) -> None:
    async with app_with(base_settings) as live:
        operator = await key_headers(live.engine, Role.OPERATOR)
        body = json.dumps({"query": CREATE_JOB})
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ):
            headers = {**operator, "Content-Type": content_type}
            graph = await live.http.post("/graphql", content=body, headers=headers)
            assert graph.status_code == 415 and _graph_code(graph) == "UNSUPPORTED_MEDIA_TYPE", content_type
            rest = await live.http.post("/api/regions", content=b'{"image_id": 1}', headers=headers)
            assert rest.status_code == 415 and rest.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
        no_type = await live.http.post(
            "/graphql", content=body.encode(), headers={**operator, "Content-Type": ""}
        )
        assert no_type.status_code == 415
        fine = await live.http.post(
            "/graphql", content=body, headers={**operator, "Content-Type": "application/json; charset=utf-8"}
        )
        assert fine.status_code == 200 and "errors" not in fine.json()
        jobs = (await live.http.post("/graphql", json={"query": "{ jobs { totalCount } }"})).json()
        assert jobs["data"]["jobs"]["totalCount"] == 1  # only the JSON request wrote


async def test_origin_is_checked_for_writes_sse_and_websockets(base_settings: Settings) -> None:
    async with app_with(base_settings, cors_origins=(DASHBOARD,)) as live:
        operator = await key_headers(live.engine, Role.OPERATOR)
        for origin, allowed in (
            (EVIL, False),
            ("null", False),
            (DASHBOARD, True),
            ("http://testserver", True),
        ):
            write = await live.http.post(
                "/graphql", json={"query": CREATE_JOB}, headers={**operator, "Origin": origin}
            )
            assert (write.status_code == 200) is allowed, (origin, write.text)
            if not allowed:
                assert write.status_code == 403 and _graph_code(write) == "ORIGIN_NOT_ALLOWED"
        sse = await live.http.get("/api/sse/status", headers={"Origin": EVIL})
        assert sse.status_code == 403 and sse.json()["code"] == "ORIGIN_NOT_ALLOWED"
        for path, protocol in (("/graphql", "graphql-transport-ws"), ("/api/ws/status", "")):
            live.http.headers["Origin"] = EVIL
            with pytest.raises(WebSocketDisconnect) as closed:
                async with live.ws(path, protocol=protocol):
                    pass
            assert (closed.value.code, closed.value.reason) == (1008, "ORIGIN_NOT_ALLOWED")
            live.http.headers["Origin"] = DASHBOARD
            async with live.ws(path, protocol=protocol) as ws:
                if protocol:
                    assert (await TransportWs(ws).init())["type"] == "connection_ack"
                else:
                    assert json.loads(await ws.receive_text())["type"] == "status_update"
            del live.http.headers["Origin"]  # scripts send none: allowed
            async with live.ws(path, protocol=protocol):
                pass


async def test_a_page_served_from_this_machine_may_open_streams_from_this_machine(
    base_settings: Settings,
) -> None:
    # The legacy dashboard's Vite dev server (changeOrigin) forwards its WebSocket with the
    # page's Origin and our Host: a local page, calling from this machine, passes.
    local_pages = ("http://localhost:3210", "http://127.0.0.1:5173", "http://[::1]:8080")
    async with app_with(base_settings) as live:
        operator = await key_headers(live.engine, Role.OPERATOR)
        for origin in local_pages:
            live.http.headers["Origin"] = origin
            async with live.ws("/api/ws/status", protocol="") as ws:
                assert json.loads(await ws.receive_text())["type"] == "status_update"
            write = await live.http.post("/graphql", json={"query": CREATE_JOB}, headers=operator)
            assert write.status_code == 200 and "errors" not in write.json(), origin
        # names that only look local are foreign sites
        for origin in ("http://localhost.evil.example.org", "http://127.0.0.1.nip.io", EVIL):
            live.http.headers["Origin"] = origin
            with pytest.raises(WebSocketDisconnect) as closed:
                async with live.ws("/api/ws/status", protocol=""):
                    pass
            assert closed.value.reason == "ORIGIN_NOT_ALLOWED", origin
        # an Origin or Host no URL parser takes is refused with its code, not a 500
        operator = await key_headers(live.engine, Role.OPERATOR)
        for bad in ({"Origin": "http://[::1"}, {"Origin": "http://a:b:c"}, {"Host": "[::1", "Origin": EVIL}):
            write = await live.http.post("/graphql", json={"query": CREATE_JOB}, headers={**operator, **bad})
            assert write.status_code == 403 and _graph_code(write) == "ORIGIN_NOT_ALLOWED", bad
    # The same local Origin from another machine is refused: only this machine's pages pass.
    async with running(base_settings, client=("192.0.2.7", 50000)) as remote:
        refused = await remote.http.get("/api/sse/status", headers={"Origin": local_pages[0]})
        assert refused.status_code == 403 and refused.json()["code"] == "ORIGIN_NOT_ALLOWED"
        remote.http.headers["Origin"] = local_pages[1]
        with pytest.raises(WebSocketDisconnect) as closed:
            async with remote.ws("/api/ws/status", protocol=""):
                pass
        assert closed.value.reason == "ORIGIN_NOT_ALLOWED"


async def test_websocket_credentials_in_connection_init(base_settings: Settings) -> None:
    async with app_with(base_settings, anonymous_read=False) as live:
        operator = await key_headers(live.engine, Role.OPERATOR, "ws-operator")
        async with live.ws() as ws:
            client = TransportWs(ws)
            assert (await client.init(operator))["type"] == "connection_ack"
            await client.subscribe("me", ME)
            assert (await client.next_data("me"))["me"]["name"] == "key:ws-operator"
            await client.subscribe("job", CREATE_JOB)
            assert (await client.next_data("job"))["createMosaicJob"]["jobId"] > 0
        for payload in (None, {"Authorization": "Bearer d110_nope"}, {"X-API-Key": 42}):
            async with live.ws() as ws:
                client = TransportWs(ws)
                with pytest.raises(WebSocketDisconnect) as closed:
                    await client.init(payload)
                    await ws.receive_text()
                assert closed.value.code == 4403, payload
        async with live.ws(protocol="graphql-ws") as ws:  # the legacy protocol says why
            await ws.send_text(
                json.dumps({"type": "connection_init", "payload": {"authorization": "Bearer bad"}})
            )
            error = json.loads(await ws.receive_text())
            assert error["type"] == "connection_error"
            assert error["payload"]["extensions"]["code"] == "UNAUTHENTICATED"
        live.http.headers.update(operator)  # on the upgrade request instead
        async with live.ws() as ws:
            client = TransportWs(ws)
            assert (await client.init())["type"] == "connection_ack"
            await client.subscribe("me", ME)
            assert (await client.next_data("me"))["me"]["role"] == "OPERATOR"


async def test_an_anonymous_websocket_may_read_but_not_write(base_settings: Settings) -> None:
    async with app_with(base_settings) as live, live.ws() as ws:
        client = TransportWs(ws)
        await client.init()
        await client.subscribe("job", CREATE_JOB)
        message = await client.for_op("job")
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
        await client.subscribe("me", ME)
        assert (await client.next_data("me"))["me"]["kind"] == "anonymous"


async def test_budgets_per_identity_and_per_address(base_settings: Settings) -> None:
    limits = {"anonymous_rate_limit_per_minute": 3, "rate_limit_per_minute": 4}
    async with app_with(base_settings, **limits) as live:
        first = await key_headers(live.engine, Role.VIEWER)
        second = await key_headers(live.engine, Role.VIEWER)
        statuses = [(await live.http.get("/api/status")).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await live.http.get("/api/status")
        assert refused.json()["code"] == "RATE_LIMITED" and 1 <= int(refused.headers["retry-after"]) <= 60
        graph = await live.http.post("/graphql", json={"query": ME})
        assert graph.status_code == 429 and _graph_code(graph) == "RATE_LIMITED"
        assert (await live.http.get("/healthz")).status_code == 200  # monitoring is never limited
        keyed = [(await live.http.get("/api/status", headers=first)).status_code for _ in range(5)]
        assert keyed == [200] * 4 + [429]
        assert (await live.http.get("/api/status", headers=second)).status_code == 200


@pytest.mark.skipif(not REDIS_URL, reason="DSA110_TEST_REDIS_URL not set")
async def test_processes_sharing_redis_share_each_budget(tmp_path: Path) -> None:
    assert REDIS_URL is not None
    namespace = f"t{uuid.uuid4().hex[:10]}"
    async with scratch_database("sqlite", tmp_path) as url:
        settings = Settings(
            data_dir=tmp_path,
            database_url=url,
            events_url=REDIS_URL,
            events_namespace=namespace,
            metrics_interval_s=0,
            anonymous_rate_limit_per_minute=4,
        )
        apps = [create_app(settings, migrate=False) for _ in range(2)]  # two server processes' apps
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") for app in apps
        ]
        try:
            answers = [(await http.get("/api/status")).status_code for http in clients * 3]
        finally:
            for http, app in zip(clients, apps, strict=True):
                await http.aclose()
                await app.state.rate_limiter.close()
                await app.state.engine.dispose()
        assert answers == [200, 200, 200, 200, 429, 429]


async def test_the_dashboards_dev_proxy_may_search_by_post(base_settings: Settings) -> None:
    """The legacy dashboard's Vite dev server proxies ``/api`` to this server and passes the
    page's ``Origin`` on (``changeOrigin`` rewrites only ``Host``): its searches by POST
    (Sources, Mosaics) arrive as anonymous JSON from a foreign origin. A browser cannot
    send JSON cross-site without a CORS preflight, so these may read; a request with
    credentials, or one a cross-site form or a bodiless fetch could send, is still refused."""
    vite = "http://localhost:5173"
    async with app_with(base_settings) as live:
        search = await live.http.post("/api/sources/search", json={"limit": 5}, headers={"Origin": vite})
        assert search.status_code == 200, search.text
        query = await live.http.post(
            "/graphql", json={"query": "{ jobs { totalCount } }"}, headers={"Origin": vite}
        )
        assert query.status_code == 200 and query.json()["data"]["jobs"]["totalCount"] == 0
        # Anonymous JSON cannot write: the role check refuses it as from anywhere else.
        write = await live.http.post("/graphql", json={"query": CREATE_JOB}, headers={"Origin": EVIL})
        assert write.status_code == 401 and _graph_code(write) == "UNAUTHENTICATED"
        operator = await key_headers(live.engine, Role.OPERATOR)
        keyed = await live.http.post(
            "/graphql", json={"query": CREATE_JOB}, headers={**operator, "Origin": EVIL}
        )
        assert keyed.status_code == 403 and _graph_code(keyed) == "ORIGIN_NOT_ALLOWED"
        bodiless = await live.http.post("/api/reprocess/2025-10-24T00:00:00", headers={"Origin": EVIL})
        assert bodiless.status_code == 403 and bodiless.json()["code"] == "ORIGIN_NOT_ALLOWED"
        jobs = (await live.http.post("/graphql", json={"query": "{ jobs { totalCount } }"})).json()
        assert jobs["data"]["jobs"]["totalCount"] == 0


async def test_a_real_server_denies_a_cross_site_websocket_with_a_body(tmp_path: Path) -> None:
    async with (
        scratch_database("sqlite", tmp_path) as url,
        server_process(url, "memory://", tmp_path) as (base, _),
    ):
        ws_url = base.replace("http://", "ws://") + "/graphql"
        with pytest.raises(InvalidStatus) as denied:
            async with connect(ws_url, subprotocols=["graphql-transport-ws"], origin=EVIL):  # type: ignore[arg-type, list-item]
                pass
        response = denied.value.response
        assert response.status_code == 403
        assert json.loads(response.body)["errors"][0]["extensions"]["code"] == "ORIGIN_NOT_ALLOWED"
        async with connect(ws_url, subprotocols=["graphql-transport-ws"], origin=base) as ws:  # type: ignore[arg-type, list-item]
            await ws.send(json.dumps({"type": "connection_init"}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
