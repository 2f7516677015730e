"""The data-product lifecycle in the graph: finalize, publish (manual and automatic), retry,
the auto-publish switch, registration and lineage links; publish monitoring; live updates.

Mutations here change product state and move files: each is an operator action
(``requires(Role.OPERATOR)``), and who finalized or published a product is the caller's
identity, never a value from the request.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from dsa110.auth.identity import Role
from dsa110.events import PRODUCT_STATUS, Event
from dsa110.ops import products as lifecycle
from loaders.entities import PRODUCT
from resolvers import products
from resolvers.errors import BadUserInput
from resolvers.live import event_batches
from schema.base import GraphInfo
from schema.inputs import ProductType
from schema.live_fields import shared_subscription
from schema.permissions import requires

if TYPE_CHECKING:
    from schema.job_types import DataProduct

ProductRef = Annotated["DataProduct", strawberry.lazy("schema.job_types")]
MAX_WATCHED = 1000


@strawberry.type(description="Whether automatic publishing would take a product now.")
class AutoPublishCriteria:
    enabled: bool
    criteria_met: bool
    reasons: list[str] = strawberry.field(
        description="disabled, not_finalized, not_validated, qa_not_passed, not_staging, max_attempts."
    )


def auto_publish_criteria(row: Mapping[str, Any]) -> AutoPublishCriteria:
    found = lifecycle.criteria(row)
    return AutoPublishCriteria(enabled=found.enabled, criteria_met=found.met, reasons=found.reasons)


@strawberry.type(description="A finalized product, and whether it was published automatically.")
class FinalizeResult:
    product: ProductRef
    auto_published: bool


@strawberry.type(description="The outcome of retrying one failed publish.")
class RetryOutcome:
    data_id: str
    published: bool
    error: str | None
    product: ProductRef | None


@strawberry.type(description="Publishing across the registry: how many products are where.")
class PublishMonitoring:
    total_published: int
    total_staging: int
    total_publishing: int
    failed_publishes: int = strawberry.field(description="Staged products with a failed attempt.")
    max_attempts_exceeded: int = strawberry.field(description="...with 3 or more (no longer auto-published).")
    recent_failures_24h: int
    success_rate_percent: float
    timestamp: datetime


@strawberry.type(description="A lineage edge that now exists.")
class LineageLink:
    parent: ProductRef
    child: ProductRef
    relationship: str


@strawberry.type
class ProductsQuery:
    @strawberry.field(description="Publishing statistics (legacy /monitoring/publish/status).")
    async def publish_monitoring(self, info: GraphInfo) -> PublishMonitoring:
        now = datetime.now(UTC)
        stats = await lifecycle.publish_stats(info.context.engine, now)
        return PublishMonitoring(
            total_published=stats.total_published,
            total_staging=stats.total_staging,
            total_publishing=stats.total_publishing,
            failed_publishes=stats.failed_publishes,
            max_attempts_exceeded=stats.max_attempts_exceeded,
            recent_failures_24h=stats.recent_failures_24h,
            success_rate_percent=stats.success_rate_percent,
            timestamp=now,
        )

    @strawberry.field(description="Staged products whose publishing failed, most recent failure first.")
    async def failed_publishes(
        self, info: GraphInfo, min_attempts: int = 1, limit: int = 50
    ) -> list[ProductRef]:
        return await products.failed(info.context, min_attempts, limit)


@strawberry.type
class ProductsMutation:
    @strawberry.mutation(
        description="Mark a staged product finalized (optionally with QA and validation states); "
        "it is published at once if the auto-publish criteria hold.",
        extensions=[requires(Role.OPERATOR)],
    )
    async def finalize_data_product(
        self,
        info: GraphInfo,
        data_id: str,
        qa_status: str | None = None,
        validation_status: str | None = None,
    ) -> FinalizeResult:
        product, published = await products.finalize(info.context, data_id, qa_status, validation_status)
        return FinalizeResult(product=product, auto_published=published)

    @strawberry.mutation(
        description="Move a staged product to the products area now (manual mode). A failure leaves "
        "it staged with the error recorded (code PUBLISH_FAILED).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def publish_data_product(self, info: GraphInfo, data_id: str) -> ProductRef:
        return await products.publish(info.context, data_id)

    @strawberry.mutation(
        description="Reset a product's failed attempts and publish it again.",
        extensions=[requires(Role.OPERATOR)],
    )
    async def retry_publish(self, info: GraphInfo, data_id: str) -> ProductRef:
        return await products.retry(info.context, data_id)

    @strawberry.mutation(
        description="Retry every failed publish (at most `limit`).", extensions=[requires(Role.OPERATOR)]
    )
    async def retry_failed_publishes(
        self, info: GraphInfo, min_attempts: int = 1, limit: int = 10
    ) -> list[RetryOutcome]:
        outcomes = await products.retry_all(info.context, min_attempts, limit)
        return [
            RetryOutcome(data_id=data_id, published=error is None, error=error, product=product)
            for data_id, product, error in outcomes
        ]

    @strawberry.mutation(
        description="Turn automatic publishing of a product on or off.", extensions=[requires(Role.OPERATOR)]
    )
    async def set_auto_publish(self, info: GraphInfo, data_id: str, enabled: bool) -> ProductRef:
        return await products.set_auto_publish(info.context, data_id, enabled)

    @strawberry.mutation(
        description="Register a new staged product, derived from `parents` (data ids); `stagePath` must "
        "lie in the staging area (the file may not exist yet).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def register_data_product(
        self,
        info: GraphInfo,
        data_id: str,
        type: ProductType,
        stage_path: str,
        parents: list[str] | None = None,
        relationship: str = "derived_from",
        metadata: JSON | None = None,
    ) -> ProductRef:
        if parents is not None and len(parents) > MAX_WATCHED:
            raise BadUserInput(f"at most {MAX_WATCHED} parents", field="parents")
        return await products.register(
            info.context,
            data_id=data_id,
            data_type=type.value,
            stage_path=stage_path,
            parents=parents or [],
            relationship=relationship,
            metadata=metadata if isinstance(metadata, dict) else None,
        )

    @strawberry.mutation(
        description="Record that `childId` was made from `parentId`.", extensions=[requires(Role.OPERATOR)]
    )
    async def link_data_products(
        self, info: GraphInfo, parent_id: str, child_id: str, relationship: str = "derived_from"
    ) -> LineageLink:
        parent, child = await products.link(info.context, parent_id, child_id, relationship)
        return LineageLink(parent=parent, child=child, relationship=relationship)


@strawberry.type
class ProductsSubscription:
    @shared_subscription(
        description="Data products as they are registered, finalized, published or fail to publish "
        "(optionally only some data ids)."
    )
    async def data_product_updates(
        self, info: GraphInfo, data_ids: list[str] | None = None
    ) -> AsyncGenerator[ProductRef, None]:
        if data_ids is not None and len(data_ids) > MAX_WATCHED:
            raise BadUserInput(f"dataIds accepts at most {MAX_WATCHED} ids", field="dataIds")
        wanted = set(data_ids) if data_ids is not None else None
        ctx = info.context

        def mine(event: Event) -> bool:
            return wanted is None or PRODUCT_STATUS.payload(event).get("data_id") in wanted

        async for batch in event_batches(ctx, (PRODUCT_STATUS,), snapshot=False, accept=mine):
            pks = list(
                dict.fromkeys(
                    p for e in batch if isinstance(p := PRODUCT_STATUS.payload(e).get("product_pk"), int)
                )
            )
            for product in await ctx.loaders.by_key(PRODUCT).load_many(pks):
                if product is not None:
                    yield product
