"""Root look-ups: a node by natural key or global id, and filtered, ordered lists."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar

from dsa110.db.filter_cache import conditions_of
from dsa110.db.filters import Ordering
from loaders.pagination import Page, PageArgs
from loaders.relations import Entity, ToOne
from resolvers.context import GraphContext
from resolvers.errors import NotFound
from resolvers.ids import decode_global_id, decode_int_key
from resolvers.links import Filter

T = TypeVar("T")


async def by_natural_key(ctx: GraphContext, entity: Entity[T], key: Hashable, column: str | None = None) -> T:
    """The node whose natural key (or ``column``) is ``key``; an unknown key is a NOT_FOUND error."""
    node = await ctx.loaders.by_key(entity, column or entity.key).load(key)
    if node is None:
        raise NotFound(f"no {entity.label} {key!r}", key=str(key)[:128])
    return node


async def by_global_id(ctx: GraphContext, global_id: str, nodes: Mapping[str, Entity[Any]]) -> object:
    """The node a global id names; ``nodes`` maps each Node type's name to its entity.

    A well-formed id of a type that is not a node (or of no type at all) is NOT_FOUND,
    like an id whose row is gone; a malformed id is BAD_USER_INPUT.
    """
    type_name, key = decode_global_id(global_id)
    entity = nodes.get(type_name)
    if entity is None:
        raise NotFound(f"no node type {type_name[:64]!r}", id=global_id[:128])
    node = await ctx.loaders.by_key(entity).load(decode_int_key(key))
    if node is None:
        raise NotFound(f"no {type_name} with this id", id=global_id[:128])
    return node


async def list_page(
    ctx: GraphContext,
    entity: Entity[T],
    filter: Filter | None,
    ordering: Ordering,
    args: PageArgs,
    with_total: bool = False,
    prefetch: Sequence[tuple[ToOne[Any], frozenset[str] | None]] = (),
    columns: frozenset[str] | None = None,
    rows_wanted: bool = True,
) -> Page[T]:
    conditions, key = conditions_of(filter)
    return await ctx.loaders.list_page(
        entity,
        conditions,
        ordering,
        args,
        with_total,
        prefetch,
        columns,
        rows_wanted=rows_wanted,
        conditions_key=key,
    )


def list_counter(
    ctx: GraphContext, entity: Entity[Any], filter: Filter | None
) -> Callable[[], Awaitable[int]]:
    def count() -> Awaitable[int]:
        # Built only if the count is asked for (and not already taken with the page).
        conditions, key = conditions_of(filter)
        return ctx.loaders.count_rows(entity, conditions, key)

    return count
