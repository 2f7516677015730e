"""Following links between nodes: always through the request's DataLoaders.

These return the loader's future itself (no ``async def``), so a list of 10^4 nodes
costs 10^4 dictionary look-ups and one SQL statement, not 10^4 coroutines. Each is typed
by the entity or relation it follows (``loaders.entities``): ``one(ctx, SOURCE, pk)`` is
an awaitable ``Source``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol, TypeVar, cast, overload

from sqlalchemy import ColumnElement

from loaders.pagination import Page, PageArgs
from loaders.registry import joined_key
from loaders.relations import Entity, Relation, ToOne
from resolvers.context import GraphContext

T = TypeVar("T")


class Filter(Hashable, Protocol):
    def conditions(self) -> list[ColumnElement[bool]]: ...


@overload
def one(ctx: GraphContext, entity: Entity[T], key: int) -> Awaitable[T]: ...
@overload
def one(ctx: GraphContext, entity: Entity[T], key: int | None) -> Awaitable[T] | None: ...
def one(ctx: GraphContext, entity: Entity[T], key: int | None) -> Awaitable[T] | None:
    """The node a foreign key points at (None when the link is empty).

    A foreign key always finds its row (the database enforces it), so the future is of
    a ``T``, not of ``T | None``: a non-null link field can return it as it is.
    """
    if key is None:
        return None
    return cast("Awaitable[T]", ctx.loaders.by_key(entity).load(key))


def follow(ctx: GraphContext, obj: object, link: ToOne[T]) -> Awaitable[T | None] | T | None:
    """The node ``obj``'s foreign key ``link`` points at: the object a list page joined to
    it (``Loaders.list_page``; None when the link is empty), else through the by-key loader."""
    joined = obj.__dict__.get(joined_key(link), _MISSING)
    if joined is not _MISSING:
        return cast("T | None", joined)
    key = obj.__dict__.get(str(link.key.name))
    if key is None:
        return None
    return ctx.loaders.by_key(link.target).load(key)


_MISSING: Any = object()


def page_of(
    ctx: GraphContext, relation: Relation[T], parent_pk: int, args: PageArgs, filter: Filter | None = None
) -> Awaitable[Page[T]]:
    """One page of the parent's children along ``relation``."""
    conditions = filter.conditions() if filter is not None else []
    return ctx.loaders.page(relation, args, conditions, filter).load(parent_pk)


def counter(
    ctx: GraphContext, relation: Relation[Any], parent_pk: int, filter: Filter | None = None
) -> Callable[[], Awaitable[int]]:
    """A deferred count of the parent's children (run only if `totalCount` is asked). A
    link sorted otherwise is counted as the link itself: one count for every order asked."""
    conditions = filter.conditions() if filter is not None else []
    relation = relation.reorders or relation

    def count() -> Awaitable[int]:
        return ctx.loaders.count(relation, conditions, filter).load(parent_pk)

    return count


async def all_of(ctx: GraphContext, relation: Relation[T], parent_pk: int, limit: int = 500) -> list[T]:
    """Every child along ``relation`` up to ``limit`` (for links that are short lists)."""
    page = await ctx.loaders.page(relation, PageArgs(first=limit)).load(parent_pk)
    return page.items
