"""Hostile and malformed input on every transport: answered as each protocol specifies.

graphql-transport-ws (enisdenjo/graphql-ws PROTOCOL.md): invalid message 4400, subscribe
before ``connection_init`` 4401, init timeout 4408, duplicate id 4409, repeated init 4429;
operation-level problems (bad variables, unknown fields) are ``error`` messages and the
socket stays usable. Oversized messages close with 1009 (RFC 6455 "message too big").
After every case the server still serves requests.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from httpx_ws import WebSocketDisconnect

from dsa110.settings import Settings
from tests.live.conftest import LiveApp, TransportWs, running, seed

STATUS = "subscription { pipelineStatus { queue { total } } }"

# Protocol handling does not depend on the database: SQLite only, to keep the suite quick.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


async def _closed_with(client: TransportWs) -> tuple[int, str]:
    with pytest.raises(WebSocketDisconnect) as info:
        for _ in range(10):
            await client.receive()
    return info.value.code, info.value.reason or ""


async def _still_serving(live: LiveApp) -> None:
    assert (await live.http.get("/healthz")).status_code == 200
    async with live.ws() as ws:
        client = TransportWs(ws)
        assert (await client.init())["type"] == "connection_ack"
        await client.subscribe("ok", STATUS)
        assert (await client.next_data("ok"))["pipelineStatus"]["queue"]["total"] == 3


@pytest.mark.parametrize(
    ("messages", "code"),
    [
        pytest.param(
            [{"id": "1", "type": "subscribe", "payload": {"query": STATUS}}], 4401, id="subscribe-before-init"
        ),
        pytest.param([{"type": "connection_init"}, {"type": "connection_init"}], 4429, id="second-init"),
        pytest.param([{"type": "connection_init", "payload": "token"}], 4400, id="init-payload-not-object"),
        pytest.param([{"type": "connection_init"}, {"type": "launch"}], 4400, id="unknown-type"),
        pytest.param([{"type": "connection_init"}, ["subscribe"]], 4400, id="message-not-object"),
        pytest.param(
            [{"type": "connection_init"}, {"type": "subscribe", "id": "1"}], 4400, id="subscribe-no-payload"
        ),
        pytest.param(
            [{"type": "connection_init"}, {"type": "subscribe", "id": 7, "payload": {"query": STATUS}}],
            4400,
            id="id-not-string",
        ),
        pytest.param(
            [
                {"type": "connection_init"},
                {"type": "subscribe", "id": "1", "payload": {"query": STATUS, "variables": [1]}},
            ],
            4400,
            id="variables-not-object",
        ),
        pytest.param(
            [
                {"type": "connection_init"},
                {"type": "subscribe", "id": "x" * 257, "payload": {"query": STATUS}},
            ],
            4400,
            id="id-too-long",  # repeated in every message of the operation
        ),
        pytest.param(
            [
                {"type": "connection_init"},
                {"type": "subscribe", "id": "1", "payload": {"query": "subscription {"}},
            ],
            4400,
            id="syntax-error",
        ),
        pytest.param(
            [
                {"type": "connection_init"},
                {"type": "subscribe", "id": "1", "payload": {"query": STATUS}},
                {"type": "subscribe", "id": "1", "payload": {"query": STATUS}},
            ],
            4409,
            id="duplicate-id",
        ),
    ],
)
async def test_protocol_violations_close_with_the_specified_code(
    live_settings: Settings, messages: list[Any], code: int
) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        async with live.ws() as ws:
            client = TransportWs(ws)
            for message in messages:
                await client.send(message)
            got, _ = await _closed_with(client)
            assert got == code
        await _still_serving(live)


async def test_text_that_is_not_json_closes_with_4400(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        async with live.ws() as ws:
            await ws.send_text("{not json")
            assert (await _closed_with(TransportWs(ws)))[0] == 4400
        async with live.ws() as ws:
            await ws.send_bytes(b"\x00\x01")
            assert (await _closed_with(TransportWs(ws)))[0] == 4400
        async with live.ws() as ws:  # Python's json module reads NaN; JSON has no such value
            await ws.send_text('{"type": "connection_init", "payload": {"n": NaN}}')
            assert (await _closed_with(TransportWs(ws)))[0] == 4400
        await _still_serving(live)


async def test_oversized_message_closes_with_1009(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            huge = "subscription { pipelineStatus { queue { total } } }" + " " * (
                live_settings.max_body_bytes + 1
            )
            await client.subscribe("1", huge)
            code, reason = await _closed_with(client)
            assert code == 1009 and "larger than" in reason
        await _still_serving(live)


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        (
            "subscription($s: Float!) { eseCandidates(minSigma: $s) { candidateId } }",
            {"s": "five"},
            "BAD_USER_INPUT",
        ),
        ("subscription($s: Float!) { eseCandidates(minSigma: $s) { candidateId } }", {}, "BAD_USER_INPUT"),
        ("subscription { noSuchThing { id } }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("subscription { jobLogs(jobId: 424242) { finished } }", None, "NOT_FOUND"),
        ("subscription { measurementsAdded(filter: {}) { image { path } } }", None, "BAD_USER_INPUT"),
        (
            "subscription { measurementsAdded(filter: {cone: {raDeg: 400, decDeg: 0, radiusArcsec: 5}}) { image { path } } }",
            None,
            "BAD_USER_INPUT",
        ),
    ],
)
async def test_bad_operations_get_an_error_and_the_socket_stays_open(
    live_settings: Settings, query: str, variables: dict[str, Any] | None, code: str
) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe("bad", query, variables)
            message = await client.for_op("bad")
            errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
            assert errors[0]["extensions"]["code"] == code, message
            await client.subscribe("good", STATUS)
            assert (await client.next_data("good"))["pipelineStatus"]["queue"]["total"] == 3
        await _still_serving(live)


async def test_operations_per_connection_are_limited(live_settings: Settings) -> None:
    from server.graphql_view import MAX_OPERATIONS_PER_CONNECTION

    async with running(live_settings) as live:
        await seed(live.engine)
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            for i in range(MAX_OPERATIONS_PER_CONNECTION):
                await client.subscribe(f"op{i}", "subscription { groupUpdates { groupId } }")
            await client.subscribe("one-too-many", STATUS)
            message = await client.for_op("one-too-many")
            assert message["type"] == "error"
            assert message["payload"][0]["message"] == "Subscription limit reached"
            assert message["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
            # All fifty identical subscriptions share one producer.
            assert live.app.state.live.producer_count == 1
        await _still_serving(live)


async def test_connection_init_timeout_closes_with_4408(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        live.app.state.graphql_view.connection_init_wait_timeout = timedelta(seconds=0.2)
        async with live.ws() as ws:
            assert (await _closed_with(TransportWs(ws)))[0] == 4408


async def test_unknown_subprotocol_is_refused(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        async with live.ws(protocol="graphql-chaos") as ws:
            assert (await _closed_with(TransportWs(ws)))[0] == 4406
        await _still_serving(live)


async def test_legacy_graphql_ws_rejects_and_reports_malformed_messages(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        async with live.ws(protocol="graphql-ws") as ws:
            client = TransportWs(ws)
            await client.send({"id": "1", "type": "start", "payload": {"query": STATUS}})
            assert (await _closed_with(client))[0] == 4401  # start before connection_init
        async with live.ws(protocol="graphql-ws") as ws:
            client = TransportWs(ws)
            assert (await client.init())["type"] == "connection_ack"
            await client.send(["start"])
            assert (await _next_not_ka(client)) == {
                "type": "error",
                "payload": {"message": "Failed to parse message", "extensions": {"code": "BAD_REQUEST"}},
            }
            await client.send({"id": "2", "type": "start"})
            assert (await _next_not_ka(client))["id"] == "2"
            await client.send({"id": "3", "type": "start", "payload": {"query": "subscription { nope }"}})
            error = await _next_not_ka(client)
            assert error["type"] == "error" and error["id"] == "3"
            # Not JSON, or JSON's missing NaN: an error, and the socket reads on (the legacy
            # server's "Message must be JSON-parseable"); an unknown type: an error too.
            for bad in (
                "garbage",
                '{"id":"9","type":"start","payload":{"query":"{ me { name } }","variables":{"a":NaN}}}',
            ):
                await ws.send_text(bad)
                error = await _next_not_ka(client)
                assert (
                    error["type"] == "error" and error["payload"]["extensions"]["code"] == "INVALID_JSON"
                ), error
            # JSON that is refused for its depth or for a lone surrogate (not text): an error
            # with that refusal's code, as /graphql answers a body; the socket reads on.
            for bad, code in (
                ('{"id":"8","type":"start","payload":' + "[" * 70 + "]" * 70 + "}", "NESTED_TOO_DEEP"),
                ('{"id":"8","type":"start","payload":{"query":"\\ud800"}}', "INVALID_UNICODE"),
            ):
                await ws.send_text(bad)
                error = await _next_not_ka(client)
                assert error["type"] == "error" and error["payload"]["extensions"]["code"] == code, error
                assert "JSON-parseable" not in error["payload"]["message"], error
            await client.send({"type": "subscribe", "id": "5"})
            error = await _next_not_ka(client)
            assert error["type"] == "error" and "Invalid message type" in error["payload"]["message"], error
            # An id the server would repeat in every message must be short; not repeated here.
            await client.send({"id": "y" * 257, "type": "start", "payload": {"query": STATUS}})
            error = await _next_not_ka(client)
            assert error["type"] == "error" and "id" not in error and "256" in error["payload"]["message"], (
                error
            )
            await client.send({"id": "4", "type": "start", "payload": {"query": STATUS}})
            data = await _next_not_ka(client)
            assert data["type"] == "data" and data["payload"]["data"]["pipelineStatus"]["queue"]["total"] == 3
        await _still_serving(live)


async def _next_not_ka(client: TransportWs) -> dict[str, Any]:
    message = await client.receive()
    while message["type"] == "ka":
        message = await client.receive()
    return message


async def test_sse_rejects_bad_requests_with_a_status(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        bad_json = await live.http.post("/graphql", content=b"{", headers=headers)
        assert bad_json.status_code == 400
        bad_vars = await live.http.post(
            "/graphql", content=json.dumps({"query": STATUS, "variables": 3}), headers=headers
        )
        assert bad_vars.status_code == 400
        await _still_serving(live)


async def test_a_subscription_whose_resolver_fails_gets_a_masked_error(
    live_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resolver's generator raising after its snapshot ends the stream with an error that
    has no path (strawberry wraps the exception bare): a server error, masked, not the
    client's input quoted back."""
    from dsa110.ops import jobs
    from resolvers import status

    async with running(live_settings) as live:
        await seed(live.engine)
        job = await jobs.create_job(live.engine, "image", {"imsize": 2048})
        real = status.log_lines_after
        calls = 0

        async def fails_after_the_snapshot(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls > 1:
                raise RuntimeError("secret connection string postgresql://user:pw@db")
            return await real(*args, **kwargs)

        monkeypatch.setattr(status, "log_lines_after", fails_after_the_snapshot)
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe(
                "l", "subscription($j: Int!) { jobLogs(jobId: $j) { finished } }", {"j": job["id"]}
            )
            assert (await client.next_data("l"))["jobLogs"]["finished"] is False
            await jobs.append_job_log(live.engine, job["id"], "a line", publish=live.publish)
            message = await client.for_op("l")
            text = json.dumps(message)
            assert "secret" not in text and "pw@db" not in text, message
            errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
            assert errors[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR", message
            assert errors[0]["message"] == "Internal server error."
        await _still_serving(live)
