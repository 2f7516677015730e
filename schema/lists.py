"""One definition for every filtered, ordered, paged list root.

Each list root takes the same arguments (Relay page, a typed filter, an order field and a
direction) and runs the same query logic; only the node type, filter type and order enum
differ. ``list_root`` builds such a field so the roots stay one line each.

This module deliberately does not use ``from __future__ import annotations``: the
resolver's annotations must be the real types captured here, not strings that strawberry
would try to resolve in this module's namespace.
"""

from collections.abc import Sequence
from typing import Annotated, Any

import strawberry

from dsa110.db.enums import OrderDirection
from dsa110.db.filters import Ordering
from resolvers import lists
from schema.base import After, Before, Connection, First, GraphInfo, Last, connection, page_args


def list_root(
    entity: str,
    node: type,
    filter_type: type,
    order_type: type,
    default_order: Any,
    default_direction: OrderDirection,
    description: str,
    extensions: Sequence[Any] = (),
) -> Any:
    """A strawberry field ``(first, after, last, before, filter, orderBy, direction) -> Connection[node]``."""

    async def resolve(
        info: GraphInfo,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: filter_type | None = None,  # type: ignore[valid-type]
        order_by: order_type = default_order,  # type: ignore[valid-type]
        direction: Annotated[
            OrderDirection, strawberry.argument(description="Sort direction.")
        ] = default_direction,
    ) -> Connection[node]:  # type: ignore[valid-type]
        ctx = info.context
        ordering = Ordering(order_by.value, direction)  # type: ignore[attr-defined]
        page = await lists.list_page(ctx, entity, filter, ordering, page_args(first, after, last, before))
        return connection(page, lists.list_counter(ctx, entity, filter))

    return strawberry.field(resolver=resolve, description=description, extensions=list(extensions))
