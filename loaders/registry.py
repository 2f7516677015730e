"""The per-request set of DataLoaders: the graph's reads by key, by link and by list.

A ``Loaders`` is created for each HTTP request (and each subscription event), so its
caches never outlive what one client asked for. Every batch runs exactly one statement
on its own connection: concurrent resolvers never share a session.

Rows come back wrapped by the schema's constructor for their entity (``wrap``; see
``schema.entity_types``), so a resolver can return a loader's future directly: no
coroutine per item, which is most of the cost of a nested list in Python.

Where the graph's reads run SQL, precisely:

* here: every read of an entity (``loaders.entities``) by key, by link and by list -
  what a schema type's fields and the list roots resolve through;
* ``resolvers/status.py``: the aggregate reads behind the live surfaces (queue counts,
  recent groups, calibration sets, ESE candidate rows with their sources, log lines after
  an id, a watched image's measurements), a handful of statements each, not row-by-key
  reads a DataLoader would batch;
* ``resolvers/timeline.py``: the observing timeline, one window-function aggregate over
  every group (one row per segment comes back), and ``resolvers/catalog_validation.py``:
  the positions and fluxes of every measurement of one image, read once per validation
  (an image holds ~10^4, past any page a loader serves);
* the domain layer (``dsa110.ops``: ``metrics`` for system-metrics samples, ``ingest`` for
  light curves, ``jobs``, ``products``, ``queue``...; ``dsa110.webhooks``): its own tables, read by
  the same functions that write them; resolvers call those functions and the ``custom``
  loaders here batch the calls per request.

Nothing else in ``resolvers/`` or ``schema/`` executes a statement, and ``compat_rest``
never touches the database (it runs GraphQL documents).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import ColumnElement, Select, Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from strawberry.dataloader import DataLoader

from dsa110.db.complement_count import SidedCount, sided_count, use_complement
from dsa110.db.engine import read_connection
from dsa110.db.filter_cache import SIZE as FILTERS_KEPT
from dsa110.db.filters import Ordering
from dsa110.db.row_counts import count_statement
from loaders.pages import entity_columns, page_statement, split_pages
from loaders.pagination import Page, PageArgs, resolve_window
from loaders.relations import Entity, Relation, Row, ToOne

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
L = TypeVar("L", bound="DataLoader[Any, Any]")

Wrap = Callable[[Row], Any]
"""A row's column dict -> the graph's object (the schema binds one per entity)."""


def as_dicts(result: Any) -> list[Row]:
    """Rows as plain dicts: ``dict(zip(keys, row))`` is several times cheaper than
    going through SQLAlchemy's ``Row._mapping`` for every row, and ``all()`` than fetching
    row by row (a row has exactly the result's keys: ``zip`` need not check)."""
    keys = list(result.keys())
    return [dict(zip(keys, row)) for row in result.all()]  # noqa: B905


async def fetch_rows(engine: AsyncEngine, stmt: Any) -> list[Row]:
    """Run one statement on a connection of its own and return its rows as dicts."""
    async with read_connection(engine) as conn:
        return as_dicts(await conn.execute(stmt))


# A loader's batch function is a module function bound to what it reads (``partial``), not
# a bound method, and keeps the engine, not the ``Loaders``: either would make a reference
# cycle (loader -> its batch function -> loader; loaders -> loader -> loaders), leaving every
# request's loaders, futures and primed rows to the cyclic garbage collector, whose passes
# then walk every row alive at that moment.


class ByKey(DataLoader[Hashable, T | None]):
    """``load(key)`` -> the wrapped row whose ``column`` equals ``key``, or None."""

    def __init__(self, loaders: Loaders, entity: Entity[T], column: str) -> None:
        attr = "pk" if column == "id" else column
        wrap = loaders.wrap(entity)
        super().__init__(functools.partial(_by_key, loaders.engine, entity.table, column, attr, wrap))


async def _by_key(
    engine: AsyncEngine, table: Table, column: str, attr: str, wrap: Wrap, keys: list[Hashable]
) -> list[Any]:
    stmt = select(*entity_columns(table)).where(table.c[column].in_(keys))
    found = {row[attr]: wrap(row) for row in await fetch_rows(engine, stmt)}
    return [found.get(key) for key in keys]


class Pages(DataLoader[int, Page[T]]):
    """``load(parent_pk)`` -> one page of the parent's children (one windowed statement per batch)."""

    def __init__(
        self,
        loaders: Loaders,
        relation: Relation[T],
        args: PageArgs,
        conditions: Sequence[ColumnElement[bool]],
    ) -> None:
        wrap = loaders.wrap(relation.child)
        super().__init__(functools.partial(_pages, loaders.engine, relation, args, conditions, wrap))


async def _pages(
    engine: AsyncEngine,
    relation: Relation[Any],
    args: PageArgs,
    conditions: Sequence[ColumnElement[bool]],
    wrap: Wrap,
    parent_pks: list[int],
) -> list[Page[Any]]:
    stmt = page_statement(relation, parent_pks, args, conditions)
    return split_pages(await fetch_rows(engine, stmt), parent_pks, wrap)


class Counts(DataLoader[int, int]):
    """``load(parent_pk)`` -> how many children the parent has (one GROUP BY per batch)."""

    def __init__(
        self, loaders: Loaders, relation: Relation[Any], conditions: Sequence[ColumnElement[bool]]
    ) -> None:
        super().__init__(functools.partial(_counts, loaders.engine, relation, conditions))


async def _counts(
    engine: AsyncEngine, rel: Relation[Any], conditions: Sequence[ColumnElement[bool]], parent_pks: list[int]
) -> list[int]:
    stmt = select(rel.parent_key, func.count()).where(rel.parent_key.in_(parent_pks), *conditions)
    if rel.link is not None and rel.link_on is not None:
        stmt = stmt.select_from(rel.child_table.join(rel.link, rel.link_on))
    if rel.link_where is not None:
        stmt = stmt.where(rel.link_where)
    async with read_connection(engine) as conn:
        rows = (await conn.execute(stmt.group_by(rel.parent_key))).all()
    counts: dict[int, int] = {row[0]: row[1] for row in rows}
    return [int(counts.get(pk, 0)) for pk in parent_pks]


Prefetch = tuple[ToOne[Any], frozenset[str] | None]
"""A to-one link to join into a list page, and the target's row keys to read (None: all)."""

Join = tuple[ToOne[Any], frozenset[str] | None, list[str], list[Any], Any]
"""A joined link: the link, its columns (None: all), their row keys, their labelled columns,
the alias of the link's table."""

JOINED = "joined:"
"""Row key prefix under which a page's row holds the object its link was joined to."""


@functools.lru_cache(maxsize=256)
def _joined(link: ToOne[Any], index: int, columns: frozenset[str] | None) -> Join:
    """The link's table aliased for the ``index``-th join of a page, with its labelled columns
    (made once: a new alias per request would make SQLAlchemy build and key them again)."""
    alias = link.target.table.alias(f"prefetch_{index}")
    chosen = [c for c in alias.c if columns is None or ("pk" if c.name == "id" else c.name) in columns]
    keys = ["pk" if c.name == "id" else c.name for c in chosen]
    return link, columns, keys, [c.label(f"prefetch_{index}_{c.name}") for c in chosen], alias


def joined_key(link: ToOne[Any]) -> str:
    """The row key of the object ``link`` was joined to on a list page's row."""
    return JOINED + str(link.key.name)


@functools.lru_cache(maxsize=256)
def _page_base(
    table: Table, columns: frozenset[str] | None, prefetch: tuple[Prefetch, ...], ordering: Ordering
) -> tuple[Select[Any], list[Join]]:
    """A list page's statement without its filter and window, and its joins: built once per
    shape (a statement is immutable; building one coerces every column again, ~0.1 ms for a
    wide joined page, more than the rest of an empty list's request). Bounded: the column
    sets come from documents."""
    joins = [_joined(link, i, only) for i, (link, only) in enumerate(prefetch)]
    selected = list(entity_columns(table, columns))
    source: Any = table
    for link, _, _, labelled, alias in joins:
        selected += labelled
        source = source.outerjoin(alias, alias.c.id == link.key)
    stmt = select(*selected).select_from(source).order_by(*ordering.clauses(table))
    # The window is bound at execution: the same statement object serves every page.
    return stmt.offset(bindparam("page_offset")).limit(bindparam("page_limit")), joins


_STATEMENTS: OrderedDict[Hashable, tuple[Any, Any]] = OrderedDict()
"""Statements made of kept filter conditions, by what they were made of (bounded, LRU)."""


def _kept(key: tuple[Any, ...], origin: Any, make: Callable[[], Any]) -> Any:
    """The statement ``make`` builds from ``origin`` and the conditions kept under ``key[-1]``,
    made once while kept: SQLAlchemy keys a statement object once, not on every execution. A
    None filter key (conditions not kept) makes it each time."""
    if key[-1] is None:
        return make()
    kept = _STATEMENTS.get(key)
    if kept is not None and kept[0] is origin:  # ``origin`` compared by identity: ids are reused
        _STATEMENTS.move_to_end(key)
        return kept[1]
    stmt = make()
    _STATEMENTS[key] = (origin, stmt)
    if len(_STATEMENTS) > 2 * FILTERS_KEPT:
        _STATEMENTS.popitem(last=False)
    return stmt


async def count_on(
    conn: AsyncConnection, table: Table, conditions: Sequence[ColumnElement[bool]], conditions_key: Hashable
) -> int:
    """The exact count of ``table`` under ``conditions``: for a kept filter that can be counted
    from either side (``dsa110.db.complement_count``), from the side that was smaller last
    time; otherwise directly (``count_statement``). What is kept under the filter's key is the
    ``SidedCount`` or the direct statement."""
    dialect = conn.dialect.name
    if not conditions or conditions_key is None:  # unkept conditions: nothing to remember by
        stmt: Any = count_statement(dialect, table, conditions)
    else:
        key = ("count", dialect, table.name, conditions_key)
        stmt = _kept(
            key,
            table,
            lambda: sided_count(dialect, table, conditions) or count_statement(dialect, table, conditions),
        )
        if isinstance(stmt, SidedCount):
            complement = use_complement(key, stmt.columns)
            row = (await conn.execute(stmt.complement if complement else stmt.direct)).one()
            return stmt.answer(key, complement, row)
    return int((await conn.execute(stmt)).scalar() or 0)


class Loaders:
    def __init__(
        self, engine: AsyncEngine, wrap: Mapping[Entity[Any], Wrap] | None = None, max_page_size: int = 500
    ):
        self.engine = engine
        self.max_page_size = max_page_size
        self._wrap: dict[Entity[Any], Wrap] = dict(wrap or {})
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}

    def renewed(self) -> Loaders:
        """Fresh (empty) loaders that wrap rows exactly as these do."""
        return Loaders(self.engine, self._wrap, max_page_size=self.max_page_size)

    def wrap(self, entity: Entity[T]) -> Callable[[Row], T]:
        """The constructor the schema bound to ``entity`` (mypy checked the pairing there)."""
        try:
            return cast("Callable[[Row], T]", self._wrap[entity])
        except KeyError:
            raise LookupError(f"no GraphQL type is bound to {entity!r} (schema.entity_types)") from None

    async def fetch(self, stmt: Any) -> list[Row]:
        """Run one statement on a connection of its own and return its rows as dicts."""
        return await fetch_rows(self.engine, stmt)

    async def scalar(self, stmt: Any) -> Any:
        async with read_connection(self.engine) as conn:
            return (await conn.execute(stmt)).scalar()

    def _cached(self, key: Hashable, build: Callable[[], L]) -> L:
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = build()
        # The key names the loader's class and type parameters: what was stored is an L.
        return cast(L, loader)

    def custom(self, name: Hashable, batch: Callable[[list[K]], Awaitable[Sequence[V]]]) -> DataLoader[K, V]:
        """A per-request loader around a domain batch function (``keys -> values``)."""
        return self._cached(("custom", name), lambda: DataLoader(batch))

    # --- one row per key -------------------------------------------------------------

    def by_key(self, entity: Entity[T], column: str = "id") -> ByKey[T]:
        """``load(key)`` -> the wrapped row whose ``column`` equals key, or None."""
        return self._cached(("key", entity, column), lambda: ByKey(self, entity, column))

    # --- a page of children per parent ------------------------------------------------

    def page(
        self,
        relation: Relation[T],
        args: PageArgs,
        conditions: Sequence[ColumnElement[bool]] = (),
        conditions_key: Hashable = None,
    ) -> Pages[T]:
        """``load(parent_pk)`` -> one page of the parent's children (a windowed batch)."""
        args.validate(self.max_page_size)
        key = ("page", relation, args, conditions_key)
        return self._cached(key, lambda: Pages(self, relation, args, conditions))

    def count(
        self,
        relation: Relation[Any],
        conditions: Sequence[ColumnElement[bool]] = (),
        conditions_key: Hashable = None,
    ) -> Counts:
        """``load(parent_pk)`` -> how many children the parent has (one GROUP BY per batch)."""
        return self._cached(("count", relation, conditions_key), lambda: Counts(self, relation, conditions))

    def _attach(self, join: Join, prefix: str, rows: list[Row]) -> None:
        """Take the ``prefix``ed columns out of ``rows`` and put the object they hold on each
        row (``joined_key``; None where the link is empty), once per linked row. Whole rows
        also prime the target's by-key loader for the rest of the request; rows cut to the
        columns the link's selection reads are seen only through this page's link field."""
        link, only, names, labelled, _ = join
        wrap = self.wrap(link.target)
        loader = self.by_key(link.target) if only is None else None
        keys = [c.name for c in labelled]
        attach = joined_key(link)
        pk_key = keys[names.index("pk")]
        pairs = list(zip(names, keys, strict=True))
        made: dict[Any, Any] = {}
        for row in rows:
            pk = row[pk_key]
            linked = made.get(pk) if pk is not None else None
            if pk is not None and linked is None:
                # The columns leave the row as the linked object takes them: one pass.
                linked = made[pk] = wrap({name: row.pop(key) for name, key in pairs})
                if loader is not None:
                    loader.prime(pk, linked)
            else:
                for key in keys:
                    del row[key]
            row[attach] = linked

    # --- top-level lists ---------------------------------------------------------------

    async def count_rows(
        self,
        entity: Entity[Any],
        conditions: Sequence[ColumnElement[bool]] = (),
        conditions_key: Hashable = None,
    ) -> int:
        async with read_connection(self.engine) as conn:
            return await count_on(conn, entity.table, conditions, conditions_key)

    async def list_page(
        self,
        entity: Entity[T],
        conditions: Sequence[ColumnElement[bool]],
        ordering: Ordering,
        args: PageArgs,
        with_total: bool = False,
        prefetch: Sequence[Prefetch] = (),
        columns: frozenset[str] | None = None,
        rows_wanted: bool = True,
        conditions_key: Hashable = None,
    ) -> Page[T]:
        """A page of a whole table: ORDER BY the ordering (ties by pk), LIMIT/OFFSET.

        ``columns``: the row keys the caller's objects will be read for (None: all). Only the
        page's own rows are cut to them: they reach nothing but the caller (no loader is
        primed with them).

        With ``with_total`` (the client asked for ``totalCount``) the count runs first on the
        same connection: one checkout, and the answer needs no second round trip. Each
        ``prefetch`` link (a to-one link the client selects on every node, with the columns
        its selection reads) is LEFT JOINed into the page's statement and the object it
        holds put on each row (``_attach``), so the link field (``resolvers.links.follow``)
        answers it there instead of running its own statement.

        ``rows_wanted`` False (the client selects the count and nothing of the page): the
        arguments are checked as for a page, but no row is read. ``conditions_key``: the
        value the conditions were built from (``dsa110.db.filter_cache``), under which the
        statements made of them are kept (None: made each time).
        """
        table = entity.table
        async with read_connection(self.engine) as conn:
            total: int | None = None
            if args.needs_total or with_total:
                total = await count_on(conn, table, conditions, conditions_key)
            window = resolve_window(args, total, self.max_page_size)
            base, joins = _page_base(table, columns, tuple(prefetch), ordering)
            # An empty page whose total is known (`first: 0`, a count alone) reads no rows.
            empty = (window.limit <= 0 or not rows_wanted) and total is not None
            rows: list[Row] = []
            if not empty:
                stmt = (
                    _kept(("page", id(base), conditions_key), base, lambda: base.where(*conditions))
                    if conditions
                    else base
                )
                window_values = {"page_offset": window.start, "page_limit": window.limit + 1}
                rows = as_dicts(await conn.execute(stmt, window_values))
        for i, join in enumerate(joins):
            self._attach(join, f"prefetch_{i}_", rows)
        wrap = self.wrap(entity)
        items = [wrap(row) for row in rows[: window.limit]]
        has_next = len(rows) > window.limit or (total is not None and window.stop < total)
        return Page(
            items=items, start=window.start, has_next=has_next, has_previous=window.start > 0, total=total
        )
