"""The pipeline's state files, found by name and read without disturbing their writer.

Every file is opened with the SQLite URI ``mode=ro`` (this process never writes, never
creates a missing file, never takes a write lock) and ``query_only``. Each read is one
statement in its own short read transaction, fetched completely before any conversion,
so no lock or WAL snapshot is held while rows are converted or written elsewhere; in WAL
mode the pipeline's writers never wait for us. A file that cannot be read (missing,
locked past ``LOCK_WAIT_S`` in rollback-journal mode, not a database, corrupt) raises
:class:`LegacyFileError` naming it.

``PRAGMA data_version`` tells a long-lived connection whether anyone committed since it
last looked: the follower asks it every poll and reads tables only when it changed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

LOCK_WAIT_S: Final = 10.0
"""How long a read waits for a writer's exclusive lock (rollback-journal files only)."""

ROLES: Final[dict[str, str]] = {
    "queue": "ingest.sqlite3",
    "registry": "cal_registry.sqlite3",
    "products": "products.sqlite3",
    "data_registry": "data_registry.sqlite3",
    "master": "master_sources.sqlite3",
}
"""The role of each state file (legacy-pipeline-facts section 1) and its usual name."""

_SEARCH: Final[dict[str, tuple[str, ...]]] = {
    role: (name, f"catalogs/{name}", f"state/{name}", f"state/catalogs/{name}")
    for role, name in ROLES.items()
}


class LegacyFileError(RuntimeError):
    """A legacy state file that cannot be read; the message names it and says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def locate(paths: Iterable[Path]) -> dict[str, Path]:
    """The state files among ``paths``: directories are searched, files named by role.

    A file is recognised by its usual name (``products.sqlite3``, ...) or given as
    ``role=path`` by the caller (see :func:`parse_named`). Raises
    :class:`LegacyFileError` when nothing is found.
    """
    found: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            for role, candidates in _SEARCH.items():
                for rel in candidates:
                    if (path / rel).is_file():
                        found.setdefault(role, path / rel)
                        break
            continue
        named = next((r for r, name in ROLES.items() if path.name == name), None)
        if named is None:
            raise LegacyFileError(
                path, f"not a known state file (expected one of {', '.join(ROLES.values())})"
            )
        if not path.is_file():
            raise LegacyFileError(path, "no such file")
        found[named] = path
    if not found:
        raise LegacyFileError(Path(", ".join(map(str, paths))), "no legacy state files found here")
    return found


def parse_named(value: str) -> tuple[str | None, Path]:
    """``role=path`` or a bare path (its role comes from its name)."""
    role, sep, rest = value.partition("=")
    if sep and role in ROLES:
        return role, Path(rest)
    return None, Path(value)


def file_error(path: Path, exc: sqlite3.Error, waited_s: float = LOCK_WAIT_S) -> LegacyFileError:
    """The :class:`LegacyFileError` for a failed read of ``path``, saying why in words."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return LegacyFileError(path, f"locked by its writer for more than {waited_s:g} s ({exc})")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return LegacyFileError(path, f"not a SQLite database or corrupt ({exc})")
    if "unable to open" in text:
        return LegacyFileError(path, f"cannot be opened read-only ({exc})")
    return LegacyFileError(path, f"read failed ({exc})")


@dataclass
class LegacyDb:
    """One state file, opened read-only; reads run in a worker thread, one at a time."""

    role: str
    path: Path
    lock_wait_s: float = LOCK_WAIT_S
    _conn: sqlite3.Connection | None = None
    _columns: dict[str, list[str] | None] = field(default_factory=dict)
    _schema_version: int | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if not self.path.is_file():
                raise LegacyFileError(self.path, "no such file")
            uri = read_only_uri(self.path)
            try:
                conn = sqlite3.connect(uri, uri=True, timeout=self.lock_wait_s, check_same_thread=False)
                conn.execute("PRAGMA query_only=1")
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # fails early on garbage
            except sqlite3.Error as exc:
                raise file_error(self.path, exc, self.lock_wait_s) from None
            self._conn = conn
        return self._conn

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._connect()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise file_error(self.path, exc, self.lock_wait_s) from None

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one read statement and fetch every row (its own read transaction)."""
        async with self._lock:
            return await asyncio.to_thread(self._run, sql, params)

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Like :meth:`query`, as dicts keyed by column name."""

        def run() -> list[dict[str, Any]]:
            conn = self._connect()
            try:
                cursor = conn.execute(sql, params)
                names = [d[0] for d in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            except sqlite3.Error as exc:
                raise file_error(self.path, exc, self.lock_wait_s) from None

        async with self._lock:
            return await asyncio.to_thread(run)

    async def data_version(self) -> int:
        """Changes whenever another connection commits to the file."""
        return int((await self.query("PRAGMA data_version"))[0][0])

    async def journal_mode(self) -> str:
        """``wal`` or a rollback-journal mode (``delete``, ``truncate``, ...), as the file says."""
        return str((await self.query("PRAGMA journal_mode"))[0][0]).lower()

    async def columns(self, table: str) -> list[str] | None:
        """The table's columns as the file has them (older files lack ALTER columns); None if absent."""
        version = int((await self.query("PRAGMA schema_version"))[0][0])
        if version != self._schema_version:
            self._columns.clear()
            self._schema_version = version
        if table not in self._columns:
            info = await self.query(f"PRAGMA table_info({quote_ident(table)})")
            self._columns[table] = [str(row[1]) for row in info] or None
        return self._columns[table]

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def read_only_uri(path: Path) -> str:
    """The SQLite URI that opens ``path`` read-only (never creating it)."""
    return f"file:{quote(str(path.resolve()))}?mode=ro"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
