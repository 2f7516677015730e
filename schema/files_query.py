"""Roots for files: Measurement Sets and calibration tables (registry lists and by path),
UVH5 subband files in a directory, and MS discovery. Paths are resolved under the data
roots; a path outside them is NOT_FOUND, a `..` or control character BAD_PATH."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import strawberry

from dsa110.auth.identity import Role
from dsa110.db.enums import OrderDirection
from dsa110.db.file_filters import (
    CalTableFilter,
    CalTableOrderField,
    MeasurementSetFilter,
    MeasurementSetOrderField,
)
from dsa110.ops import msdiscovery
from dsa110.ops.files import uvh5
from dsa110.ops.files.paths import Kind
from loaders.entities import CALTABLE, MS
from loaders.pagination import Page, PageArgs, resolve_window
from resolvers import files, lists
from resolvers.errors import BadUserInput
from schema.base import After, Connection, First, GraphInfo, connection
from schema.files import CalTable, CalTableFile, MeasurementSet, MsFile, UvhFile
from schema.inputs import _enum, _input
from schema.lists import list_root
from schema.permissions import requires

_enum(MeasurementSetOrderField, "MeasurementSetOrderField", "Columns Measurement Sets can be sorted by.")
_enum(CalTableOrderField, "CalTableOrderField", "Columns calibration tables can be sorted by.")
_input(MeasurementSetFilter, "MeasurementSetFilter")
_input(CalTableFilter, "CalTableFilter")

MAX_DISCOVERY_PATHS = 32


@strawberry.type(description="What a discovery scan found and registered.")
class MsDiscovery:
    discovered: list[str] = strawberry.field(description="Every MS found.")
    registered: list[str] = strawberry.field(description="Newly registered (status `discovered`).")
    updated: list[str] = strawberry.field(description="Already known: times and size refreshed.")
    skipped: list[str] = strawberry.field(description="Found but unreadable.")
    scanned: list[str]
    finished_at: datetime


def _uvh_page(
    found: list[str],
    subband: int | None,
    search: str | None,
    first: int | None,
    after: str | None,
    max_page: int,
) -> Page[UvhFile]:
    chosen = []
    for path in found:
        _, sb = uvh5.parse_name(path.rsplit("/", 1)[-1])
        if subband is not None and sb != subband:
            continue
        if search and search not in path:
            continue
        chosen.append(UvhFile(path=path, subband_idx=sb))
    window = resolve_window(PageArgs(first=first, after=after), len(chosen), max_page)
    items = chosen[window.start : window.stop]
    return Page(
        items=items,
        start=window.start,
        has_next=window.stop < len(chosen),
        has_previous=window.start > 0,
        total=len(chosen),
    )


@strawberry.type
class FilesQuery:
    measurement_sets = list_root(
        MS,
        MeasurementSet,
        MeasurementSetFilter,
        MeasurementSetOrderField,
        MeasurementSetOrderField.MID_MJD,
        OrderDirection.DESC,
        "Registered Measurement Sets, newest first.",
    )
    cal_tables = list_root(
        CALTABLE,
        CalTable,
        CalTableFilter,
        CalTableOrderField,
        CalTableOrderField.VALID_START,
        OrderDirection.DESC,
        "Registered calibration tables, newest validity first.",
    )

    @strawberry.field(description="A registered Measurement Set by its integer id or its exact path.")
    async def measurement_set(
        self, info: GraphInfo, ms_id: int | None = None, path: str | None = None
    ) -> MeasurementSet:
        if (ms_id is None) == (path is None):
            raise BadUserInput("give msId or path, not both")
        if ms_id is not None:
            return await lists.by_natural_key(info.context, MS, ms_id)
        real = await files.resolve(info.context, path or "", Kind.TABLE)
        return await lists.by_natural_key(info.context, MS, str(real), "path")

    @strawberry.field(description="The Measurement Set at `path` (under the data roots), read from disk.")
    async def ms_file(self, info: GraphInfo, path: str) -> MsFile:
        return MsFile(meta=await files.ms_at(info.context, path))

    @strawberry.field(description="The calibration table at `path`, read from disk.")
    async def cal_table_file(self, info: GraphInfo, path: str) -> CalTableFile:
        return CalTableFile(summary=await files.caltable_at(info.context, path))

    @strawberry.field(
        description="Calibration tables found by name under a directory (default: the MS directory)."
    )
    async def cal_table_files(
        self, info: GraphInfo, directory: str | None = None, limit: int = 200
    ) -> list[CalTableFile]:
        return [CalTableFile(summary=s) for s in await files.caltables_in(info.context, directory, limit)]

    @strawberry.field(
        description="UVH5 files under a directory (default: incoming), newest name first; headers on request."
    )
    async def uvh_files(
        self,
        info: GraphInfo,
        directory: str | None = None,
        subband: int | None = None,
        search: str | None = None,
        first: First = None,
        after: After = None,
    ) -> Connection[UvhFile]:
        found = await files.uvh5_in(info.context, directory)
        if search is not None and len(search) > 256:
            raise BadUserInput("search is at most 256 characters", field="search")
        page = _uvh_page(found, subband, search, first, after, info.context.settings.max_page_size)
        return connection(page)

    @strawberry.field(description="The UVH5 file at `path`.")
    async def uvh_file(self, info: GraphInfo, path: str) -> UvhFile:
        header = await files.uvh_at(info.context, path)
        return UvhFile(path=str(header.path), subband_idx=header.subband)


@strawberry.type
class FilesMutation:
    @strawberry.mutation(
        description="Find Measurement Sets under directories (default: the MS directory); register new ones.",
        extensions=[requires(Role.OPERATOR)],
    )
    async def discover_measurement_sets(
        self, info: GraphInfo, paths: list[str] | None = None, recursive: bool = True
    ) -> MsDiscovery:
        ctx = info.context
        if paths is not None and not 1 <= len(paths) <= MAX_DISCOVERY_PATHS:
            raise BadUserInput(f"give 1 to {MAX_DISCOVERY_PATHS} paths", field="paths")
        roots = (
            [await files.resolve(ctx, p, Kind.DIRECTORY, "paths") for p in paths]
            if paths
            else [ctx.settings.ms_dir]
        )
        existing = [r for r in roots if await asyncio.to_thread(r.is_dir)]
        found = await msdiscovery.discover(ctx.engine, existing, recursive)
        return MsDiscovery(
            discovered=found.discovered,
            registered=found.registered,
            updated=found.updated,
            skipped=found.skipped,
            scanned=[str(r) for r in existing],
            finished_at=datetime.now(UTC),
        )
