"""A legacy state file attached, read-only, to one of our SQLite connections (the bulk path).

On a SQLite target a batch of photometry rows that needs no Python (a known source, a
registered image, clean numbers) is copied by one ``INSERT ... SELECT`` from the legacy
file attached to the import's connection: no row becomes a Python object. The file is
attached with the URI ``mode=ro`` (the engine opens SQLite connections with URI filenames
on, :mod:`dsa110.db.engine`), so this connection cannot write to it either, and the
attachment is checked in ``PRAGMA database_list`` before anything is read.

The legacy rows are read inside our write transaction, so that transaction holds a read
snapshot of the legacy file until it commits. That is harmless in WAL mode (the
pipeline's writers never wait for a reader), so only WAL files are attached; a file in
rollback-journal mode, where our read lock would hold its writer back, keeps the
row-by-row path, whose reads are short and separate (:mod:`dsa110.legacy.files`).

ATTACH and DETACH cannot run inside a transaction: they run around the batch's.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from dsa110.legacy.files import LegacyFileError, file_error, read_only_uri

SCHEMA: Final = "legacy_file"
"""The schema name the attached file's tables are read under (``legacy_file.photometry``)."""


def _same_file(listed: str, path: Path) -> bool:
    try:
        return os.path.samefile(listed, path)
    except OSError:
        return False


BULK_CACHE_KIB: Final = 1 << 20
"""The bulk connection's page cache while attached (1 GiB, allocated as used): a 10^7-row
import touches the (source, ...) measurement indexes all over, ~350 MB, every batch.
Measured on a 5*10^6-row table, 50k-row batches: 17 % less CPU, 30 % less wall time than
the engine's 64 MiB (bench.legacy_import)."""


@asynccontextmanager
async def attached(conn: AsyncConnection, path: Path, *, cache_kib: int = 0) -> AsyncIterator[None]:
    """Attach ``path`` read-only as :data:`SCHEMA` on ``conn`` (outside any transaction),
    with a ``cache_kib`` page cache meanwhile if given (the connection's own is put back)."""
    uri = read_only_uri(path)
    cache = int((await conn.exec_driver_sql("PRAGMA cache_size")).scalar_one()) if cache_kib else 0
    try:
        await conn.exec_driver_sql(f"ATTACH DATABASE ? AS {SCHEMA}", (uri,))
    except DBAPIError as exc:
        await conn.rollback()
        raise legacy_error(path, exc) from None
    try:
        result = await conn.exec_driver_sql("PRAGMA database_list")
        listed = {str(name): str(file) for _, name, file in map(tuple, result)}
        if cache_kib:
            await conn.exec_driver_sql(f"PRAGMA main.cache_size = {-int(cache_kib)}")
        await conn.commit()  # end SQLAlchemy's autobegun (empty) transaction: batches begin their own
        if not _same_file(listed.get(SCHEMA, ""), path):
            raise LegacyFileError(path, "could not be attached read-only (SQLite URI filenames are off)")
        yield
    finally:
        if conn.in_transaction():
            await conn.rollback()
        await conn.exec_driver_sql(f"DETACH DATABASE {SCHEMA}")
        if cache_kib:
            await conn.exec_driver_sql(f"PRAGMA main.cache_size = {cache}")
            await conn.exec_driver_sql("PRAGMA shrink_memory")
        await conn.commit()


def legacy_error(path: Path, exc: DBAPIError) -> Exception:
    """A read of the attached file failed: name the file if the error is about a file at all."""
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        text = str(orig).lower()
        if any(w in text for w in ("not a database", "malformed", "corrupt", "unable to open")):
            return file_error(path, orig)
    return exc
