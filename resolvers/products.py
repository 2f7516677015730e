"""The data-product lifecycle for the graph: thin calls into :mod:`dsa110.ops.products`
with the request's engine, settings and event bus, returning graph nodes.

Who finalized or published is the caller's identity (``ctx.identity.author``), never a
value from the request."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from dsa110.ops import products
from dsa110.ops.files import paths
from loaders.entities import PRODUCT
from resolvers import lists
from resolvers.context import GraphContext
from resolvers.errors import BadUserInput
from resolvers.errors import Conflict as ConflictError

if TYPE_CHECKING:  # the graph's type of a product row (loaders.entities.PRODUCT)
    from schema.job_types import DataProduct

MAX_DATA_ID = 1024
MAX_RETRY_ALL = 100


def _publisher(ctx: GraphContext) -> Any:
    return ctx.bus.publish if ctx.bus is not None else None


def check_id(data_id: str, field: str = "dataId") -> str:
    if not data_id or len(data_id) > MAX_DATA_ID:
        raise BadUserInput(f"`{field}` must be 1 to {MAX_DATA_ID} characters", field=field)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in data_id):
        raise BadUserInput(f"`{field}` must not contain control characters", field=field)
    return data_id


async def node(ctx: GraphContext, pk: int) -> DataProduct | None:
    return await ctx.loaders.by_key(PRODUCT).load(pk)


async def written(ctx: GraphContext, pk: int) -> DataProduct:
    """The product a write just made or changed (NOT_FOUND if it vanished since)."""
    return await lists.by_natural_key(ctx, PRODUCT, pk, "id")


async def finalize(
    ctx: GraphContext, data_id: str, qa_status: str | None, validation_status: str | None
) -> tuple[DataProduct, bool]:
    row, published = await products.finalize(
        ctx.engine,
        ctx.settings,
        check_id(data_id),
        qa_status=qa_status,
        validation_status=validation_status,
        publish=_publisher(ctx),
        actor=ctx.identity.author,
    )
    return await written(ctx, row["id"]), published


async def publish(ctx: GraphContext, data_id: str) -> DataProduct:
    row = await products.publish_product(
        ctx.engine, ctx.settings, check_id(data_id), publish=_publisher(ctx), actor=ctx.identity.author
    )
    return await written(ctx, row["id"])


async def retry(ctx: GraphContext, data_id: str) -> DataProduct:
    row = await products.retry_publish(
        ctx.engine, ctx.settings, check_id(data_id), publish=_publisher(ctx), actor=ctx.identity.author
    )
    return await written(ctx, row["id"])


async def retry_all(
    ctx: GraphContext, min_attempts: int, limit: int
) -> list[tuple[str, DataProduct | None, str | None]]:
    """Retry every failed publish (at most ``limit``); each outcome: (dataId, node, error)."""
    if not 1 <= limit <= MAX_RETRY_ALL or min_attempts < 1:
        raise BadUserInput(f"limit must be 1 to {MAX_RETRY_ALL} and minAttempts >= 1", field="limit")
    outcomes: list[tuple[str, DataProduct | None, str | None]] = []
    for row in await products.failed_products(ctx.engine, min_attempts=min_attempts, limit=limit):
        try:
            done = await products.retry_publish(
                ctx.engine, ctx.settings, row["data_id"], publish=_publisher(ctx), actor=ctx.identity.author
            )
            outcomes.append((row["data_id"], await node(ctx, done["id"]), None))
        except ConflictError as error:
            outcomes.append((row["data_id"], await node(ctx, row["id"]), error.message))
    return outcomes


async def set_auto_publish(ctx: GraphContext, data_id: str, enabled: bool) -> DataProduct:
    row = await products.set_auto_publish(ctx.engine, check_id(data_id), enabled, publish=_publisher(ctx))
    return await written(ctx, row["id"])


async def register(ctx: GraphContext, **fields: Any) -> DataProduct:
    check_id(fields["data_id"])
    for parent in fields.get("parents") or ():
        check_id(parent, "parents")
    # Staged files live in the staging area; the file itself may come later (its publish then
    # fails and is retried), so the path is resolved like an output path.
    stage = await asyncio.to_thread(
        paths.resolve_new_path, fields["stage_path"], [ctx.settings.staging_dir], "stagePath"
    )
    row = await products.register_product(
        ctx.engine, publish=_publisher(ctx), **{**fields, "stage_path": str(stage)}
    )
    return await written(ctx, row["id"])


async def link(
    ctx: GraphContext, parent_id: str, child_id: str, relationship: str
) -> tuple[DataProduct, DataProduct]:
    parent, child = await products.link_products(
        ctx.engine, check_id(parent_id, "parentId"), check_id(child_id, "childId"), relationship
    )
    return await written(ctx, parent["id"]), await written(ctx, child["id"])


async def failed(ctx: GraphContext, min_attempts: int, limit: int) -> list[DataProduct]:
    if not 1 <= limit <= ctx.settings.max_page_size or min_attempts < 1:
        raise BadUserInput("limit out of range or minAttempts < 1", field="limit")
    rows = await products.failed_products(ctx.engine, min_attempts=min_attempts, limit=limit)
    found = await ctx.loaders.by_key(PRODUCT).load_many([r["id"] for r in rows])
    return [f for f in found if f is not None]
