"""Each connection's open subscriptions share a cost budget (every event runs them all)."""

from __future__ import annotations

import dataclasses

from graphql import parse

from dsa110.settings import Settings
from schema.cost import CostModel, operation_cost
from schema.schema import build_schema
from tests.live.conftest import TransportWs, running, seed


def heavy(i: int) -> str:
    """Distinct documents of similar cost: the status, with each recent group's measurements."""
    return (
        f"subscription S{i} {{ pipelineStatus {{ queue {{ total }} recentGroups {{ groupId "
        f"images {{ imageId measurements(first: {40 + i}) {{ nodes {{ mjd }} }} }} }} }} }}"
    )


def cost(document: str) -> int:
    schema = build_schema(Settings())._schema
    return operation_cost(schema, parse(document), None, {}, CostModel())


async def test_a_subscription_over_the_connections_budget_is_refused_until_one_ends(
    live_settings: Settings,
) -> None:
    costs = [cost(heavy(i)) for i in range(3)]
    budget = costs[0] + costs[1] + costs[2] // 2  # room for two of them
    settings = dataclasses.replace(live_settings, subscription_cost_budget=budget)
    async with running(settings) as live:
        await seed(live.engine)
        async with live.ws() as ws:
            client = TransportWs(ws)
            await client.init()
            await client.subscribe("a", heavy(0))
            await client.subscribe("b", heavy(1))
            await client.subscribe("c", heavy(2))
            assert (await client.next_data("a"))["pipelineStatus"]["queue"]["total"] == 3
            await client.next_data("b")
            refused = await client.for_op("c")
            assert refused["type"] == "error"
            [error] = refused["payload"]
            assert error["extensions"] == {
                "code": "SUBSCRIPTION_BUDGET_EXCEEDED",
                "cost": costs[2],
                "spent": costs[0] + costs[1],
                "limit": budget,
            }

            async with live.ws() as other:  # another connection has a budget of its own
                second = TransportWs(other)
                await second.init()
                await second.subscribe("c", heavy(2))
                await second.next_data("c")

            await client.send({"id": "a", "type": "complete"})  # one ends: its cost comes back
            await client.subscribe("d", heavy(2))
            await client.next_data("d")


async def test_one_subscription_over_the_cost_limit_is_refused(live_settings: Settings) -> None:
    settings = dataclasses.replace(live_settings, max_query_cost=cost(heavy(0)) - 1)
    async with running(settings) as live, live.ws() as ws:
        client = TransportWs(ws)
        await client.init()
        await client.subscribe("a", heavy(0))
        refused = await client.for_op("a")
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"


async def test_the_legacy_protocol_has_the_same_budget(live_settings: Settings) -> None:
    budget = cost(heavy(0)) + cost(heavy(1)) // 2
    async with running(dataclasses.replace(live_settings, subscription_cost_budget=budget)) as live:
        await seed(live.engine)
        async with live.ws(protocol="graphql-ws") as ws:
            client = TransportWs(ws)
            await client.init()
            await client.send({"id": "1", "type": "start", "payload": {"query": heavy(0)}})
            await client.send({"id": "2", "type": "start", "payload": {"query": heavy(1)}})
            accepted = await client.for_op("1")
            assert accepted["type"] == "data", accepted
            refused = await client.for_op("2")
            assert refused["type"] == "error"
            assert refused["payload"]["extensions"]["code"] == "SUBSCRIPTION_BUDGET_EXCEEDED"
