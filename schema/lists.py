"""One definition for every filtered, ordered, paged list root.

Each list root takes the same arguments (Relay page, a typed filter, an order field and a
direction) and runs the same query logic; only the node type, filter type and order enum
differ. ``list_root`` builds such a field so the roots stay one line each.

This module deliberately does not use ``from __future__ import annotations``: the
resolver's annotations must be the real types captured here, not strings that strawberry
would try to resolve in this module's namespace. ``entity`` and ``node`` share a type
parameter, so mypy rejects a root whose node type is not the entity's.
"""

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Annotated, Any, TypeVar

import strawberry

from dsa110.db.enums import OrderDirection
from dsa110.db.filters import Ordering
from loaders.relations import Entity, ToOne
from resolvers import lists
from schema.base import (
    After,
    Before,
    Connection,
    First,
    GraphInfo,
    Last,
    connection,
    joined_links,
    page_args,
    selected_columns,
    selects,
    selects_only,
)

T = TypeVar("T")
COUNT_ONLY = frozenset({"totalCount", "__typename"})


def list_root(
    entity: Entity[T],
    node: type[T],
    filter_type: type,
    order_type: type[Enum],
    default_order: Enum,
    default_direction: OrderDirection,
    description: str,
    extensions: Sequence[Any] = (),
    links: Mapping[str, ToOne[Any]] | None = None,
) -> Any:
    """A strawberry field ``(first, after, last, before, filter, orderBy, direction) -> Connection[node]``.

    ``links``: the node type's to-one link fields (GraphQL name -> the foreign key its
    resolver follows with ``links.one``); those the document selects on the nodes are joined
    into the page's statement (``Loaders.list_page``).
    """
    joinable = dict(links or {})

    async def resolve(
        info: GraphInfo,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: Any = None,
        order_by: Any = default_order,
        direction: Annotated[
            OrderDirection, strawberry.argument(description="Sort direction.")
        ] = default_direction,
    ) -> Connection[Any]:
        ctx = info.context
        ordering = Ordering(order_by.value, direction)
        args = page_args(first, after, last, before)
        prefetch = joined_links(info, node, joinable) if joinable else []
        columns = selected_columns(info, node, entity.table)
        with_total = selects(info, "totalCount")
        # A count alone (`{ totalCount }`) reads no page rows.
        rows_wanted = not (with_total and selects_only(info, COUNT_ONLY))
        page = await lists.list_page(
            ctx, entity, filter, ordering, args, with_total, prefetch, columns, rows_wanted
        )
        return connection(page, lists.list_counter(ctx, entity, filter))

    # What strawberry reads to type the arguments and the result. mypy cannot take types from
    # variables, so the parameters above are typed loosely for it and these are for the schema.
    generic_connection: Any = Connection
    resolve.__annotations__.update(
        {"filter": filter_type | None, "order_by": order_type, "return": generic_connection[node]}
    )
    return strawberry.field(resolver=resolve, description=description, extensions=list(extensions))
