"""Windowed child pages: one statement fetches a page of children for every parent.

``ROW_NUMBER()`` numbers each parent's children along the relation's order and
``COUNT(*) OVER`` gives each parent's total, so offsets are absolute: cursors, ``last``,
``hasNextPage`` and ``totalCount`` all come out of the same single statement, whatever
the number of parents (SQLite >= 3.25 and PostgreSQL both have window functions).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, Table, case, func, select

from loaders.pagination import DEFAULT_PAGE_SIZE, Page, PageArgs, decode_cursor
from loaders.relations import Relation, Row

T = TypeVar("T")


# The column sets come from the fields a document selects: a client choosing a new subset
# on every request would grow an unbounded dict, so the cache is an LRU of the sets in use.
@functools.lru_cache(maxsize=1024)
def entity_columns(table: Table, only: frozenset[str] | None = None) -> tuple[Any, ...]:
    """The table's columns with ``id`` exposed as ``pk`` (``id`` is the graph's global id);
    with ``only``, just those row keys (``pk`` for ``id``), in table order."""
    return tuple(
        c.label("pk") if c.name == "id" else c
        for c in table.c
        if only is None or ("pk" if c.name == "id" else c.name) in only
    )


def page_statement(
    rel: Relation[Any],
    parent_pks: Sequence[int],
    args: PageArgs,
    conditions: Sequence[ColumnElement[bool]] = (),
) -> Select[Any]:
    """SELECT the requested page of children for every parent in ``parent_pks``."""
    parent = rel.parent_key.label("parent_pk")
    child = rel.child_table
    # Number narrow rows (key, parent) - often straight from a covering index - and
    # join the full rows back only for the page: the window sort stays small.
    narrow = "id" in child.c
    numbered = select(
        *([child.c.id.label("child_id")] if narrow else entity_columns(child)),
        parent,
        func.row_number().over(partition_by=rel.parent_key, order_by=rel.order).label("rn"),
        func.count().over(partition_by=rel.parent_key).label("total"),
    )
    if rel.link is not None and rel.link_on is not None:
        numbered = numbered.select_from(child.join(rel.link, rel.link_on))
    numbered = numbered.where(rel.parent_key.in_(parent_pks), *conditions)
    if rel.link_where is not None:
        numbered = numbered.where(rel.link_where)
    sub = numbered.subquery("numbered")
    offset = sub.c.rn - 1
    start = decode_cursor(args.after) + 1 if args.after is not None else 0
    before = decode_cursor(args.before) if args.before is not None else None
    if narrow:
        stmt = select(*entity_columns(child), sub.c.parent_pk, sub.c.rn, sub.c.total).select_from(
            sub.join(child, child.c.id == sub.c.child_id)
        )
    else:
        stmt = select(sub)
    stmt = stmt.where(offset >= start)
    if args.last is not None:
        stop = sub.c.total if before is None else case((sub.c.total < before, sub.c.total), else_=before)
        stmt = stmt.where(offset < stop, offset >= stop - args.last)
    else:
        size = args.first if args.first is not None else DEFAULT_PAGE_SIZE
        hi = start + size if before is None else min(start + size, before)
        stmt = stmt.where(offset < hi)
    return stmt.order_by(sub.c.parent_pk, sub.c.rn)


def split_pages(rows: Sequence[Row], parent_pks: Sequence[int], wrap: Callable[[Row], T]) -> list[Page[T]]:
    """Group the statement's rows by parent, in the order the parents were asked for."""
    grouped: dict[int, list[T]] = {}
    totals: dict[int, int] = {}
    firsts: dict[int, int] = {}
    for row in rows:
        pk = row["parent_pk"]
        bucket = grouped.get(pk)
        if bucket is None:
            grouped[pk] = bucket = []
            totals[pk] = row["total"]
            firsts[pk] = row["rn"] - 1
        bucket.append(wrap(row))
    pages: list[Page[T]] = []
    for pk in parent_pks:
        items = grouped.get(pk, [])
        start = firsts.get(pk, 0)
        total = totals.get(pk)
        if total is None:
            pages.append(Page(items=[], start=0, has_next=False, has_previous=False, total=None))
            continue
        pages.append(
            Page(
                items=items,
                start=start,
                has_next=start + len(items) < total,
                has_previous=start > 0,
                total=total,
            )
        )
    return pages
