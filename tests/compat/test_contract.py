"""The contract: envelopes for bad input, unknown paths and methods; OpenAPI; Swagger; schemathesis."""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from dsa110.auth.identity import Role
from dsa110.demo.build import build_demo
from dsa110.settings import Settings
from server.app import create_app
from tests.compat.conftest import assert_envelope
from tests.credentials import key_headers

EXAMPLES_PER_OPERATION = 15
STREAMS = {"/api/sse/status", "/api/ws/status", "/api/jobs/id/{job_id}/logs"}
UNIMPLEMENTED: dict[tuple[str, str], str] = {
    ("GET", "/api/cache/keys/{key}"): "the legacy key-value cache (Redis) has no counterpart: no key to read",
    (
        "DELETE",
        "/api/cache/keys/{key}",
    ): "no key-value cache: no key to delete (DELETE /api/cache/clear empties the caches there are)",
}
"""Operations the graph cannot serve, (method, path) -> why (also in the README's compat table).
A path is listed here on purpose or not at all; it may then answer (and declare) 501."""

HOSTILE_GETS = [
    ("/api/images/abc", 422),
    ("/api/images/99999999999999999999", 422),
    ("/api/images?limit=-1", 422),
    ("/api/images?limit=100000", 422),
    ("/api/images?offset=1.5", 422),
    ("/api/images?dec_min=nan", 422),
    ("/api/images?noise_max=inf", 422),
    ("/api/images?pbcor=maybe", 422),
    ("/api/images?end_date=2025-13-45", 422),
    ("/api/sources/" + "N" * 500, 422),
    ("/api/sources/NVSS%00J1/variability", 422),
    ("/api/sources/x/detections?page=0", 422),
    ("/api/sources/x/postage_stamps?size_arcsec=0", 422),
    ("/api/ese/candidates?limit=" + "9" * 40, 422),
    ("/api/catalog/overlay?ra=1&dec=2&radius=0", 422),
    ("/api/catalog/overlay?ra=1&dec=2&radius=1e308", 422),
    ("/api/pointing_history?start_mjd=1&end_mjd=x", 422),
    ("/api/images/1/profile?profile_type=line&coordinates=" + "[" * 5000, 400),
    ("/api/groups/%2e%2e%2f%2e%2e%2fetc", 404),
    ("/api/data/..%2F..%2Fetc%2Fpasswd", 404),
    ("/api/no/such/path", 404),
    ("/api/", 404),
]

HOSTILE_POSTS = [
    ("/api/sources/search", b"{", 400),
    ("/api/sources/search", b"\xff\xfe", 400),
    ("/api/sources/search", b"[1, 2]", 422),
    ("/api/sources/search", b'{"limit": "ten"}', 422),
    ("/api/sources/search", b'{"limit": true}', 422),
    ("/api/sources/search", b'{"filters": []}', 422),
    ("/api/sources/search", b'{"sort": {"field": "drop table"}}', 422),
    ("/api/sources/search", b'{"ra_deg": 10}', 422),
    ("/api/sources/search", b"[" * 100_000, 400),
    ("/api/mosaics/query", b'{"start_time": "2025-10-24T13:00:00+99:00"}', 422),
    ("/api/regions", b'{"image_id": 1, "coordinates": "circle"}', 422),
    ("/api/images/1/fit", b'{"ra_deg": 400}', 422),
]


@pytest.mark.parametrize(("path", "status"), HOSTILE_GETS)
async def test_bad_gets_get_a_4xx_envelope(api: httpx.AsyncClient, path: str, status: int) -> None:
    assert_envelope(await api.get(path), status)


@pytest.mark.parametrize(("path", "body", "status"), HOSTILE_POSTS)
async def test_bad_bodies_get_a_4xx_envelope(
    api: httpx.AsyncClient, path: str, body: bytes, status: int
) -> None:
    response = await api.post(path, content=body, headers={"content-type": "application/json"})
    assert_envelope(response, status)


async def test_oversized_body_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/sources/search", content=b" " * 2_000_000)
    assert response.status_code == 413
    # the REST envelope, not the GraphQL {"errors": [...]} shape /graphql gets (issue 11)
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")
    assert "errors" not in response.json()

    async def chunks():  # no Content-Length: a streamed body is refused in the envelope too
        for _ in range(200):
            yield b" " * 10_000

    streamed = await api.post(
        "/api/sources/search", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_envelope(streamed, 413, "PAYLOAD_TOO_LARGE")


async def test_a_compressed_body_is_415_and_identity_passes(api: httpx.AsyncClient) -> None:
    body = json.dumps({"limit": 1}).encode()
    for coding in ("gzip", "br, gzip", "x-unknown"):
        refused = await api.post(
            "/api/sources/search",
            content=gzip.compress(body),
            headers={"content-type": "application/json", "content-encoding": coding},
        )
        assert_envelope(refused, 415, "UNSUPPORTED_MEDIA_TYPE")
        assert refused.headers["accept-encoding"] == "identity"
    plain = await api.post(
        "/api/sources/search",
        content=body,
        headers={"content-type": "application/json", "content-encoding": "identity"},
    )
    assert plain.status_code == 200
    two_lines = await api.post(  # repeated lines are one list: gzip is in it
        "/api/sources/search",
        content=gzip.compress(body),
        headers=[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("content-encoding", "identity"),
        ],
    )
    assert_envelope(two_lines, 415, "UNSUPPORTED_MEDIA_TYPE")
    no_body = await api.get("/api/status", headers={"content-encoding": "gzip"})  # nothing to decode
    assert no_body.status_code == 200
    graph = await api.post(
        "/graphql",
        content=gzip.compress(json.dumps({"query": "{ sources(first: 1) { totalCount } }"}).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert graph.status_code == 415  # GraphQL's error shape there
    assert graph.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_wrong_method_is_405_in_the_envelope(api: httpx.AsyncClient) -> None:
    response = await api.delete("/api/status")
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET"
    assert_envelope(await api.get("/api/sources/search"), 405)

    # Methods the routes did not list were a plain-text 405 without the envelope.
    for method in ("PROPFIND", "LOCK", "QUERY"):
        odd = await api.request(method, "/api/status")
        assert_envelope(odd, 405, "METHOD_NOT_ALLOWED")
        assert odd.headers["allow"] == "GET"
        assert_envelope(await api.request(method, "/api/no/such/path"), 404, "NOT_FOUND")
        assert_envelope(await api.request(method, "/api/api/status"), 405, "METHOD_NOT_ALLOWED")
    # The Swagger UI's static files: Starlette's own refusals were plain text.
    assert_envelope(await api.get("/api/docs/static/no-such-file.js"), 404, "NOT_FOUND")
    assert_envelope(
        await api.request("PROPFIND", "/api/docs/static/no-such-file.js"), 405, "METHOD_NOT_ALLOWED"
    )


async def test_only_listed_operations_may_be_unimplemented(api: httpx.AsyncClient) -> None:
    """No documented operation declares a 501 unless it is listed in UNIMPLEMENTED."""
    paths = (await api.get("/api/openapi.json")).json()["paths"]
    declared = {
        (method.upper(), path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "501" in operation["responses"]
    }
    assert declared == set(UNIMPLEMENTED)


async def test_openapi_document_and_swagger(api: httpx.AsyncClient) -> None:
    document = (await api.get("/api/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for path in (
        "/api/status",
        "/api/health",
        "/api/ese/candidates",
        "/api/sources/search",
        "/api/sources/{source_id}/detections",
        "/api/images",
        "/api/images/{image_id}/fits",
        "/api/mosaics/create",
        "/api/regions/{region_id}",
        "/api/catalog/overlay",
        "/api/data/{data_id}/lineage",
        "/api/observation_timeline/plot",
    ):
        assert path in paths, path
    limit = next(p for p in paths["/api/images"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
    page = await api.get("/api/docs")
    assert page.status_code == 200 and "/api/openapi.json" in page.text
    assert "http" not in page.text.split("<body>")[1].replace("/api/", "")
    asset = await api.get("/api/docs/static/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000


# --- property-based: schemathesis against our own OpenAPI document, in process ----------


def _build_demo(root: Path) -> str:
    """A separate small demo: schemathesis creates, updates and deletes through the API."""
    url = f"sqlite+aiosqlite:///{root / 'dsa110.sqlite3'}"
    # Built in its own thread and loop: this fixture is synchronous, like schemathesis' calls.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, build_demo(url, root, sources=120, days=1.0, images=True)).result()
    return url


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    root = tmp_path_factory.mktemp("schemathesis")
    url = _build_demo(root)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        headers = pool.submit(asyncio.run, key_headers(url, Role.ADMIN)).result()
    app = create_app(Settings(data_dir=root, database_url=url), migrate=False)
    yield schemathesis.openapi.from_asgi("/api/openapi.json", app), headers


CLIENT_TIMEOUT_S = Settings().request_deadline_s + 30.0


def test_no_5xx_and_every_response_matches_its_schema(api_schema: tuple[Any, dict[str, str]]) -> None:
    """Every operation of /api/openapi.json, fed generated input: no 5xx, no response off its schema."""
    schema, admin = api_schema
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40
    for operation in operations:
        if operation.path in STREAMS:
            continue  # endless streams, served by the server itself: tested in tests/live

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            # As an admin: writes are exercised too. The client waits past the server's own
            # request deadline (schemathesis' default is 10 s): what is checked is the answer,
            # a 504 envelope included, not the speed of a loaded machine.
            response = case.call(headers=admin, timeout=CLIENT_TIMEOUT_S)
            # A 500 is a defect; a 501 is one too unless the operation is listed in
            # UNIMPLEMENTED. The 503s (no metrics sample, database down) are declared per
            # operation, which status_code_conformance checks.
            assert response.status_code != 500, response.text
            if (case.operation.method.upper(), case.operation.path) not in UNIMPLEMENTED:
                assert response.status_code != 501, response.text
            # Semantically invalid yet schema-valid input (ra_deg without dec_deg, an unknown
            # catalog name) is answered with a 4xx envelope on purpose, so ST202 is off.
            case.validate_response(response, excluded_checks=[positive_data_acceptance, not_a_server_error])

        check()
