"""Lists longer than one graph page: follow a connection's cursors page by page.

The graph caps a page (``Settings.max_page_size``, 500 by default) to bound each
execution; legacy paths allow longer lists (``/api/images?limit=1000``, all mosaics of a
window). A compat route asks the graph for as many pages as the legacy answer needs, each
one a bounded execution, and hands the shaping function one answer with the nodes merged.
Documents paged this way take ``$first`` and ``$after`` and select
``pageInfo { hasNextPage endCursor }`` on the connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from compat_rest.graph import GraphCall

GRAPH_PAGE: Final = 500
"""Rows asked of the graph per execution (the default ``max_page_size``)."""

LEGACY_MAX_LIMIT: Final = 1000
"""The legacy server's usual ``limit`` ceiling (``Query(..., le=1000)``)."""

Connection = Callable[[Any], dict[str, Any] | None]


async def pages(
    call: GraphCall,
    document: str,
    variables: dict[str, Any],
    connection: Connection,
    *,
    max_rows: int,
    after: str | None = None,
) -> AsyncIterator[tuple[Any, dict[str, Any] | None]]:
    """Yield ``(answer, connection)`` per page until ``max_rows`` nodes or the list's end.

    When the connection is absent (its parent object does not exist) the one answer is
    yielded with ``None`` and paging stops.
    """
    sent = 0
    while True:
        data = await call(document, {**variables, "first": min(GRAPH_PAGE, max_rows - sent), "after": after})
        found = connection(data)
        yield data, found
        if found is None:
            return
        sent += len(found["nodes"])
        info = found["pageInfo"]
        if sent >= max_rows or not info["hasNextPage"] or not found["nodes"]:
            return
        after = info["endCursor"]


async def collect(
    call: GraphCall,
    document: str,
    variables: dict[str, Any],
    connection: Connection,
    *,
    max_rows: int,
    check_first: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """The first page's answer, its connection holding the nodes of every page (≤ ``max_rows``).

    ``variables["after"]``, when given, is where the first page starts. ``check_first`` sees
    the first page's connection before any other page is read (it may refuse the list).
    """
    first: Any = None
    head: dict[str, Any] | None = None
    merged: list[Any] = []
    async for data, found in pages(
        call, document, variables, connection, max_rows=max_rows, after=variables.get("after")
    ):
        if first is None:
            first, head = data, found
            if found is not None and check_first is not None:
                check_first(found)
        if found is not None:
            merged.extend(found["nodes"])
    if head is not None:
        head["nodes"] = merged[:max_rows]
    return first
