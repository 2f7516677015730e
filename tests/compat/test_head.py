"""HEAD on the legacy paths: GET's status and headers without the body, and never a write."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.compat.conftest import Demo, Graph


@pytest.mark.parametrize("path", ["/api/health", "/api/status", "/api/images?limit=2"])
async def test_head_answers_as_get_without_the_body(api: httpx.AsyncClient, path: str) -> None:
    got = await api.get(path)
    head = await api.head(path)
    assert got.status_code == head.status_code == 200, (got.text, head.headers)
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert int(head.headers["content-length"]) > 0


async def test_head_of_a_missing_thing_is_its_status_without_a_body(api: httpx.AsyncClient) -> None:
    got = await api.get("/api/images/987654321")
    head = await api.head("/api/images/987654321")
    assert got.status_code == head.status_code == 404 and head.content == b""


async def test_head_refuses_what_get_would_write_and_writes_nothing(
    api: httpx.AsyncClient, graph: Graph
) -> None:
    image = (await graph.data("{ images(first: 1) { nodes { imageId } } }"))["images"]["nodes"][0]
    page = f"/api/qa/images/{image['imageId']}/validation-report.html"
    reports = '{ qaArtifacts(first: 100, filter: {kinds: ["report"]}) { totalCount } }'
    before = await graph.data(reports)
    refused = await api.head(page, params={"save_to_file": "true"})
    assert refused.status_code == 405 and refused.headers["allow"] == "GET" and refused.content == b""
    assert await graph.data(reports) == before
    shown = await api.head(page)  # the page itself, not written
    assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/html")
    assert await graph.data(reports) == before


async def test_a_path_without_get_still_refuses_head(api: httpx.AsyncClient) -> None:
    refused = await api.head("/api/jobs/calibrate")
    assert refused.status_code == 405 and "POST" in refused.headers["allow"]


async def test_head_of_a_list_has_gets_length(api: httpx.AsyncClient) -> None:
    got = await api.get("/api/images?limit=2")
    head = await api.head("/api/images?limit=2")
    assert head.headers["content-length"] == got.headers["content-length"] == str(len(got.content))


async def test_head_of_a_file_has_gets_validators(api: httpx.AsyncClient, demo: Demo) -> None:
    # A file's Content-Length, ETag and Last-Modified are made as it is sent: HEAD must too.
    params = {"path": str(next((demo.root / "catalogs").glob("*.csv")))}
    got = await api.get("/api/qa/download", params=params)
    head = await api.head("/api/qa/download", params=params)
    assert got.status_code == head.status_code == 200 and head.content == b""
    for name in ("content-length", "etag", "last-modified", "content-type"):
        assert head.headers[name] == got.headers[name], name


async def test_head_of_an_event_stream_does_not_open_it(api: httpx.AsyncClient) -> None:
    # The stream never ends: a HEAD that opened it would hang here.
    for path in ("/api/sse/status", "/api/jobs/id/1/logs"):
        head = await asyncio.wait_for(api.head(path), timeout=10)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"].startswith("text/event-stream")


async def test_parameters_a_route_does_not_read_are_named_in_a_header(api: httpx.AsyncClient) -> None:
    # A typo'd filter is otherwise silent: the list answers unfiltered.
    typo = await api.get("/api/images", params={"limit": 2, "dec_mn": 10, "_": 1700000000})
    assert typo.status_code == 200 and typo.headers["x-ignored-parameters"] == "dec_mn"
    clean = await api.get("/api/images", params={"limit": 2, "dec_min": 10})
    assert clean.status_code == 200 and "x-ignored-parameters" not in clean.headers
    body = await api.post("/api/sources/search", json={"limit": 3, "sourceid": "x", "ra_deg": None})
    assert body.status_code == 200 and body.headers["x-ignored-parameters"] == "body.sourceid"
    many = {f"p{i}": 1 for i in range(25)} | {"\u00e9t\u00e9": 1}
    crowded = await api.get("/api/images", params={"limit": 1, **many})
    named = crowded.headers["x-ignored-parameters"].split(", ")
    assert len(named) == 21 and named[-1] == "+6 more"
