"""The ingest's bulk statements, one place per dialect: id lists, raw reads, INSERT, UPDATE.

SQLite gets ``?`` lists and prepared ``executemany``; PostgreSQL gets array parameters
(``= ANY``, ``unnest``), one round trip per statement whatever the row count. SQLite reads go
to the driver connection (:func:`fetch_rows`): the rows are turned into numpy columns at
once, and SQLAlchemy's per-row ``Row`` objects were 0.25 s of a 100,000-row image for nothing.
All of it runs inside the caller's transaction (the driver connection is the same one).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncConnection

_PG_TYPES = {"source_pk": "integer", "image_pk": "integer", "forced": "boolean", "n_epochs": "integer"}
_PG_TYPES["new_source"] = "boolean"


def id_list(conn: AsyncConnection, ids: Sequence[int], first: int = 1) -> tuple[str, tuple[Any, ...]]:
    """``IN (...)`` over ``ids`` as raw SQL and its parameters, numbered from ``first``.

    Raw rather than ``column.in_()``: SQLAlchemy renders an expanding IN of 5,000 values
    into 5,000 named parameters per statement, 0.4 s of Python for a 100,000-row image.
    PostgreSQL gets one array parameter (``= ANY``), SQLite one ``?`` per id.
    """
    if conn.dialect.name == "postgresql":
        return f"= ANY(${first}::integer[])", (list(ids),)
    return f"IN ({', '.join(['?'] * len(ids))})", tuple(ids)


def partners_query(
    conn: AsyncConnection, ids: Sequence[int], lo: float, hi: float
) -> tuple[str, tuple[Any, ...]]:
    """The stored (source_pk, mjd, flux, error) of ``ids`` with ``lo <= mjd <= hi``.

    PostgreSQL joins an ``unnest`` of the ids: ``source_pk = ANY($3)`` with a parameter array
    is tested row by row against the whole array (no hashing, unlike a list of constants),
    and the planner, reading the mjd range, tested every measurement of the window that way
    (66 s for a 100,000-row image). The join is driven by the ids through the (source_pk,
    mjd) index.
    """
    columns = "m.source_pk, m.mjd, m.peak_flux_jy, m.peak_flux_err_jy"
    if conn.dialect.name == "postgresql":
        sql = (
            f"SELECT {columns} FROM unnest($1::integer[]) AS u(id) "
            "JOIN measurements AS m ON m.source_pk = u.id AND m.mjd BETWEEN $2 AND $3"
        )
        return sql, (list(ids), lo, hi)
    in_ids, params = id_list(conn, ids)
    sql = f"SELECT {columns} FROM measurements AS m WHERE m.source_pk {in_ids} AND m.mjd BETWEEN ? AND ?"
    return sql, (*params, lo, hi)


async def bulk_insert(
    conn: AsyncConnection, sql_table: str, columns: Sequence[str], data: list[list[Any]]
) -> None:
    """INSERT ``data`` (one list per column) into ``sql_table`` with one statement."""
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(
            f"${i + 1}::{_PG_TYPES.get(c, 'double precision')}[]" for i, c in enumerate(columns)
        )
        await conn.exec_driver_sql(
            f"INSERT INTO {sql_table} ({names}) SELECT * FROM unnest({arrays})", tuple(data)
        )
    else:
        marks = ", ".join("?" for _ in columns)
        await conn.exec_driver_sql(
            f"INSERT INTO {sql_table} ({names}) VALUES ({marks})", list(zip(*data, strict=True))
        )


async def bulk_update_sources(conn: AsyncConnection, ids: list[int], data: dict[str, list[Any]]) -> None:
    columns = list(data)
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(
            f"${i + 2}::{_PG_TYPES.get(c, 'double precision')}[]" for i, c in enumerate(columns)
        )
        sets = ", ".join(f"{c} = u.{c}" for c in columns)
        await conn.exec_driver_sql(
            f"UPDATE sources SET {sets} FROM unnest($1::integer[], {arrays}) AS u(id, {', '.join(columns)}) "
            "WHERE sources.id = u.id",
            (ids, *(data[c] for c in columns)),
        )
    else:
        sets = ", ".join(f"{c} = ?" for c in columns)
        await conn.exec_driver_sql(
            f"UPDATE sources SET {sets} WHERE id = ?",
            list(zip(*(data[c] for c in columns), ids, strict=True)),
        )


async def fetch_rows(conn: AsyncConnection, sql: str, params: Sequence[Any]) -> list[Sequence[Any]]:
    """All rows of ``sql`` as plain sequences (``?`` marks on SQLite, ``$n`` on PostgreSQL).

    SQLite reads through the driver connection, skipping SQLAlchemy's ``Row`` objects;
    its errors are raised as SQLAlchemy's, so that ``write_transaction`` still tells a busy
    database from a defect. PostgreSQL goes through SQLAlchemy, which maps asyncpg's errors
    (a lock timeout is ``BUSY``); its cost is on the server.
    """
    if conn.dialect.name == "postgresql":
        # tuples: numpy reads a Row element by element through Python, 10x slower
        return [tuple(row) for row in await conn.exec_driver_sql(sql, tuple(params))]
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    try:
        return list(await driver.execute_fetchall(sql, tuple(params)))
    except sqlite3.OperationalError as error:
        raise exc.OperationalError(sql, tuple(params), error) from error
    except sqlite3.Error as error:
        raise exc.DatabaseError(sql, tuple(params), error) from error
