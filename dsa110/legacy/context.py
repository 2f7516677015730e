"""What one import run carries: settings, the report, caches of our keys, and its transactions.

``async with ctx.batch(role, table) as b:`` is one transaction on our side for one batch
of legacy rows: it starts by locking the table's watermark (:func:`store.lock_state`),
the converters write through ``b.conn``, stage the keys they learned in ``b.found`` and
the events they owe in ``b.events``; on commit the keys join the run's caches and the
events are published, in order. On any error the transaction rolls back and neither
happens, so nothing half-imported is visible or announced.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.events.channels import Signal
from dsa110.legacy import store
from dsa110.legacy.values import Oddities

log = logging.getLogger("dsa110.legacy")

Publish = Callable[[str, dict[str, Any]], Awaitable[Any]]
Progress = Callable[[str, int], None]


@dataclass
class TableReport:
    read: int = 0
    written: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass
class ImportReport:
    """Rows per table read and written, rows skipped and why, oddities, unreadable files."""

    tables: dict[str, TableReport] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    odd: Oddities = field(default_factory=Oddities)

    def table(self, name: str) -> TableReport:
        return self.tables.setdefault(name, TableReport())

    def skip(self, name: str, reason: str, n: int = 1) -> None:
        if n:
            self.table(name).skipped[reason] += n

    @property
    def rows_read(self) -> int:
        return sum(t.read for t in self.tables.values())

    @property
    def rows_written(self) -> int:
        return sum(t.written for t in self.tables.values())

    def lines(self) -> list[str]:
        out = [f"{'table':<34} {'read':>10} {'written':>10} {'skipped':>8}"]
        for name, t in sorted(self.tables.items()):
            out.append(f"{name:<34} {t.read:>10} {t.written:>10} {sum(t.skipped.values()):>8}")
            out += [f"    skipped {n}: {reason}" for reason, n in sorted(t.skipped.items())]
        out += [f"missing table (nothing to import): {name}" for name in self.missing]
        out += [f"oddity {table}: {what} ({n})" for (table, what), n in sorted(self.odd.counts.items())]
        out += [f"error: {e}" for e in self.errors]
        return out


@dataclass
class Batch:
    conn: AsyncConnection
    mark: store.Watermark
    found: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    events: list[Signal] = field(default_factory=list)
    backlog: bool = False  # a full batch: more rows wait behind it (bulk work may be deferred)

    def emit(self, signal: Signal) -> None:
        """Publish ``signal`` (``CHANNEL.signal(payload)``) once the batch has committed."""
        self.events.append(signal)


@dataclass
class ImportContext:
    engine: AsyncEngine
    root: PurePosixPath
    path_map: tuple[tuple[str, str], ...] = ()
    publish: Publish | None = None
    progress: Progress | None = None
    read_files: bool = True
    report: ImportReport = field(default_factory=ImportReport)
    known: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    state: dict[str, Any] = field(default_factory=dict)  # per-importer scratch (e.g. a sky index)

    @property
    def odd(self) -> Oddities:
        return self.report.odd

    def local_path(self, path: str) -> str:
        """Where a legacy path is on this machine (``--path-map /stage=/mnt/stage``)."""
        for old, new in self.path_map:
            if path == old or path.startswith(old.rstrip("/") + "/"):
                return new.rstrip("/") + path[len(old.rstrip("/")) :]
        return path

    @contextlib.asynccontextmanager
    async def batch(
        self, source: str, table_name: str, conn: AsyncConnection | None = None
    ) -> AsyncIterator[Batch]:
        """The batch's transaction, on a pooled connection or on ``conn`` (the bulk path's,
        which has the legacy file attached: :mod:`dsa110.legacy.attach`)."""
        async with contextlib.AsyncExitStack() as stack:
            if conn is None:
                conn = await stack.enter_async_context(self.engine.connect())
            async with conn.begin():
                b = Batch(conn, await store.lock_state(conn, source, table_name))
                yield b
                await store.save_state(conn, source, table_name, b.mark)
        for kind, mapping in b.found.items():
            self.known[kind].update(mapping)
        if self.publish is not None:
            for channel, payload in b.events:
                try:
                    await self.publish(channel, payload)
                except Exception:  # the rows are committed; a lost event is logged, not fatal
                    log.exception("legacy import: publishing %s failed", channel)

    async def lookup(
        self, b: Batch, kind: str, table: Table, column: str, keys: Iterable[str | None]
    ) -> dict[str, int]:
        """Our pk of each natural key (group ids, paths, source names, data ids) that exists."""
        wanted = {k for k in keys if k is not None}
        out = {k: b.found[kind][k] for k in wanted if k in b.found[kind]}
        out.update({k: self.known[kind][k] for k in wanted - out.keys() if k in self.known[kind]})
        missing = sorted(wanted - out.keys())
        for start in range(0, len(missing), store.CHUNK):
            result = await b.conn.execute(
                select(table.c[column], table.c.id).where(
                    table.c[column].in_(missing[start : start + store.CHUNK])
                )
            )
            for key, pk in result.all():
                out[str(key)] = int(pk)
                b.found[kind][str(key)] = int(pk)
        return out
