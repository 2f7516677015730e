"""/graphql over HTTP as a client sees it: GET and POST, GraphiQL, limits, never a 500."""

from __future__ import annotations

import os

import httpx
import pytest

QUERY = "{ sources(first: 2) { totalCount nodes { sourceId } } }"


async def test_post_and_get_answer_the_same(client: httpx.AsyncClient) -> None:
    posted = await client.post("/graphql", json={"query": QUERY})
    fetched = await client.get("/graphql", params={"query": QUERY})
    assert posted.status_code == fetched.status_code == 200
    assert posted.json() == fetched.json()
    assert posted.json()["data"]["sources"]["totalCount"] > 0


async def test_graphiql_is_served_with_local_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "https://" not in page.text and "http://" not in page.text
    assert "/graphql/static/" in page.text
    asset = await client.get("/graphql/static/graphiql.min.js")
    assert asset.status_code == 200


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "live": {"producers": 0, "subscribers": 0, "deliveries_direct": 0, "deliveries_queued": 0},
        "metrics_sampler": "off",
        "job_pool": "off",  # the test app runs no workers; `serve` starts them
        "streaming_supervisor": "off",
        "pid": os.getpid(),  # which worker answered, under serve --workers N
    }


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
        ({"content": b"[1,2,3]", "headers": {"content-type": "application/json"}}, 400),
        ({"json": {"query": 12}}, 400),
        ({"json": {"variables": {}}}, 400),
        ({"content": b"\xff\xfe\x00", "headers": {"content-type": "application/json"}}, 400),
        ({"json": {"query": QUERY, "variables": "nope"}}, 400),
    ],
)
async def test_malformed_requests_are_4xx(
    client: httpx.AsyncClient, kwargs: dict[str, object], status: int
) -> None:
    response = await client.post("/graphql", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status


async def test_oversized_body_is_413_with_a_code(client: httpx.AsyncClient) -> None:
    huge = "{ " + "sources(first: 1) { totalCount } " * 60_000 + "}"
    response = await client.post("/graphql", json={"query": huge})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks():  # no Content-Length: the limit must hold on streamed bodies too
        for _ in range(200):
            yield b" " * 10_000

    streamed = await client.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"  # GraphQL shape here


@pytest.mark.parametrize(
    ("document", "code"),
    [
        (
            "{ " + " ".join(f"a{i}: sources(first: 1) {{ totalCount }}" for i in range(40)) + " }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "{ sources { nodes { images { nodes { mosaics { images { nodes { mosaics { images { nodes { mosaics "
            "{ images { nodes { imageId } } } } } } } } } } } } } }",
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ("{ sources { nodes { " + "sourceId " * 6000 + "} } }", "GRAPHQL_PARSE_FAILED"),
        ("mutation { nothing }", "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_too_wide_deep_or_long_documents_are_refused(
    client: httpx.AsyncClient, document: str, code: str
) -> None:
    response = await client.post("/graphql", json={"query": document})
    assert response.status_code < 500
    body = response.json()
    assert body["errors"]
    assert {e["extensions"]["code"] for e in body["errors"]} == {code}, body


GRAPHQL_RESPONSE = "application/graphql-response+json"
REQUEST_ERRORS = [
    ({"query": "{ sources(first: 2) { "}, "GRAPHQL_PARSE_FAILED"),
    ({"query": "{ sources { noSuchField } }"}, "GRAPHQL_VALIDATION_FAILED"),
    (
        {"query": "query($n: Int!) { sources(first: $n) { totalCount } }", "variables": {"n": "two"}},
        "BAD_USER_INPUT",
    ),
]


@pytest.mark.parametrize(("body", "code"), REQUEST_ERRORS)
@pytest.mark.parametrize(
    ("accept", "status", "media"),
    [
        (None, 200, "application/json"),
        ("application/json", 200, "application/json"),
        ("*/*", 200, "application/json"),
        (GRAPHQL_RESPONSE, 400, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", 400, GRAPHQL_RESPONSE),  # Apollo Client's
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", 200, "application/json"),
        (f"{GRAPHQL_RESPONSE};q=abc", 200, "application/json"),  # a malformed weight: not preferred
        ("text/html;q=0.1, " + ",".join(["x/y"] * 500), 200, "application/json"),
    ],
)
async def test_an_operation_refused_before_execution_has_no_data_and_the_status_of_its_media_type(
    client: httpx.AsyncClient, body: dict[str, object], code: str, accept: str | None, status: int, media: str
) -> None:
    """GraphQL over HTTP: 200 in application/json, 400 in application/graphql-response+json."""
    headers = {} if accept is None else {"accept": accept}
    response = await client.post("/graphql", json=body, headers=headers)
    assert (response.status_code, response.headers["content-type"].split(";")[0]) == (status, media)
    answer = response.json()
    assert "data" not in answer
    assert [e["extensions"]["code"] for e in answer["errors"]] == [code]


@pytest.mark.parametrize("accept", ["application/json", GRAPHQL_RESPONSE])
async def test_an_executed_operation_keeps_its_data_and_200_in_either_media_type(
    client: httpx.AsyncClient, accept: str
) -> None:
    found = await client.post("/graphql", json={"query": QUERY}, headers={"accept": accept})
    missing = await client.post(
        "/graphql", json={"query": "{ image(imageId: -1) { imageId } }"}, headers={"accept": accept}
    )
    assert found.status_code == missing.status_code == 200
    assert (
        found.headers["content-type"].split(";")[0] == missing.headers["content-type"].split(";")[0] == accept
    )
    assert found.json()["data"]["sources"]["totalCount"] > 0
    assert "data" in missing.json()  # a field error (a non-null field: data null), but executed
    assert missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_internal_errors_are_masked(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from loaders.registry import Loaders

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("secret connection string postgresql://user:pw@db")

    monkeypatch.setattr(Loaders, "list_page", broken)
    response = await client.post("/graphql", json={"query": QUERY})
    assert response.status_code == 200
    error = response.json()["errors"][0]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "secret" not in response.text


async def test_a_stale_operation_name_is_a_coded_graphql_error(client: httpx.AsyncClient) -> None:
    """GraphiQL sends the previous operationName if Run is pressed right after an edit (issue 17 item 6)."""
    response = await client.post(
        "/graphql", json={"query": "query Renamed { jobKinds { name } }", "operationName": "Old"}
    )
    assert response.status_code == 400 and response.headers["content-type"].startswith("application/json")
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNKNOWN_OPERATION" and '"Old"' in error["message"]


TWO_OPERATIONS = "query Kinds { jobKinds { name } } query Count { sources(first: 1) { totalCount } }"


async def _ask(client: httpx.AsyncClient, method: str, body: dict[str, str]) -> httpx.Response:
    if method == "GET":
        return await client.get("/graphql", params=body)
    return await client.post("/graphql", json=body)


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_document_of_several_operations_needs_the_name_of_the_one_to_run(
    client: httpx.AsyncClient, method: str
) -> None:
    """GraphQL spec, GetOperation: nothing runs unless the client names the operation (it ran the first)."""
    unnamed = await _ask(client, method, {"query": TWO_OPERATIONS})
    assert unnamed.status_code == 400 and unnamed.headers["content-type"].startswith("application/json")
    assert unnamed.json() == {
        "errors": [
            {
                "message": "Must provide operation name if query contains multiple operations.",
                "extensions": {"code": "OPERATION_NAME_REQUIRED"},
            }
        ]
    }
    unknown = await _ask(client, method, {"query": TWO_OPERATIONS, "operationName": "Other"})
    assert unknown.status_code == 400 and "data" not in unknown.json()
    error = unknown.json()["errors"][0]
    assert error["extensions"]["code"] == "UNKNOWN_OPERATION" and '"Other"' in error["message"]
    named = await _ask(client, method, {"query": TWO_OPERATIONS, "operationName": "Count"})
    assert named.status_code == 200 and named.json()["data"]["sources"]["totalCount"] > 0
    assert "jobKinds" not in named.json()["data"]
    single = await _ask(client, method, {"query": "query Count { sources(first: 1) { totalCount } }"})
    assert single.status_code == 200 and single.json()["data"]["sources"]["totalCount"] > 0
