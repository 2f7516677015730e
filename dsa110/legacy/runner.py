"""Import every legacy table in dependency order, once (``import``) or continuously (``follow``).

Order: the queue (groups, subband files), Measurement Sets, calibration tables, pointing,
images, the master catalog, sources, photometry (then the metrics recompute), ESE
candidates, mosaics, jobs and batches, the data registry and its lineage, QA artifacts.
Each table refers only to tables imported before it.

Following: every ``poll_s`` the importer asks each file whether anyone committed since
its last look (``PRAGMA data_version``, no table read) and runs a pass over the tables of
the files that changed. A file that cannot be read is reported and retried at the next
poll; the other files go on being followed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.legacy import candidates, catalog, jobs, observations, photometry, products, queue
from dsa110.legacy.context import ImportContext, ImportReport, Progress, Publish
from dsa110.legacy.files import LOCK_WAIT_S, LegacyDb, LegacyFileError
from dsa110.legacy.table import TableMemory, TableSpec, import_table

log = logging.getLogger("dsa110.legacy")

SPECS: Final[tuple[TableSpec, ...]] = (
    *queue.SPECS,
    *observations.SPECS,
    *catalog.SPECS,
    *photometry.SPECS,
    *candidates.SPECS,
    *products.MOSAIC_SPECS,
    *jobs.SPECS,
    *products.SPECS,
)
DEFAULT_POLL_S: Final = 0.25


class LegacyImporter:
    """The legacy files of one pipeline, imported into one database."""

    def __init__(
        self,
        engine: AsyncEngine,
        files: Mapping[str, Path],
        *,
        root: Path | None = None,
        path_map: tuple[tuple[str, str], ...] = (),
        publish: Publish | None = None,
        progress: Progress | None = None,
        read_files: bool = True,
        lock_wait_s: float = LOCK_WAIT_S,
    ) -> None:
        self.dbs = {role: LegacyDb(role, path, lock_wait_s) for role, path in files.items()}
        if root is None:  # the pipeline runs from the directory holding its state directory
            anchor = files.get("products") or next(iter(files.values()))
            root = anchor.resolve().parent.parent
        self.ctx = ImportContext(
            engine,
            PurePosixPath(root.as_posix()),
            path_map=path_map,
            publish=publish,
            progress=progress,
            read_files=read_files,
        )
        self.memory: dict[str, TableMemory] = {spec.name: TableMemory() for spec in SPECS}
        self.versions: dict[str, int] = {}

    @property
    def report(self) -> ImportReport:
        return self.ctx.report

    async def run_pass(self, *, changed_only: bool = False) -> ImportReport:
        """One pass over every table (of the files that changed, with ``changed_only``)."""
        failed: set[str] = set()
        wanted: set[str] = set()
        for role, db in self.dbs.items():
            try:
                version = await db.data_version()
            except LegacyFileError as exc:
                self._file_failed(role, exc)
                failed.add(role)
                continue
            if not changed_only or self.versions.get(role) != version:
                wanted.add(role)
            self.versions[role] = version
        for spec in SPECS:
            source = self.dbs.get(spec.source)
            if source is None or spec.source in failed or spec.source not in wanted:
                continue
            try:
                await import_table(self.ctx, source, spec, self.memory[spec.name])
            except LegacyFileError as exc:
                self._file_failed(spec.source, exc)
                failed.add(spec.source)
                self.versions.pop(spec.source, None)  # read it all again next time
        return self.ctx.report

    def _file_failed(self, role: str, exc: LegacyFileError) -> None:
        message = str(exc)
        if message not in self.ctx.report.errors:
            self.ctx.report.errors.append(message)
        log.warning("legacy import: %s", message)
        self.dbs[role].close()

    async def follow(self, stop: asyncio.Event, poll_s: float = DEFAULT_POLL_S) -> None:
        """Import, then keep importing what changes until ``stop`` is set."""
        await self.run_pass()
        while not stop.is_set():
            try:
                async with asyncio.timeout(poll_s):  # in this task: wait_for would spawn one
                    await stop.wait()
                break
            except TimeoutError:
                pass
            started = time.monotonic()
            try:
                await self.run_pass(changed_only=True)
            except Exception:  # keep following: the next poll retries what failed
                log.exception("legacy follow: a pass failed")
            log.debug("legacy follow: pass in %.3f s", time.monotonic() - started)

    def close(self) -> None:
        for db in self.dbs.values():
            db.close()
