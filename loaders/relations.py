"""How an entity and a link between entities are described (``loaders.entities`` declares them).

An ``Entity[T]`` is a table whose rows the graph turns into ``T`` (the GraphQL type the
schema binds to it); a ``Relation[T]`` is a parent -> children link whose children are
``T``. The type parameter exists for mypy only: ``links.one(ctx, SOURCE, pk)`` is an
awaitable ``Source``, so a link to the wrong entity, or a nullable link declared non-null,
fails the type check instead of a query.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Table

T = TypeVar("T")

Row = dict[str, Any]
"""A row as its column dict (``id`` renamed ``pk``): what an entity without a GraphQL type yields."""


@dataclass(frozen=True, eq=False)
class Entity(Generic[T]):
    """A table the graph reads, and how users name one of its rows.

    Compared by identity: each entity is declared once, as a module constant.
    """

    name: str
    """Short stable name (loader cache keys, logs)."""
    table: Table
    label: str
    """What a user calls one row, in NOT_FOUND messages: ``no data product 'x'``."""
    key: str = "id"
    """The natural key users look a row up by (``source_id``, ``group_id``, ``data_id``...)."""

    def __repr__(self) -> str:
        return f"Entity({self.name})"


@dataclass(frozen=True, eq=False)
class ToOne(Generic[T]):
    """A child -> parent link by foreign key (an image's measurement set, a candidate's source)."""

    target: Entity[T]
    key: ColumnElement[Any]
    """The foreign key column, holding the target's ``id`` (or NULL: no link)."""


@dataclass(frozen=True, eq=False)
class Relation(Generic[T]):
    """A parent -> children link: where the parent's key sits and how the children are ordered."""

    parent: Entity[Any]
    name: str
    """The link's name on the parent (``source.measurements`` is ``measurements`` of ``source``)."""
    child: Entity[T]
    parent_key: ColumnElement[Any]
    """Evaluates to the parent's pk for each child row (a column of the child or of ``link``)."""
    order: tuple[Any, ...]
    """Order of the children; offsets (cursors) count along it."""
    link: Table | None = None
    link_on: ColumnElement[bool] | None = None
    link_where: ColumnElement[bool] | None = None
    reorders: Relation[T] | None = None
    """The link this one sorts otherwise (``reordered``): same children, same counts."""

    def reordered(self, column: str | None, descending: bool) -> Relation[T]:
        """This link with its children sorted by the child column ``column`` (NULLs last
        either way; ties in the link's own order), or along its own order reversed when
        ``column`` is None and ``descending``. The same object for the same arguments, so
        the loaders batch every parent asking for one order into one statement."""
        if column is None and not descending:
            return self
        key = (self, column, descending)
        found = _REORDERED.get(key)
        if found is None:
            if column is None:
                order = tuple(c.desc() for c in self.order)
            else:
                col = self.child_table.c[column]
                first = col.desc() if descending else col.asc()
                order = (first.nulls_last() if col.nullable else first, *self.order)
            found = _REORDERED[key] = replace(self, order=order, reorders=self)
        return found

    @property
    def child_table(self) -> Table:
        return self.child.table

    @property
    def path(self) -> str:
        return f"{self.parent.name}.{self.name}"

    def __repr__(self) -> str:
        return f"Relation({self.path} -> {self.child.name})"


_REORDERED: dict[tuple[Relation[Any], str | None, bool], Relation[Any]] = {}
"""The reordered links made so far: a few per link (its columns, two directions)."""
