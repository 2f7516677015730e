"""Writes on our side: watermarks, legacy keys, change-detecting upserts, id-keeping inserts.

Every import transaction starts with :func:`lock_state`, a write to its table's
``legacy_import_state`` row: on SQLite that first write takes the database write lock
before anything is read (a read-then-write transaction could fail on upgrade when
another writer committed in between); on PostgreSQL it row-locks the watermark, so two
importers of the same table (a CLI import while the server follows) take turns instead of
both converting the same rows.

:func:`upsert` is ``INSERT ... ON CONFLICT (natural key) DO UPDATE ... WHERE`` some column
``IS DISTINCT FROM`` the incoming value, ``RETURNING`` the rows it inserted or changed:
importing the same rows twice writes nothing and returns nothing, so no event is
published for a row that did not change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Table, Text, and_, bindparam, cast, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import JSON

from dsa110.db.functions import insert_or_skip
from dsa110.db.legacy_tables import legacy_import_state, legacy_keys

CHUNK = 500
LOOKUP_CHUNK = 4000  # keys per lookup statement (well under both backends' bound-parameter limits)
NOTHING_READ = -(2**63)
"""The watermark before the first row: SQLite rowids may be 0 or negative (``INTEGER
PRIMARY KEY`` columns such as the master catalog's ``source_id``, which starts at 0)."""


@dataclass
class Watermark:
    last_rowid: int = NOTHING_READ
    last_changed: float | None = None
    rows_imported: int = 0


def dialect_insert(conn: AsyncConnection, table: Table) -> Any:
    return postgresql_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table)


async def lock_state(conn: AsyncConnection, source: str, table_name: str) -> Watermark:
    """Take the write lock (SQLite) / the watermark row lock (PostgreSQL); return the watermark."""
    now = datetime.now(UTC)
    await conn.execute(
        insert_or_skip(conn.dialect.name, legacy_import_state),
        {
            "source": source,
            "table_name": table_name,
            "last_rowid": NOTHING_READ,
            "rows_imported": 0,
            "updated_at": now,
        },
    )
    key = and_(legacy_import_state.c.source == source, legacy_import_state.c.table_name == table_name)
    row = (
        await conn.execute(
            select(
                legacy_import_state.c.last_rowid,
                legacy_import_state.c.last_changed,
                legacy_import_state.c.rows_imported,
            )
            .where(key)
            .with_for_update()
        )
    ).one()
    return Watermark(int(row.last_rowid), row.last_changed, int(row.rows_imported))


async def read_state(conn: AsyncConnection, source: str, table_name: str) -> Watermark:
    row = (
        await conn.execute(
            select(
                legacy_import_state.c.last_rowid,
                legacy_import_state.c.last_changed,
                legacy_import_state.c.rows_imported,
            ).where(legacy_import_state.c.source == source, legacy_import_state.c.table_name == table_name)
        )
    ).first()
    return Watermark() if row is None else Watermark(int(row[0]), row[1], int(row[2]))


async def save_state(conn: AsyncConnection, source: str, table_name: str, mark: Watermark) -> None:
    await conn.execute(
        update(legacy_import_state)
        .where(legacy_import_state.c.source == source, legacy_import_state.c.table_name == table_name)
        .values(
            last_rowid=mark.last_rowid,
            last_changed=mark.last_changed,
            rows_imported=mark.rows_imported,
            updated_at=datetime.now(UTC),
        )
    )


def _differs(table: Table, excluded: Any, name: str) -> ColumnElement[bool]:
    column: Column[Any] = table.c[name]
    if isinstance(column.type, JSON):  # PostgreSQL's json has no equality: compare the text
        return cast(column, Text).is_distinct_from(cast(excluded[name], Text))
    return column.is_distinct_from(excluded[name])


def any_differs(table: Table, excluded: Any, names: Sequence[str]) -> ColumnElement[bool]:
    """Some column of ``names`` differs from the incoming (``excluded``) value."""
    return or_(*(_differs(table, excluded, c) for c in names))


async def _existing(
    conn: AsyncConnection,
    table: Table,
    key: Sequence[str],
    keys: list[tuple[Any, ...]],
    columns: Sequence[str],
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The stored rows of these natural keys (only ``columns`` and the key), by key."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    wanted = list(dict.fromkeys(keys))
    selected = [table.c[c] for c in dict.fromkeys([*key, *columns])]
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        # Each key column IN its values: an index seek per combination on both backends
        # (a row-value IN list is scanned by SQLite); the exact pairs are kept below.
        where = and_(*(table.c[c].in_(list(dict.fromkeys(k[i] for k in chunk))) for i, c in enumerate(key)))
        asked = set(chunk)
        for row in (await conn.execute(select(*selected).where(where))).mappings():
            found = tuple(row[c] for c in key)
            if found in asked:
                out[found] = dict(row)
    return out


def _same(stored: Any, incoming: Any) -> bool:
    if stored is None or incoming is None:
        return stored is incoming
    if isinstance(incoming, bool) or isinstance(stored, bool):
        return bool(stored) == bool(incoming)
    return bool(stored == incoming)


async def upsert(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    key: Sequence[str],
    returning: Sequence[str] = ("id",),
    *,
    keep: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Insert or update ``rows`` by their natural ``key``; return those inserted or changed.

    The stored rows of the batch's keys are read first (one indexed statement per 500)
    and compared in Python: only new and changed rows are written, by plain executemany
    (no per-row ``RETURNING``), so a batch that changed nothing writes nothing. The
    insert still says ``ON CONFLICT DO UPDATE``, for a writer of another table that made
    the same row meanwhile. Columns in ``keep`` are written on insert but never
    overwritten (ours to maintain, such as a source's metrics). All rows must have the
    same keys.
    """
    if not rows:
        return []
    names = list(rows[0])
    changing = [c for c in names if c not in key and c not in keep]
    wanted = list(dict.fromkeys([*changing, *returning]))
    stored = await _existing(conn, table, key, [tuple(r[c] for c in key) for r in rows], wanted)
    new: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    changed: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        k = tuple(row[c] for c in key)
        old = stored.get(k)
        if old is None:
            new[k] = row
        elif any(not _same(old[c], row[c]) for c in changing):
            changed[k] = row
        else:
            changed.pop(k, None)  # a later duplicate equal to what is stored
    if new:
        stmt = dialect_insert(conn, table)
        stmt = (
            stmt.on_conflict_do_update(
                index_elements=[table.c[c] for c in key], set_={c: stmt.excluded[c] for c in changing}
            )
            if changing
            else stmt.on_conflict_do_nothing(index_elements=[table.c[c] for c in key])
        )
        values = list(new.values())
        for start in range(0, len(values), 5000):
            await conn.execute(stmt, values[start : start + 5000])
    if changed:
        stmt = (
            update(table)
            .where(and_(*(table.c[c] == bindparam(f"k_{c}") for c in key)))
            .values({c: bindparam(f"v_{c}") for c in changing})
        )
        params = [
            {**{f"k_{c}": row[c] for c in key}, **{f"v_{c}": row[c] for c in changing}}
            for row in changed.values()
        ]
        for start in range(0, len(params), 5000):
            await conn.execute(stmt, params[start : start + 5000])
    out = [{c: (row[c] if c in row else stored[k][c]) for c in returning} for k, row in changed.items()]
    if new and all(c in names for c in returning):
        out += [{c: row[c] for c in returning} for row in new.values()]
    elif new:  # database-made values (ids): read back by key
        fresh = await _existing(conn, table, key, list(new), returning)
        out += [{c: fresh[k][c] for c in returning} for k in new if k in fresh]
    return out


async def known_keys(conn: AsyncConnection, kind: str, legacy: Iterable[str]) -> dict[str, int]:
    """Our pk of each legacy key already imported."""
    wanted = sorted(set(legacy))
    out: dict[str, int] = {}
    for start in range(0, len(wanted), CHUNK):
        result = await conn.execute(
            select(legacy_keys.c.legacy_key, legacy_keys.c.target_pk).where(
                legacy_keys.c.kind == kind, legacy_keys.c.legacy_key.in_(wanted[start : start + CHUNK])
            )
        )
        out.update({str(k): int(pk) for k, pk in result.all()})
    return out


async def remember_keys(conn: AsyncConnection, kind: str, mapping: Mapping[str, int]) -> None:
    if mapping:
        await upsert(
            conn,
            legacy_keys,
            [{"kind": kind, "legacy_key": k, "target_pk": pk} for k, pk in mapping.items()],
            ("kind", "legacy_key"),
            returning=("kind",),
        )


async def insert_keeping_ids(
    conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert ``rows`` (each with its wished ``id``); a taken id gets a new one. Returns pks in order.

    Keeping the legacy integer id keeps the legacy URLs (``/api/images/17``) pointing at
    the same thing. On PostgreSQL the id sequence is moved past the wished ids *before*
    inserting, so a concurrent writer's next id cannot collide with one of them; an id a
    concurrent writer took already is detected by ``ON CONFLICT DO NOTHING``.
    """
    if not rows:
        return []
    wished = [int(r["id"]) for r in rows]
    if conn.dialect.name == "postgresql":
        seq = f"pg_get_serial_sequence('{table.name}', 'id')"
        await conn.execute(text(f"SELECT setval({seq}, GREATEST(:m, nextval({seq})))"), {"m": max(wished)})
    taken: set[int] = set()
    for start in range(0, len(wished), CHUNK):
        result = await conn.execute(select(table.c.id).where(table.c.id.in_(wished[start : start + CHUNK])))
        taken.update(int(i) for i in result.scalars())
    free = [r for r in rows if int(r["id"]) not in taken]
    got: set[int] = set()
    if free:
        stmt = dialect_insert(conn, table).on_conflict_do_nothing().returning(table.c.id)
        for start in range(0, len(free), CHUNK):
            result = await conn.execute(stmt, free[start : start + CHUNK])
            got.update(int(i) for i in result.scalars())
    out: list[int] = []
    for row in rows:
        if int(row["id"]) in got:
            out.append(int(row["id"]))
            continue
        values = {k: v for k, v in row.items() if k != "id"}
        out.append(
            int(
                (
                    await conn.execute(dialect_insert(conn, table).values(**values).returning(table.c.id))
                ).scalar_one()
            )
        )
    return out
