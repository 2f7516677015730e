"""JSON request bodies of the /api routes: the strict parser, a nesting limit, and the codes
/graphql gives the same faults (``INVALID_JSON``, ``NESTED_TOO_DEEP``, ``INVALID_UNICODE``),
a 400 in the envelope with ``details.location: "body"``, never a 500, and nothing written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from compat_rest.routing import MAX_BODY_DEPTH
from tests.compat.conftest import Graph, assert_envelope

SEARCH = "/api/sources/search"
JSON_HEADERS = {"content-type": "application/json"}


def nested(levels: int, inner: str = "1") -> str:
    """``levels`` objects one inside the other (the outermost is the body itself)."""
    return '{"a":' * levels + inner + "}" * levels


FAULTS = [
    (b"{", "INVALID_JSON"),
    (b'{"limit": ', "INVALID_JSON"),
    (b'{"limit": 10,}', "INVALID_JSON"),
    (b"\xff\xfe", "INVALID_JSON"),
    (b'{"limit": "\xc3\x28"}', "INVALID_JSON"),  # not UTF-8
    (b'{"limit": NaN}', "INVALID_JSON"),
    (b'{"limit": Infinity}', "INVALID_JSON"),
    (b'{"ra_deg": -Infinity}', "INVALID_JSON"),
    (b"NaN", "INVALID_JSON"),
    (nested(MAX_BODY_DEPTH + 1).encode(), "NESTED_TOO_DEEP"),
    (b'{"filters": ' + b"[" * 100 + b"]" * 100 + b"}", "NESTED_TOO_DEEP"),
    (b"[" * 100_000, "NESTED_TOO_DEEP"),  # deeper than the interpreter's recursion limit
    (b'{"a":' * 50_000, "NESTED_TOO_DEEP"),
    (b'{"source_id": "\\ud800"}', "INVALID_UNICODE"),
    (b'{"filters": {"\\udfff": 1}}', "INVALID_UNICODE"),
    (b'{"filters": [["x", "\\ud83d"]]}', "INVALID_UNICODE"),
]


@pytest.mark.parametrize(("body", "code"), FAULTS)
async def test_a_faulty_search_body_is_400_with_its_code(
    api: httpx.AsyncClient, body: bytes, code: str
) -> None:
    refused = assert_envelope(await api.post(SEARCH, content=body, headers=JSON_HEADERS), 400, code)
    assert refused["details"] == {"location": "body"}


async def test_nesting_up_to_the_limit_is_parsed(api: httpx.AsyncClient) -> None:
    # At the limit the body reaches the route's own validation: a 422 for the unknown shape
    # at worst, never NESTED_TOO_DEEP.
    response = await api.post(SEARCH, content=nested(MAX_BODY_DEPTH).encode(), headers=JSON_HEADERS)
    assert response.status_code != 400, response.text
    assert response.status_code < 500 and response.json().get("code") != "NESTED_TOO_DEEP"
    escaped = await api.post(SEARCH, content=b'{"source_id": "\\ud83d\\ude00"}', headers=JSON_HEADERS)
    assert escaped.status_code == 200, escaped.text  # a surrogate pair is a character: text


async def test_an_empty_body_is_still_an_empty_object(api: httpx.AsyncClient) -> None:
    response = await api.post(SEARCH, content=b"  ", headers=JSON_HEADERS)
    assert response.status_code == 200, response.text


async def _region_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM regions"))).scalar_one())


async def test_a_faulty_region_body_writes_nothing(
    api: httpx.AsyncClient, graph: Graph, engine: AsyncEngine
) -> None:
    image = (await graph.data("{ images(first: 1) { nodes { imageId centerRaDeg centerDecDeg } } }"))[
        "images"
    ]["nodes"][0]
    head = f'{{"image_id": {image["imageId"]}, "type": "circle", "name": "body-json"'
    circle = f'{{"ra_deg": {image["centerRaDeg"]}, "dec_deg": {image["centerDecDeg"]}, "radius_arcsec": 60'
    faults: list[tuple[str, str]] = [
        (head + ', "coordinates": ' + circle + "}", "INVALID_JSON"),  # the body's closing brace missing
        (head + ', "coordinates": ' + circle + ', "x": NaN}}', "INVALID_JSON"),
        (head.replace('"body-json"', '"\\ud800"') + ', "coordinates": ' + circle + "}}", "INVALID_UNICODE"),
        (head + ', "coordinates": ' + circle + ', "x": ' + nested(MAX_BODY_DEPTH) + "}}", "NESTED_TOO_DEEP"),
    ]
    before = await _region_count(engine)
    for body, code in faults:
        response = await api.post("/api/regions", content=body.encode(), headers=JSON_HEADERS)
        assert_envelope(response, 400, code)
        assert await _region_count(engine) == before, body
    # The same body, well formed, writes a region: the faults above were refused, not ignored.
    well_formed = (head + ', "coordinates": ' + circle + "}}").encode()
    created = await api.post("/api/regions", content=well_formed, headers=JSON_HEADERS)
    assert created.status_code == 200, created.text
    assert await _region_count(engine) == before + 1
    deleted: dict[str, Any] = (await api.delete(f"/api/regions/{created.json()['id']}")).json()
    assert deleted["deleted"] is True


async def test_the_openapi_document_names_the_body_codes(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/api/openapi.json")).json()["paths"]
    for path, method in (("/api/sources/search", "post"), ("/api/regions", "post")):
        described = paths[path][method]["responses"]["400"]["description"]
        assert all(code in described for code in ("INVALID_JSON", "NESTED_TOO_DEEP", "INVALID_UNICODE")), path
    assert "NESTED_TOO_DEEP" not in paths["/api/regions"]["get"]["responses"]["400"]["description"]
