"""The per-request set of DataLoaders, and the one place graph reads run SQL.

A ``Loaders`` is created for each HTTP request (and each subscription event), so its
caches never outlive what one client asked for. Every batch runs exactly one statement
on its own connection: concurrent resolvers never share a session.

Rows come back wrapped by ``wrap[entity]`` (the schema layer passes its types'
constructors), so a resolver can return a loader's future directly: no coroutine per
item, which is most of the cost of a nested list in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.dataloader import DataLoader

from dsa110.db import tables as t
from dsa110.db.filters import Ordering
from loaders.pages import entity_columns, page_statement, split_pages
from loaders.pagination import Page, PageArgs, resolve_window
from loaders.relations import RELATIONS

Wrap = Callable[[dict[str, Any]], Any]  # a row's column dict -> the graph's object

ENTITY_TABLES: dict[str, Table] = {
    "source": t.sources,
    "measurement": t.measurements,
    "image": t.images,
    "group": t.groups,
    "mosaic": t.mosaics,
    "job": t.jobs,
    "job_log": t.job_logs,
    "product": t.data_products,
    "ms": t.measurement_sets,
    "caltable": t.cal_tables,
    "candidate": t.ese_candidates,
    "alert": t.alerts,
    "region": t.regions,
    "subband": t.subband_files,
    "catalog_source": t.catalog_sources,
    "metrics": t.system_metrics,
    "status_change": t.ese_status_changes,
    "cross_match": t.cross_matches,
    "qa_artifact": t.qa_artifacts,
    "audit": t.audit_log,
}


def _identity(values: dict[str, Any]) -> Any:
    return values


def as_dicts(result: Any) -> list[dict[str, Any]]:
    """Rows as plain dicts: ``dict(zip(keys, row))`` is several times cheaper than
    going through SQLAlchemy's ``Row._mapping`` for every row."""
    keys = list(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


class Loaders:
    def __init__(self, engine: AsyncEngine, wrap: Mapping[str, Wrap] | None = None, max_page_size: int = 500):
        self.engine = engine
        self.max_page_size = max_page_size
        self._wrap = dict(wrap or {})
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}

    def wrap(self, entity: str) -> Wrap:
        return self._wrap.get(entity, _identity)

    async def fetch(self, stmt: Any) -> list[dict[str, Any]]:
        """Run one statement on a connection of its own and return its rows as dicts."""
        async with self.engine.connect() as conn:
            return as_dicts(await conn.execute(stmt))

    async def scalar(self, stmt: Any) -> Any:
        async with self.engine.connect() as conn:
            return (await conn.execute(stmt)).scalar()

    def _loader(self, key: Hashable, build: Callable[[], DataLoader[Any, Any]]) -> DataLoader[Any, Any]:
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = build()
        return loader

    def custom(self, name: Hashable, batch: Callable[[list[Any]], Any]) -> DataLoader[Any, Any]:
        """A per-request loader around a domain batch function (``keys -> values``)."""
        return self._loader(("custom", name), lambda: DataLoader(batch))

    # --- one row per key -------------------------------------------------------------

    def by_key(self, entity: str, column: str = "id") -> DataLoader[Any, Any]:
        """``load(key)`` -> the wrapped row whose ``column`` equals key, or None."""
        return self._loader(("key", entity, column), lambda: DataLoader(self._batch_by_key(entity, column)))

    def _batch_by_key(self, entity: str, column: str) -> Callable[[list[Any]], Any]:
        table = ENTITY_TABLES[entity]
        col = table.c[column]
        attr = "pk" if column == "id" else column
        wrap = self.wrap(entity)

        async def batch(keys: list[Any]) -> list[Any]:
            rows = await self.fetch(select(*entity_columns(table)).where(col.in_(keys)))
            found = {row[attr]: wrap(row) for row in rows}
            return [found.get(key) for key in keys]

        return batch

    # --- a page of children per parent ------------------------------------------------

    def page(
        self,
        relation: str,
        args: PageArgs,
        conditions: Sequence[ColumnElement[bool]] = (),
        conditions_key: Hashable = None,
    ) -> DataLoader[int, Page[Any]]:
        """``load(parent_pk)`` -> one page of the parent's children (a windowed batch)."""
        args.validate(self.max_page_size)
        rel = RELATIONS[relation]
        wrap = self.wrap(rel.entity)

        async def batch(parent_pks: list[int]) -> list[Page[Any]]:
            rows = await self.fetch(page_statement(rel, parent_pks, args, conditions))
            return split_pages(rows, parent_pks, wrap)

        return self._loader(("page", relation, args, conditions_key), lambda: DataLoader(batch))

    def count(
        self, relation: str, conditions: Sequence[ColumnElement[bool]] = (), conditions_key: Hashable = None
    ) -> DataLoader[int, int]:
        """``load(parent_pk)`` -> how many children the parent has (one GROUP BY per batch)."""
        rel = RELATIONS[relation]

        async def batch(parent_pks: list[int]) -> list[int]:
            stmt = select(rel.parent_key, func.count()).where(rel.parent_key.in_(parent_pks), *conditions)
            if rel.link is not None and rel.link_on is not None:
                stmt = stmt.select_from(rel.child.join(rel.link, rel.link_on))
            if rel.link_where is not None:
                stmt = stmt.where(rel.link_where)
            async with self.engine.connect() as conn:
                rows = (await conn.execute(stmt.group_by(rel.parent_key))).all()
            counts: dict[int, int] = {row[0]: row[1] for row in rows}
            return [int(counts.get(pk, 0)) for pk in parent_pks]

        return self._loader(("count", relation, conditions_key), lambda: DataLoader(batch))

    # --- top-level lists ---------------------------------------------------------------

    async def count_rows(self, entity: str, conditions: Sequence[ColumnElement[bool]] = ()) -> int:
        table = ENTITY_TABLES[entity]
        return int(await self.scalar(select(func.count()).select_from(table).where(*conditions)) or 0)

    async def list_page(
        self,
        entity: str,
        conditions: Sequence[ColumnElement[bool]],
        ordering: Ordering,
        args: PageArgs,
    ) -> Page[Any]:
        """A page of a whole table: ORDER BY the ordering (ties by pk), LIMIT/OFFSET."""
        table = ENTITY_TABLES[entity]
        total = await self.count_rows(entity, conditions) if args.needs_total else None
        window = resolve_window(args, total, self.max_page_size)
        stmt = (
            select(*entity_columns(table))
            .where(*conditions)
            .order_by(*ordering.clauses(table))
            .offset(window.start)
            .limit(window.limit + 1)
        )
        rows = await self.fetch(stmt)
        wrap = self.wrap(entity)
        items = [wrap(row) for row in rows[: window.limit]]
        has_next = len(rows) > window.limit or (total is not None and window.stop < total)
        return Page(
            items=items, start=window.start, has_next=has_next, has_previous=window.start > 0, total=total
        )
