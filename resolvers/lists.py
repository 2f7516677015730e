"""Root look-ups: a node by natural key or global id, and filtered, ordered lists."""

from __future__ import annotations

from typing import Any

from dsa110.db.filters import Ordering
from loaders.pagination import Page, PageArgs
from resolvers.context import GraphContext
from resolvers.errors import NotFound
from resolvers.ids import decode_global_id, decode_int_key
from resolvers.links import Filter

# GraphQL type name -> (loader entity, natural-key column or "id")
NODE_ENTITIES: dict[str, str] = {
    "Source": "source",
    "Measurement": "measurement",
    "Image": "image",
    "Group": "group",
    "Mosaic": "mosaic",
    "Job": "job",
    "DataProduct": "product",
    "MeasurementSet": "ms",
    "CalTable": "caltable",
    "EseCandidate": "candidate",
    "Alert": "alert",
    "Region": "region",
    "CatalogSource": "catalog_source",
    "QaArtifact": "qa_artifact",
}


async def by_natural_key(ctx: GraphContext, entity: str, column: str, key: Any, label: str) -> Any:
    """The node whose ``column`` is ``key``; an unknown key is a NOT_FOUND error."""
    node = await ctx.loaders.by_key(entity, column).load(key)
    if node is None:
        raise NotFound(f"no {label} {key!r}", key=str(key)[:128])
    return node


async def by_global_id(ctx: GraphContext, global_id: str) -> Any:
    type_name, key = decode_global_id(global_id)
    entity = NODE_ENTITIES.get(type_name)
    if entity is None:
        raise NotFound(f"no node type {type_name[:64]!r}")
    node = await ctx.loaders.by_key(entity).load(decode_int_key(key))
    if node is None:
        raise NotFound(f"no {type_name} with this id", id=global_id[:128])
    return node


async def list_page(
    ctx: GraphContext, entity: str, filter: Filter | None, ordering: Ordering, args: PageArgs
) -> Page[Any]:
    conditions = filter.conditions() if filter is not None else []
    return await ctx.loaders.list_page(entity, conditions, ordering, args)


def list_counter(ctx: GraphContext, entity: str, filter: Filter | None) -> Any:
    conditions = filter.conditions() if filter is not None else []

    def count() -> Any:
        return ctx.loaders.count_rows(entity, conditions)

    return count
