"""The shared subscription fields are read from the schema, not kept as a list."""

from __future__ import annotations

import strawberry

from dsa110.settings import Settings
from schema.live_fields import shared_subscription, shared_subscription_fields
from schema.schema import build_schema


def test_every_event_driven_subscription_is_shared() -> None:
    schema = build_schema(Settings())
    assert shared_subscription_fields(schema) == {
        "pipelineStatus",
        "systemMetrics",
        "eseCandidates",
        "jobUpdates",
        "jobLogs",
        "groupUpdates",
        "measurementsAdded",
        "dataProductUpdates",
    }


def test_only_marked_fields_are_shared() -> None:
    @strawberry.type
    class Query:
        ping: int = 0

    @strawberry.type
    class Subscription:
        @shared_subscription(description="marked")
        async def marked_field(self) -> strawberry.scalars.JSON:  # pragma: no cover - never run
            yield 1

        @strawberry.subscription(description="not marked")
        async def plain_field(self) -> strawberry.scalars.JSON:  # pragma: no cover - never run
            yield 1

    schema = strawberry.Schema(query=Query, subscription=Subscription)
    assert shared_subscription_fields(schema) == {"markedField"}
    assert shared_subscription_fields(strawberry.Schema(query=Query)) == frozenset()
