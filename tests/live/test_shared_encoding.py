"""Fan-out cost: a shared result's payload is JSON-encoded once, whatever the number of subscribers."""

from __future__ import annotations

import json
from typing import Any

from graphql import GraphQLError

from dsa110.events import ESE_CANDIDATE
from dsa110.settings import Settings
from server.graphql_view import message_head, shared_message
from server.live_transport import SharedResult
from tests.live.conftest import TransportWs, running, seed
from tests.waiting import eventually

ESE = "subscription { eseCandidates(minSigma: 5) { candidateId sourceId significance kind } }"
TRANSPORT_CLIENTS = 4


async def test_one_payload_encoding_per_event_for_every_subscriber_and_protocol(
    live_settings: Settings,
) -> None:
    async with running(live_settings) as live:
        ids = await seed(live.engine)
        registry = live.app.state.live
        async with (
            live.ws() as a,
            live.ws() as b,
            live.ws() as c,
            live.ws() as d,
            live.ws(protocol="graphql-ws") as legacy_ws,
        ):
            clients = [TransportWs(ws) for ws in (a, b, c, d)]
            for i, client in enumerate(clients):
                await client.init()
                await client.subscribe(f"op{i}", ESE)  # no snapshot: candidates are pushed on change
            legacy = TransportWs(legacy_ws)
            await legacy.init()
            await legacy.send({"id": "old", "type": "start", "payload": {"query": ESE}})
            await eventually(lambda: registry.subscriber_count == TRANSPORT_CLIENTS + 1)
            assert registry.producer_count == 1

            await live.publish(ESE_CANDIDATE, {"event": "updated", "candidate_pk": ids["candidate_pk"]})
            expected = {
                "eseCandidates": {
                    "candidateId": ids["candidate_pk"],
                    "sourceId": "NVSS J123456.7+420312",
                    "significance": 7.0,
                    "kind": "updated",
                }
            }
            for i, client in enumerate(clients):
                message = await client.for_op(f"op{i}")
                assert message == {"id": f"op{i}", "type": "next", "payload": {"data": expected}}
            assert await _data(legacy) == {"type": "data", "id": "old", "payload": {"data": expected}}
            assert registry.payload_encodings == 1  # one event, five subscribers, one encoding


def test_spliced_message_is_the_message_encoded_whole() -> None:
    encodings: list[object] = []

    def encode(value: object) -> str:
        encodings.append(value)
        return json.dumps(value, separators=(",", ":"))

    result = SharedResult(
        data={"x": [1, "é\u2028"]},
        errors=[GraphQLError("partial", extensions={"code": "UNAVAILABLE"})],
        extensions={"cost": 3},
    )
    for op_id in ["a", 'quo"te', "ü"]:
        text = shared_message(message_head({"id": op_id, "type": "next"}, encode), result, encode)
        assert json.loads(text) == {
            "id": op_id,
            "type": "next",
            "payload": {
                "data": {"x": [1, "é\u2028"]},
                "errors": [{"message": "partial", "extensions": {"code": "UNAVAILABLE"}}],
                "extensions": {"cost": 3},
            },
        }
    payload_encodings = [e for e in encodings if isinstance(e, dict) and "data" in e]
    assert len(payload_encodings) == 1


async def _data(client: TransportWs) -> dict[str, Any]:
    message = await client.receive()
    while message["type"] == "ka":
        message = await client.receive()
    return message
