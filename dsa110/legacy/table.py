"""One legacy table, read past its watermark and written in batches: the import pass.

A pass over a table reads, in rowid order and ``batch_rows`` at a time, the rows above
the table's ``last_rowid`` watermark (new rows: SQLite hands out increasing rowids under
its write lock, so commit order is rowid order). Each batch is converted and written in
one transaction that also advances the watermark, so an interrupted import resumes
where it stopped and a batch is either all in or not at all.

Tables whose rows the pipeline updates in place are ``mutable``. For them a pass also
re-reads the rows that may have changed since the last pass:

- rows whose change-time columns (``changed``: ``last_update``, ``stage_updated_at``,
  ``finished_at``, ...) are at or after the ``last_changed`` watermark less
  ``CHANGE_MARGIN_S`` (a writer that stamped an earlier time but committed later is
  still seen);
- rows the ``open_when`` predicate marks as still changing without a time stamp (jobs
  running, whose log grows; batches pending), and the rows that were open at the last
  pass (so the change that closed them is seen too); tables with many such rows that
  rarely change (the data registry's staged products) re-read them every
  ``open_every_s`` only;
- at the first pass of a process, every row (what changed while nobody followed).

A digest of every mutable row read is kept in memory, so a re-read row that did not
change is not written again; the writes are change-detecting upserts besides, so a row
read twice by two processes changes nothing the second time.

Bulk: an append-only table whose spec has a ``bulk`` writer, imported into SQLite from a
WAL file holding the ``bulk_required`` columns, is not read into Python here. Each batch
is a rowid range (``batch_rows`` rows past the watermark, counted in the legacy file),
and the writer converts it in SQL from the file attached to the batch's transaction
(:mod:`dsa110.legacy.attach`), with the same watermark, transaction and retry rules.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from dsa110.legacy.attach import BULK_CACHE_KIB, attached, legacy_error
from dsa110.legacy.context import Batch, ImportContext
from dsa110.legacy.files import LegacyDb, quote_ident
from dsa110.legacy.store import NOTHING_READ, read_state
from dsa110.legacy.values import as_float

CHANGE_MARGIN_S: Final = 120.0
RETRIES: Final = 4
_TRANSIENT_STATES: Final = frozenset({"40P01", "40001"})  # deadlock, serialization failure

Row = dict[str, Any]
Writer = Callable[[ImportContext, Batch, list[Row]], Awaitable[int]]
Prepare = Callable[[ImportContext, list[Row]], Awaitable[list[Row]]]
Finish = Callable[[ImportContext], Awaitable[None]]
BulkWriter = Callable[[ImportContext, Batch, Sequence[str], int, int, int], Awaitable[int]]
"""``(ctx, batch, columns, after_rowid, last_rowid, n_rows)``: converts and writes the rows
``after_rowid < rowid <= last_rowid`` of the attached file; returns rows written."""


@dataclass(frozen=True)
class TableSpec:
    source: str  # the file's role: queue, registry, products, data_registry, master
    table: str
    write: Writer  # converts and writes one batch in the batch's transaction; returns rows written
    prepare: Prepare | None = None  # before the transaction: slow reads (FITS headers, stat)
    finish: Finish | None = None  # after each pass over the table (metrics recompute)
    required: tuple[str, ...] = ()
    mutable: bool = False
    changed: tuple[str, ...] = ()
    open_when: Callable[[Sequence[str]], str | None] | None = None
    open_every_s: float = 0.0  # re-read the open rows at most this often (many, rarely changing)
    batch_rows: int = 5000
    bulk: BulkWriter | None = None  # append-only tables: the rowid-range writer (SQLite, WAL files)
    bulk_required: tuple[str, ...] = ()
    bulk_batch_rows: int = 0  # rows per bulk batch (default ``batch_rows``)

    @property
    def name(self) -> str:
        return f"{self.source}.{self.table}"


@dataclass
class TableMemory:
    """What a process remembers between passes over one table."""

    passes: int = 0
    open_read_at: float = float("-inf")
    digests: dict[int, int] = field(default_factory=dict)
    open_rowids: set[int] = field(default_factory=set)


def _transient(exc: DBAPIError) -> bool:
    """A deadlock or serialization failure between concurrent importers: worth one more try."""
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return state in _TRANSIENT_STATES or "deadlock detected" in str(exc)


def _digest(row: Row) -> int:
    return hash(tuple((k, v) for k, v in row.items() if not k.startswith("_")))


def _select(spec: TableSpec, columns: Sequence[str]) -> str:
    parts = ["rowid AS _rowid", "*"]
    times = [quote_ident(c) for c in spec.changed if c in columns]
    if times:
        parts.append(
            f"MAX({', '.join(f'COALESCE({c}, 0)' for c in times)}, 0) AS _changed"
            if len(times) > 1
            else f"COALESCE({times[0]}, 0) AS _changed"
        )
    predicate = spec.open_when(columns) if spec.open_when is not None else None
    if predicate:
        parts.append(f"CASE WHEN ({predicate}) THEN 1 ELSE 0 END AS _open")
    return f"SELECT {', '.join(parts)} FROM {quote_ident(spec.table)}"


async def import_table(ctx: ImportContext, db: LegacyDb, spec: TableSpec, memory: TableMemory) -> None:
    """One pass over ``spec.table`` of ``db`` (see the module docstring)."""
    columns = await db.columns(spec.table)
    if columns is None:
        if spec.name not in ctx.report.missing:
            ctx.report.missing.append(spec.name)
        return
    lacking = [c for c in spec.required if c not in columns]
    if lacking:
        ctx.report.skip(spec.name, f"table lacks column(s) {', '.join(lacking)}")
        return
    async with ctx.engine.connect() as conn:
        mark = await read_state(conn, spec.source, spec.table)
    if await _bulk_ok(ctx, db, spec, columns):
        await _import_ranges(ctx, db, spec, columns, mark.last_rowid)
        memory.passes += 1
        if spec.finish is not None:
            await spec.finish(ctx)
        return
    select = _select(spec, columns)
    first = memory.passes == 0
    start = NOTHING_READ if (spec.mutable and first) else mark.last_rowid
    while True:
        rows = await db.rows(f"{select} WHERE rowid > ? ORDER BY rowid LIMIT ?", (start, spec.batch_rows))
        if not rows:
            break
        await _write_batch(ctx, spec, memory, rows, mark.last_rowid)
        start = int(rows[-1]["_rowid"])
        if len(rows) < spec.batch_rows:
            break
    if spec.mutable and not first:
        await _reread_changed(ctx, db, spec, memory, select, columns, mark.last_rowid, mark.last_changed)
    memory.passes += 1
    if spec.finish is not None:
        await spec.finish(ctx)


async def _bulk_ok(ctx: ImportContext, db: LegacyDb, spec: TableSpec, columns: Sequence[str]) -> bool:
    return (
        spec.bulk is not None
        and not spec.mutable
        and ctx.engine.dialect.name == "sqlite"
        and all(c in columns for c in spec.bulk_required)
        and await db.journal_mode() == "wal"
    )


async def _import_ranges(
    ctx: ImportContext, db: LegacyDb, spec: TableSpec, columns: Sequence[str], after: int
) -> None:
    """The rows past the watermark as rowid ranges of ``bulk_batch_rows``, for the bulk writer.

    One connection for the whole pass, the file attached once, with a large page cache:
    the batches insert all over the measurement indexes, which then stay in memory from
    one batch to the next (a connection keeps its cache while no other connection writes).
    """
    size = spec.bulk_batch_rows or spec.batch_rows
    ranges = (
        f"SELECT count(*), max(r) FROM (SELECT rowid AS r FROM {quote_ident(spec.table)} "
        "WHERE rowid > ? ORDER BY rowid LIMIT ?)"
    )
    n, last = (await db.query(ranges, (after, size)))[0]
    if not n:
        return  # nothing new (a follower's usual poll): no connection, no ATTACH
    # A backlog gets the large cache; a follower's few new rows keep the pooled connection's
    # own (warm) cache, and its memory stays that size.
    cache_kib = BULK_CACHE_KIB if n >= size else 0
    async with ctx.engine.connect() as conn, attached(conn, db.path, cache_kib=cache_kib):
        while n:
            await _write_range(ctx, conn, db, spec, columns, (after, int(last), int(n)), size)
            if n < size:
                break
            after = int(last)
            n, last = (await db.query(ranges, (after, size)))[0]


async def _write_range(
    ctx: ImportContext,
    conn: AsyncConnection,
    db: LegacyDb,
    spec: TableSpec,
    columns: Sequence[str],
    span: tuple[int, int, int],
    size: int,
) -> None:
    assert spec.bulk is not None
    after, last, n = span
    report = ctx.report.table(spec.name)
    report.read += n
    for attempt in range(1, RETRIES + 1):
        try:
            async with ctx.batch(spec.source, spec.table, conn) as b:
                b.backlog = n >= size
                written = await spec.bulk(ctx, b, columns, after, last, n)
                b.mark.last_rowid = max(b.mark.last_rowid, last)
                b.mark.rows_imported += n
            break
        except DBAPIError as exc:
            error = legacy_error(db.path, exc)
            if error is not exc:
                raise error from None
            if attempt == RETRIES or not _transient(exc):
                raise
            await asyncio.sleep(0.05 * attempt)
    report.written += written
    if ctx.progress is not None:
        ctx.progress(spec.name, n)


async def _reread_changed(
    ctx: ImportContext,
    db: LegacyDb,
    spec: TableSpec,
    memory: TableMemory,
    select: str,
    columns: Sequence[str],
    upto_rowid: int,
    since: float | None,
) -> None:
    conditions: list[str] = []
    params: list[Any] = []
    if "_changed" in select and since is not None:
        conditions.append("_changed >= ?")
        params.append(since - CHANGE_MARGIN_S)
    predicate = spec.open_when(columns) if spec.open_when is not None else None
    now = time.monotonic()
    if now - memory.open_read_at < spec.open_every_s:
        predicate, open_ids = None, []
    else:
        memory.open_read_at = now
        open_ids = sorted(memory.open_rowids)[:10_000]
    if predicate:
        conditions.append(f"({predicate})")
    if open_ids:
        conditions.append(f"rowid IN ({', '.join('?' * len(open_ids))})")
        params += open_ids
    if not conditions:
        return
    rows = await db.rows(
        f"SELECT * FROM ({select}) WHERE _rowid <= ? AND ({' OR '.join(conditions)}) ORDER BY _rowid",
        (upto_rowid, *params),
    )
    for begin in range(0, len(rows), spec.batch_rows):
        await _write_batch(ctx, spec, memory, rows[begin : begin + spec.batch_rows], upto_rowid)


async def _write_batch(
    ctx: ImportContext, spec: TableSpec, memory: TableMemory, rows: list[Row], known_rowid: int
) -> None:
    report = ctx.report.table(spec.name)
    report.read += len(rows)
    fresh = rows
    if spec.mutable:
        fresh = [r for r in rows if memory.digests.get(int(r["_rowid"])) != _digest(r)]
    if spec.prepare is not None and fresh:
        fresh = await spec.prepare(ctx, fresh)
    last_rowid = max(int(r["_rowid"]) for r in rows)
    changed = [c for r in rows if (c := as_float(r.get("_changed"))) is not None]
    if not fresh and last_rowid <= known_rowid:
        return  # nothing changed and the watermark stays: no transaction at all
    for attempt in range(1, RETRIES + 1):
        try:
            async with ctx.batch(spec.source, spec.table) as b:
                b.backlog = len(rows) >= spec.batch_rows
                written = await spec.write(ctx, b, fresh) if fresh else 0
                b.mark.last_rowid = max(b.mark.last_rowid, last_rowid)
                if changed:
                    b.mark.last_changed = max(b.mark.last_changed or 0.0, *changed)
                b.mark.rows_imported += len(fresh)
            break
        except DBAPIError as exc:
            if attempt == RETRIES or not _transient(exc):
                raise
            await asyncio.sleep(0.05 * attempt)  # a concurrent writer won: the batch runs again
    report.written += written
    if spec.mutable:
        for r in fresh:
            rowid = int(r["_rowid"])
            memory.digests[rowid] = _digest(r)
            if r.get("_open"):
                memory.open_rowids.add(rowid)
            else:
                memory.open_rowids.discard(rowid)
    if ctx.progress is not None:
        ctx.progress(spec.name, len(rows))
