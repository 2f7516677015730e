"""Pieces every node type shares: construction from rows, the Node interface, connections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeAlias, TypeVar, cast

import strawberry
from graphql import FieldNode
from sqlalchemy import Table
from strawberry.types import Info
from strawberry.types.lazy_type import LazyType

from loaders.pagination import Page, PageArgs, encode_cursor
from loaders.relations import Relation, ToOne
from resolvers import links
from resolvers.context import GraphContext
from resolvers.ids import encode_global_id
from schema.columns import (
    fields_by_name,
    needed_columns,
    node_fields,
    node_fields_of,
    node_holders,
    reads,
    selection_fields,
)

T = TypeVar("T")
L = TypeVar("L")
N = TypeVar("N")

GraphInfo = Info[GraphContext, None]

if TYPE_CHECKING:
    Loaded: TypeAlias = T | Awaitable[T]
else:

    class Loaded:
        """``Loaded[X]``: the return type of a link field that hands back a loader's future.

        To mypy it is ``X | Awaitable[X]`` (what such a resolver returns, checked); to
        strawberry, which reads the annotation to type the GraphQL field, it is just ``X``.
        Returning the future instead of awaiting it saves a coroutine per item.
        """

        def __class_getitem__(cls, item: Any) -> Any:
            return item


First = Annotated[int | None, strawberry.argument(description="Page size from the start (or after `after`).")]
After = Annotated[str | None, strawberry.argument(description="Cursor to start after.")]
Last = Annotated[int | None, strawberry.argument(description="Page size from the end (or before `before`).")]
Before = Annotated[str | None, strawberry.argument(description="Cursor to end before.")]


def row_factory(cls: type[N]) -> Callable[[dict[str, Any]], N]:
    """Build ``cls`` instances straight from a row's column dict.

    Bypasses the dataclass ``__init__``: a nested query can return 10^4 nodes, and
    adopting the dict as the instance ``__dict__`` costs a fraction of a keyword call.
    Columns the type does not expose (foreign keys, running sums) ride along as plain
    attributes.
    """
    new = object.__new__

    def build(values: dict[str, Any]) -> N:
        obj = new(cls)
        obj.__dict__ = values
        return obj

    return build


@strawberry.interface(description="An object with a global id (Relay).")
class Node:
    pk: strawberry.Private[int]

    @strawberry.field(description="Globally unique, opaque id; `node(id:)` fetches it.", metadata=reads("pk"))
    def id(self) -> strawberry.ID:
        return strawberry.ID(encode_global_id(type(self).__name__, self.pk))


@strawberry.type(description="Where a page sits in its list (Relay).")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(description="An item of a list and its cursor.")
class Edge(Generic[T]):
    offset: strawberry.Private[int]
    node: T

    @strawberry.field(description="Opaque cursor: pass it as `after` or `before`.")
    def cursor(self) -> str:
        return encode_cursor(self.offset)


@strawberry.type(description="A page of a list (Relay connection).")
class Connection(Generic[T]):
    page: strawberry.Private[Page[Any]]
    count: strawberry.Private[Callable[[], Any] | None]

    @strawberry.field(description="The items of this page with their cursors.")
    def edges(self) -> list[Edge[T]]:
        start = self.page.start
        return [Edge(offset=start + i, node=item) for i, item in enumerate(self.page.items)]

    @strawberry.field(description="The items of this page, without cursors (cheaper).")
    def nodes(self) -> list[T]:
        return self.page.items

    @strawberry.field(description="Position of this page in the whole list.")
    def page_info(self) -> PageInfo:
        page = self.page
        n = len(page.items)
        return PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=encode_cursor(page.start) if n else None,
            end_cursor=encode_cursor(page.start + n - 1) if n else None,
        )

    @strawberry.field(description="How many items the whole list holds (all pages).")
    def total_count(self) -> Loaded[int]:
        # Known with the page (counted on its connection) or short: no coroutine for it.
        if self.page.total is not None:
            return self.page.total
        if self.count is None:
            return len(self.page.items)
        return _as_int(self.count())


async def _as_int(count: Awaitable[Any]) -> int:
    return int(await count)


def connection(page: Page[T], count: Callable[[], Awaitable[int]] | None = None) -> Connection[T]:
    return Connection(page=page, count=count)


def selects(info: GraphInfo, name: str) -> bool:
    """Whether the field being resolved selects ``name`` directly (not through a fragment).

    A look-ahead for work that is cheaper done now than at the next level (a count on the
    page's connection); False when unsure, which only defers that work.
    """
    for node in info._raw_info.field_nodes:
        selection_set = node.selection_set
        for selection in selection_set.selections if selection_set is not None else ():
            if isinstance(selection, FieldNode) and selection.name.value == name and not selection.directives:
                return True
    return False


def selects_only(info: GraphInfo, names: frozenset[str]) -> bool:
    """Whether the field being resolved selects nothing but fields among ``names``, each
    written directly (a fragment or a directive anywhere in its selection: False, unsure)."""
    for node in info._raw_info.field_nodes:
        if node.selection_set is None:
            return False
        for selection in node.selection_set.selections:
            if not isinstance(selection, FieldNode) or selection.directives:
                return False
            if selection.name.value not in names:
                return False
    return True


def selected_links(info: GraphInfo, links: Mapping[str, L]) -> list[L]:
    """Which of ``links`` (GraphQL field name -> link) a connection field selects on every
    node (``nodes { x { ... } }`` or ``edges { node { x { ... } } }``), directly written;
    a link behind a fragment or a directive is not looked for (it is then batched as usual)."""
    found: list[L] = []
    for node in info._raw_info.field_nodes:
        for item in _plain_fields(node):
            if item.name.value == "edges":
                nodes = [n for n in _plain_fields(item) if n.name.value == "node"]
            elif item.name.value == "nodes":
                nodes = [item]
            else:
                continue
            for holder in nodes:
                for field in _plain_fields(holder):
                    link = links.get(field.name.value)
                    if link is not None and field.selection_set is not None and link not in found:
                        found.append(link)
    return found


def selected_columns(info: GraphInfo, node_type: type, table: Table) -> frozenset[str] | None:
    """The row keys of ``table`` the connection's nodes (of ``node_type``) are read for, or
    None for all (``schema.columns``)."""
    raw = info._raw_info
    fields = node_fields(raw.field_nodes, raw.fragments, _variables(info))
    return needed_columns(node_type, table, fields, info.schema.config.name_converter.from_field)


def joined_links(
    info: GraphInfo, node_type: type, links: Mapping[str, ToOne[Any]]
) -> list[tuple[ToOne[Any], frozenset[str] | None]]:
    """The ``selected_links``, each with the row keys of its target its selection reads
    (None: all; ``schema.columns``)."""
    raw = info._raw_info
    name_of = info.schema.config.name_converter.from_field
    fields = fields_by_name(node_type, name_of)
    out: list[tuple[ToOne[Any], frozenset[str] | None]] = []
    for link in selected_links(info, links):
        name = next(n for n, candidate in links.items() if candidate is link)
        target = fields[name].type
        target = getattr(target, "of_type", target)  # Optional[X] -> X
        if isinstance(target, LazyType):  # a type named lazily (import cycles): its class
            target = target.resolve_type()
        # Every occurrence of the link field on the nodes, through fragments.
        occurrences = [
            f
            for f in _link_fields(raw.field_nodes, name, raw.fragments, _variables(info))
            if f is None or f.selection_set is not None
        ]
        names: set[str] | None = set()
        for occurrence in occurrences:
            found = (
                None if occurrence is None else node_fields_of(occurrence, raw.fragments, _variables(info))
            )
            names = None if found is None or names is None else names | found
        typed = hasattr(target, "__strawberry_definition__")
        columns = needed_columns(target, link.target.table, names, name_of) if occurrences and typed else None
        out.append((link, columns))
    return out


def _link_fields(
    field_nodes: Any, name: str, fragments: Any, variables: Mapping[str, Any]
) -> list[FieldNode | None]:
    holders = node_holders(field_nodes, fragments, variables)
    if holders is None:
        return [None]
    out: list[FieldNode | None] = []
    for holder in holders:
        for field in selection_fields(holder.selection_set, fragments, variables):
            if field is None or field.name.value == name:
                out.append(field)
    return out


def _variables(info: GraphInfo) -> Mapping[str, Any]:
    # graphql-core types these as VariableValues, but hands resolvers the coerced dict
    variables: Any = info._raw_info.variable_values
    return cast("Mapping[str, Any]", getattr(variables, "coerced", variables))


def _plain_fields(node: FieldNode) -> list[FieldNode]:
    selection_set = node.selection_set
    if selection_set is None:
        return []
    return [s for s in selection_set.selections if isinstance(s, FieldNode) and not s.directives]


def page_args(first: int | None, after: str | None, last: int | None, before: str | None) -> PageArgs:
    return PageArgs(first=first, after=after, last=last, before=before)


async def link_page(
    info: GraphInfo,
    relation: Relation[T],
    pk: int,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    filter: links.Filter | None = None,
) -> Connection[T]:
    """A paged link field: one page of the children of ``pk`` along ``relation``, counted lazily."""
    ctx = info.context
    page = await links.page_of(ctx, relation, pk, page_args(first, after, last, before), filter)
    return connection(page, links.counter(ctx, relation, pk, filter))
