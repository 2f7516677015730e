"""Exact filtered counts from the smaller side: the total minus the rows a filter leaves out.

A filter that keeps most of a table costs its ``count(*)`` a visit to every index entry it
keeps (``nEpochsMin: 10, etaMin: 1`` keeps 81,809 of 10^5 sources: 8.7 ms on PostgreSQL,
issue 11), while the table's exact total is cheap (``dsa110.db.row_counts``). Take a filter
``F`` that is a conjunction of comparisons ``column op constant`` (``op`` one of ``>= > <=
<``) on the counted table's own columns; per column its comparisons keep one interval
``I_i`` of values (``x_i IN I_i``), so ``F = x_1 IN I_1 AND ... AND x_m IN I_m`` and

    count(F) = total - sum_{j=1..m} count(x_1 IN I_1 AND ... AND x_{j-1} IN I_{j-1} AND x_j NOT* IN I_j)

where ``x NOT* IN I`` is ``x`` below ``I``, above ``I`` or NULL (SQL's three-valued logic: a
NULL fails every comparison). The terms are disjoint and cover every row F leaves out: such
a row is counted by the first column whose interval it misses, once. Each term is split into
its (at most) three ranges, each one range of an index: below, above, IS NULL (left out for a
NOT NULL column). The comparisons partition a column's non-NULL values on both backends:
PostgreSQL orders NaN above every number and equal to itself (docs, "Floating-Point
Types"); SQLite stores NaN as NULL.

The columns are ordered so that each term's range lies on the leading column of an index
that also holds the columns of the intervals before it: every term is then an index-only
range scan. A filter with no such order, of another shape, or with two bounds on one side of
a column that are not numbers (which one is tighter is then the database's business) is
counted directly, as is an empty interval. On PostgreSQL the constants are written into the
statement's text (``sided_count``: planned once per connection, not at every execution).
Total and terms are scalar subqueries of ONE statement, so they share one snapshot
(PostgreSQL READ COMMITTED takes a snapshot per statement; SQLite reads inside one
transaction): the answer is exact under concurrent writers.

Which side is cheaper: term ``j`` scans the ranges ``x_j NOT* IN I_j``, which lie inside
``NOT F``, so the complement visits at most ``m (total - count)`` entries and the direct count
at least ``count``. The last (count, total) seen per filter (kept by the filter's key,
``dsa110.db.filter_cache``; bounded, least recently used out: keys come from clients) picks
the complement when ``m (total - count) < count``; a filter seen for the first time is
counted directly, its total read alongside (one more scalar subquery, as cheap as
``row_counts.total_statement`` makes it: 0.02-0.1 ms at 10^5 sources). Either way the
answer is exact; only the cost depends on the choice.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import BindParameter, Column, ColumnElement, Select, Table, and_, bindparam, func, select
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression

from dsa110.db.row_counts import COUNTED_TABLES, total_statement

MAX_COLUMNS: Final = 4
"""Filters on more columns are counted directly (the order search tries m! orders)."""

SIZE: Final = 512
"""Filters whose last count is remembered."""

_OPPOSITE: Final[dict[Any, Callable[[Any, Any], Any]]] = {
    operators.ge: operator.lt,
    operators.gt: operator.le,
    operators.le: operator.gt,
    operators.lt: operator.ge,
}
_OPERATOR: Final[dict[Any, Callable[[Any, Any], Any]]] = {
    operators.ge: operator.ge,
    operators.gt: operator.gt,
    operators.le: operator.le,
    operators.lt: operator.lt,
}
_LOWER: Final = (operators.ge, operators.gt)


@dataclass(frozen=True)
class Bound:
    """One comparison ``column op value`` of a filter, as found in its condition."""

    condition: ColumnElement[bool]
    column: Column[Any]
    op: Any
    value: BindParameter[Any]

    @property
    def constant(self) -> Any:
        return self.value.value

    @property
    def lower(self) -> bool:
        return self.op in _LOWER

    def written(self, inline: bool) -> Any:
        """The value: written into the SQL text when ``inline`` and a finite number, else
        the bound parameter."""
        v = self.constant
        if inline and _number(v) and math.isfinite(v):
            return bindparam(None, v, type_=self.column.type, literal_execute=True)
        return self.value

    def comparison(self, inline: bool) -> ColumnElement[bool]:
        result: ColumnElement[bool] = _OPERATOR[self.op](self.column, self.written(inline))
        return result

    def opposite(self, inline: bool) -> ColumnElement[bool]:
        """The values of the column (not NULL) that fail this comparison."""
        result: ColumnElement[bool] = _OPPOSITE[self.op](self.column, self.written(inline))
        return result


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _tightest(bounds: list[Bound]) -> Bound | None:
    """The bound that implies the others on one side of one column (None: not decidable)."""
    if len(bounds) == 1:
        return bounds[0]
    if not all(_number(b.constant) for b in bounds):
        return None
    strict = (operators.gt, operators.lt)
    sign = 1 if bounds[0].lower else -1  # lower bounds: the greatest; upper: the least
    return max(bounds, key=lambda b: (sign * b.constant, b.op in strict))


@dataclass(frozen=True)
class Interval:
    """The values one column keeps: at most one lower and one upper bound."""

    column: Column[Any]
    lower: Bound | None
    upper: Bound | None

    def kept(self, inline: bool) -> list[ColumnElement[bool]]:
        return [b.comparison(inline) for b in (self.lower, self.upper) if b is not None]

    def left_out(self, inline: bool) -> list[ColumnElement[bool]]:
        """Below, above and NULL: disjoint ranges (the interval is not empty) of the column."""
        ranges = [b.opposite(inline) for b in (self.lower, self.upper) if b is not None]
        if self.column.nullable:
            ranges.append(self.column.is_(None))
        return ranges


def intervals(table: Table, conditions: Sequence[ColumnElement[bool]]) -> list[Interval] | None:
    """The conditions as one non-empty interval per column of ``table`` (in order of first
    mention), or None when a condition has another shape or an interval cannot be formed."""
    by_column: dict[str, list[Bound]] = {}
    for cond in conditions:
        if not isinstance(cond, BinaryExpression) or cond.operator not in _OPPOSITE:
            return None
        column, value = cond.left, cond.right
        if (
            not isinstance(column, Column)
            or column.table is not table
            or not isinstance(value, BindParameter)
        ):
            return None
        by_column.setdefault(column.name, []).append(Bound(cond, column, cond.operator, value))
    out: list[Interval] = []
    for found in by_column.values():
        lows, highs = [b for b in found if b.lower], [b for b in found if not b.lower]
        low = _tightest(lows) if lows else None
        high = _tightest(highs) if highs else None
        if (lows and low is None) or (highs and high is None):
            return None
        if low is not None and high is not None:
            lo, hi = low.constant, high.constant
            inclusive = low.op is operators.ge and high.op is operators.le
            if not (_number(lo) and _number(hi) and (lo < hi or (lo == hi and inclusive))):
                return None  # empty, or not known not to be: below and above would overlap
        out.append(Interval(found[0].column, low, high))
    return out


def _index_columns(table: Table) -> list[tuple[str, ...]]:
    """Column names of each plain index of ``table`` (and of its primary key), in order."""
    out: list[tuple[str, ...]] = []
    if table.primary_key.columns:
        out.append(tuple(c.name for c in table.primary_key.columns))
    for ix in table.indexes:
        partial = any(opts.get("where") is not None for opts in ix.dialect_options.values())
        if partial or getattr(ix, "_ddl_if", None) is not None or len(ix.columns) != len(ix.expressions):
            continue
        out.append(tuple(c.name for c in ix.columns))
    return out


def index_order(table: Table, found: Sequence[Interval]) -> list[Interval] | None:
    """An order of ``found`` in which column ``j`` leads an index that also holds the columns
    before it; None if there is none."""
    if not found or len(found) > MAX_COLUMNS:
        return None
    indexes = _index_columns(table)
    for order in itertools.permutations(found):
        seen: set[str] = set()
        for interval in order:
            name = interval.column.name
            if not any(cols[0] == name and seen <= set(cols) for cols in indexes):
                break
            seen.add(name)
        else:
            return list(order)
    return None


@dataclass(frozen=True)
class SidedCount:
    """Both ways to count one filter. ``direct``: one row ``(count, total)``; ``complement``:
    one row ``(total, left_out)``, the sum of the ``terms`` (each one index range);
    ``columns``: the filter's m."""

    direct: Select[Any]
    complement: Select[Any]
    terms: tuple[Select[Any], ...]
    columns: int

    def answer(self, key: Hashable, use_complement: bool, row: Sequence[Any]) -> int:
        """The count a row of the chosen statement gives; remembers it for ``key``."""
        if use_complement:
            total = int(row[0] or 0)
            count = total - int(row[1] or 0)
        else:
            count, total = int(row[0] or 0), int(row[1] or 0)
        remember(key, count, total)
        return count


def sided_count(dialect: str, table: Table, conditions: Sequence[ColumnElement[bool]]) -> SidedCount | None:
    """The two ways to count ``table`` under ``conditions``, or None when only the direct
    ``count_statement`` applies (no cheap exact total, another shape, no index order)."""
    if table.name not in COUNTED_TABLES:
        return None
    found = intervals(table, conditions)
    order = index_order(table, found) if found is not None else None
    if order is None:
        return None
    direct = select(func.count(), total_statement(dialect, table).scalar_subquery())
    direct = direct.select_from(table).where(*conditions)
    # PostgreSQL plans a statement with parameters again at every execution (a custom plan:
    # 0.2-0.3 ms for these five subqueries, as long as a generic plan looks costlier, which it
    # does with its default range selectivities) but plans one without parameters once per
    # connection (asyncpg's prepared statements). SQLite plans a statement once per prepare
    # either way, and writing the values costs SQLAlchemy a render per execution.
    inline = dialect == "postgresql"
    total = total_statement(dialect, table, inline=inline).scalar_subquery()
    terms = tuple(
        select(func.count())
        .select_from(table)
        .where(and_(*(c for kept in order[:j] for c in kept.kept(inline)), left_out))
        for j, interval in enumerate(order)
        for left_out in interval.left_out(inline)
    )
    subqueries = [term.scalar_subquery() for term in terms]
    left_out_total: Any = subqueries[0]
    for term in subqueries[1:]:
        left_out_total = left_out_total + term
    return SidedCount(direct, select(total, left_out_total), terms, len(order))


_LAST: OrderedDict[Hashable, tuple[int, int]] = OrderedDict()


def remember(key: Hashable, count: int, total: int) -> None:
    _LAST[key] = (count, total)
    _LAST.move_to_end(key)
    if len(_LAST) > SIZE:
        _LAST.popitem(last=False)


def last_seen(key: Hashable) -> tuple[int, int] | None:
    """The (count, total) last seen for ``key``, if it is still remembered."""
    return _LAST.get(key)


def use_complement(key: Hashable, columns: int) -> bool:
    """Count the left-out side: the bound on the entries the complement visits, ``m (total -
    count)`` for a filter on ``m = columns`` columns, was below the ``count`` the direct count
    visits, last time."""
    last = _LAST.get(key)
    if last is None:
        return False
    _LAST.move_to_end(key)
    count, total = last
    return columns * (total - count) < count
