"""Exact whole-table row counts on PostgreSQL, kept by triggers (``row_counts``).

An unfiltered ``totalCount`` (``sources`` in ``/api/sources/search``, ``images`` in
``/api/images``) costs SQLite a walk over the pages of its smallest index (``OP_Count``
counts each leaf page's cells, 10^5 sources in 0.02 ms) but PostgreSQL a visit to every
index entry (7.6 ms for 10^5 sources, index-only, visibility map set): MVCC keeps no count.
The count must stay exact (issue 11), so ``pg_class.reltuples`` will not do. Instead
statement-level triggers with transition tables (PostgreSQL docs, "CREATE TRIGGER":
``REFERENCING NEW TABLE``) add each statement's inserted and deleted row counts to
``row_counts`` in the writer's own transaction, and the count is ``sum(delta)``: every
snapshot sees exactly the deltas of the rows it sees, whatever commits concurrently.

Writers never update a shared row (no lock for concurrent writers to queue on, no
deadlock): each statement adds one delta row, and the writer that gets
``pg_try_advisory_xact_lock`` (no wait) folds the committed deltas into its own, so the
table stays a few rows long. Only one writer folds at a time; rows it cannot see yet
(uncommitted) are left for the next one. ``TRUNCATE`` takes an exclusive lock on the
table, so its trigger may simply delete the table's deltas.

SQLite needs none of this (its count is already O(pages)); the table exists there too
(one schema) and stays empty.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Index,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    func,
    literal_column,
    select,
)

from dsa110.db.tables import metadata

COUNTED_TABLES: Final = ("sources", "images", "groups")
"""Tables whose unfiltered count the graph serves on busy paths (REST search, image list,
health probe); ``groups`` since migration 0019."""

ADVISORY_LOCK_CLASS: Final = 110_110
"""First key of the two-key advisory lock a folding writer takes (second: the table)."""

row_counts = Table(
    "row_counts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("table_name", String(64), nullable=False),
    Column("delta", BigInteger, nullable=False),
    Index(None, "table_name"),
)

_ADD = f"""
CREATE OR REPLACE FUNCTION dsa110_row_count_add(tbl text, n bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    IF pg_try_advisory_xact_lock({ADVISORY_LOCK_CLASS}, hashtext(tbl)) THEN
        WITH folded AS (DELETE FROM row_counts WHERE table_name = tbl RETURNING delta)
        INSERT INTO row_counts (table_name, delta) SELECT tbl, n + coalesce(sum(delta), 0) FROM folded;
    ELSE
        INSERT INTO row_counts (table_name, delta) VALUES (tbl, n);
    END IF;
END $$
"""
_INSERTED = """
CREATE OR REPLACE FUNCTION dsa110_row_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dsa110_row_count_add(TG_TABLE_NAME, (SELECT count(*) FROM inserted_rows));
    RETURN NULL;
END $$
"""
_DELETED = """
CREATE OR REPLACE FUNCTION dsa110_row_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dsa110_row_count_add(TG_TABLE_NAME, -(SELECT count(*) FROM deleted_rows));
    RETURN NULL;
END $$
"""
_TRUNCATED = """
CREATE OR REPLACE FUNCTION dsa110_row_counts_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM row_counts WHERE table_name = TG_TABLE_NAME;
    RETURN NULL;
END $$
"""
FUNCTIONS: Final = ("dsa110_row_counts_inserted", "dsa110_row_counts_deleted", "dsa110_row_counts_truncated")


def install_sql(table: str) -> list[str]:
    """PostgreSQL statements that start counting ``table``: functions, triggers, its count now.

    Run in one transaction; the ``LOCK`` keeps writers out between the count and the
    triggers, so no row is missed or counted twice.
    """
    if table not in COUNTED_TABLES:
        raise ValueError(f"not a counted table: {table!r}")
    return [
        _ADD,
        _INSERTED,
        _DELETED,
        _TRUNCATED,
        f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE",
        f"DELETE FROM row_counts WHERE table_name = '{table}'",
        f"INSERT INTO row_counts (table_name, delta) SELECT '{table}', count(*) FROM {table}",
        f"CREATE TRIGGER row_counts_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS inserted_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION dsa110_row_counts_inserted()",
        f"CREATE TRIGGER row_counts_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS deleted_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION dsa110_row_counts_deleted()",
        f"CREATE TRIGGER row_counts_truncate AFTER TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION dsa110_row_counts_truncated()",
    ]


def uninstall_sql(table: str) -> list[str]:
    return [f"DROP TRIGGER IF EXISTS row_counts_{op} ON {table}" for op in ("insert", "delete", "truncate")]


def count_statement(
    dialect: str, table: Table, conditions: Sequence[ColumnElement[bool]] = ()
) -> Select[Any]:
    """The exact row count of ``table`` under ``conditions``, as cheap as the backend allows.

    A whole counted table on PostgreSQL is the sum of its deltas; everything else is a
    ``count(*)`` (answered from an index: ``tests/db/test_count_plans.py``). The unfiltered
    statements are built once: SQLAlchemy computes a statement object's cache key once, so a
    reused object skips that work on every request.
    """
    if conditions:
        return _count_all(table).where(*conditions)
    return _unfiltered_count(dialect, table)


@functools.lru_cache(maxsize=256)
def _count_all(table: Table) -> Select[Any]:
    return select(func.count()).select_from(table)


def total_statement(dialect: str, table: Table, inline: bool = False) -> Select[Any]:
    """``table``'s exact row count (``count_statement`` with no conditions). ``inline``: its
    constants written into the SQL text, not sent as parameters (a part of a statement that
    has no parameters at all: ``dsa110.db.complement_count``)."""
    return _unfiltered_count(dialect, table, inline)


@functools.lru_cache(maxsize=256)
def _unfiltered_count(dialect: str, table: Table, inline: bool = False) -> Select[Any]:
    if dialect == "postgresql" and table.name in COUNTED_TABLES:
        zero: Any = literal_column("0") if inline else 0
        name: Any = bindparam(None, table.name, literal_execute=True) if inline else table.name
        return select(func.coalesce(func.sum(row_counts.c.delta), zero)).where(
            row_counts.c.table_name == name
        )
    return _count_all(table)
