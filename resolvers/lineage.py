"""Walking the product lineage graph: ancestors or descendants, one statement per level.

Each level loads the parents (or children) of every product found so far through the
same DataLoader, so a walk costs one SQL statement per generation whatever the number of
products, and a product reached twice (or a cycle) is visited once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import data_lineage, data_products
from loaders.pagination import PageArgs
from loaders.registry import fetch_rows
from loaders.relations import Relation
from resolvers.context import GraphContext
from resolvers.errors import BadUserInput

MAX_DEPTH = 16
MAX_NODES = 5000


class HasPk(Protocol):
    @property
    def pk(self) -> int: ...


N = TypeVar("N", bound=HasPk)


async def walk(ctx: GraphContext, start_pk: int, relation: Relation[N], depth: int) -> list[N]:
    if not 1 <= depth <= MAX_DEPTH:
        raise BadUserInput(f"depth must be between 1 and {MAX_DEPTH}", field="depth")
    loader = ctx.loaders.page(relation, PageArgs(first=ctx.loaders.max_page_size))
    seen = {start_pk}
    found: list[N] = []
    frontier = [start_pk]
    for _ in range(depth):
        pages = await asyncio.gather(*(loader.load(pk) for pk in frontier))
        frontier = []
        for page in pages:
            for node in page.items:
                if node.pk not in seen and len(found) < MAX_NODES:
                    seen.add(node.pk)
                    found.append(node)
                    frontier.append(node.pk)
        if not frontier:
            break
    return found


Grouped = dict[str, list[str]]


async def by_relationship(ctx: GraphContext, pk: int, upstream: bool) -> Grouped:
    """The product's direct parents (``upstream``) or children as ``{relationship: [data_id]}``.

    One statement per request level for all products asked (a batched loader).
    """
    loader = ctx.loaders.custom(("lineage.by_relationship", upstream), _grouped_batch(ctx.engine, upstream))
    grouped: Grouped = await loader.load(pk)
    return grouped


def _grouped_batch(engine: AsyncEngine, upstream: bool) -> Callable[[list[int]], Awaitable[list[Grouped]]]:
    # Closes over the engine, not the context: the context holds the loader that holds this
    # function, and a cycle would keep the request's objects for the collector.
    parent, child = data_lineage.c.parent_pk, data_lineage.c.child_pk
    own, other = (child, parent) if upstream else (parent, child)

    async def batch(pks: list[int]) -> list[Grouped]:
        stmt = (
            select(own.label("owner"), data_lineage.c.relationship, data_products.c.data_id)
            .join(data_products, data_products.c.id == other)
            .where(own.in_(pks))
            .order_by(own, data_lineage.c.relationship, data_products.c.data_id)
        )
        grouped: dict[int, Grouped] = {pk: {} for pk in pks}
        for row in await fetch_rows(engine, stmt):
            grouped[row["owner"]].setdefault(row["relationship"], []).append(row["data_id"])
        return [grouped[pk] for pk in pks]

    return batch
