"""Reading the pipeline's files for the graph: MS, calibration tables, UVH5, QA files.

Every client-supplied path is resolved under the configured roots first
(:func:`dsa110.ops.files.paths.resolve_path`). File reads run in a worker thread, and
each file is read at most once per request: readers are per-request DataLoaders keyed by
the resolved path, batched into one thread hop per tick (many MS in one query cost one
hop, not one each). A file that is registered in the database but not on disk (or not
under the roots) reads as ``None``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dsa110.ops.files import paths
from dsa110.ops.files.caltables import (
    CalTableSummary,
    find_caltables,
    read_arrays,
    read_caltable,
    tables_next_to,
)
from dsa110.ops.files.ms import FlagStats, MsMetadata, read_flag_stats, read_ms
from dsa110.ops.files.paths import Kind
from dsa110.ops.files.uvh5 import NotUvh5, UvhHeader, list_uvh5, read_header
from dsa110.ops.files.validation import Compatibility, Registration, validate
from dsa110.science import catalogs
from dsa110.science.calibrators import Calibrator, CalibratorMatch, match_calibrators
from dsa110.science.site import local_sidereal_deg
from resolvers.context import GraphContext
from resolvers.errors import BadUserInput

log = logging.getLogger("dsa110.files")
T = TypeVar("T")
VLA_CATALOG = "vla"
MAX_MATCH_RADIUS_DEG = 10.0
MAX_TOP_N = 100


def roots(ctx: GraphContext) -> tuple[Path, ...]:
    return ctx.settings.file_roots


async def resolve(ctx: GraphContext, raw: str, kind: Kind = Kind.ANY, field: str = "path") -> Path:
    """The real path ``raw`` names under the roots (``BAD_PATH`` / ``NOT_FOUND`` otherwise)."""
    return await asyncio.to_thread(paths.resolve_path, raw, roots(ctx), kind, field)


def _quiet(read: Callable[[Path], T], kind: Kind, allowed: Sequence[Path]) -> Callable[[str], T | None]:
    """``read`` for a stored path: None when the file is missing, outside the roots or unreadable."""

    def one(raw: str) -> T | None:
        try:
            path = paths.resolve_stored(raw, allowed, kind)
        except LookupError:
            return None
        try:
            return read(path)
        except (OSError, RuntimeError, ValueError, KeyError, IndexError, NotUvh5) as exc:
            log.warning("cannot read %s: %s", path, exc)
            return None

    return one


def _file_loader(ctx: GraphContext, name: str, read: Callable[[Path], T], kind: Kind) -> Any:
    one = _quiet(read, kind, roots(ctx))

    async def batch(keys: list[str]) -> list[T | None]:
        return await asyncio.to_thread(lambda: [one(k) for k in keys])

    return ctx.loaders.custom(("file", name), batch)


def _ms_without_flags(path: Path) -> MsMetadata:
    return read_ms(path, flags=False)


async def ms_metadata(ctx: GraphContext, stored_path: str) -> MsMetadata | None:
    return await _file_loader(ctx, "ms", _ms_without_flags, Kind.TABLE).load(stored_path)  # type: ignore[no-any-return]


async def caltable_summary(ctx: GraphContext, stored_path: str) -> CalTableSummary | None:
    return await _file_loader(ctx, "caltable", read_caltable, Kind.TABLE).load(stored_path)  # type: ignore[no-any-return]


async def uvh_header(ctx: GraphContext, stored_path: str) -> UvhHeader | None:
    return await _file_loader(ctx, "uvh5", read_header, Kind.FILE).load(stored_path)  # type: ignore[no-any-return]


async def ms_flags(ctx: GraphContext, ms: MsMetadata) -> FlagStats:
    """Flag statistics (reads the FLAG column in blocks: the expensive part of an MS)."""
    from casacore import tables as ct

    def read() -> FlagStats:
        with ct.table(str(ms.path), ack=False) as main:
            return read_flag_stats(main, len(ms.antennas), len(ms.fields))

    cache: dict[Path, Any] = ctx.extras.setdefault("ms_flags", {})
    if ms.path not in cache:
        cache[ms.path] = asyncio.ensure_future(asyncio.to_thread(read))
    return await cache[ms.path]  # type: ignore[no-any-return]


async def ms_with_flags(ctx: GraphContext, ms: MsMetadata) -> MsMetadata:
    from dataclasses import replace

    return ms if ms.flags is not None else replace(ms, flags=await ms_flags(ctx, ms))


# -- path-addressed roots ----------------------------------------------------------------


async def ms_at(ctx: GraphContext, raw: str) -> MsMetadata:
    path = await resolve(ctx, raw, Kind.TABLE)
    found = await ms_metadata(ctx, str(path))
    if found is None:
        raise BadUserInput("the path is not a readable Measurement Set", code="NOT_A_MEASUREMENT_SET")
    return found


async def caltable_at(ctx: GraphContext, raw: str, field: str = "path") -> CalTableSummary:
    path = await resolve(ctx, raw, Kind.TABLE, field)
    found = await caltable_summary(ctx, str(path))
    if found is None:
        raise BadUserInput("the path is not a readable calibration table", code="NOT_A_CALTABLE", field=field)
    return found


async def uvh_at(ctx: GraphContext, raw: str) -> UvhHeader:
    path = await resolve(ctx, raw, Kind.FILE)
    found = await uvh_header(ctx, str(path))
    if found is None:
        raise BadUserInput("the path is not a UVH5 file", code="NOT_UVH5")
    return found


# -- what an MS relates to ------------------------------------------------------------------


async def caltables_next_to(ctx: GraphContext, ms: MsMetadata) -> list[CalTableSummary]:
    found = await asyncio.to_thread(tables_next_to, ms.path)
    summaries = await asyncio.gather(*(caltable_summary(ctx, str(p)) for p in found))
    return [s for s in summaries if s is not None]


async def registration(ctx: GraphContext, table_path: Path) -> Registration | None:
    row = await ctx.loaders.by_key("caltable", "path").load(str(table_path))
    if row is None:
        return None
    return Registration(
        valid_start_mjd=row.valid_start_mjd, valid_end_mjd=row.valid_end_mjd, refant=row.refant
    )


async def compatibility(
    ctx: GraphContext, ms: MsMetadata, caltable_path: str
) -> tuple[CalTableSummary, Compatibility]:
    table = await caltable_at(ctx, caltable_path, field="caltablePath")
    full = await ms_with_flags(ctx, ms)
    return table, validate(full, table, await registration(ctx, table.path))


def meridian_ra_deg(ms: MsMetadata) -> float | None:
    """The drift scan's pointing RA: the local sidereal time at the MS mid-time."""
    mid = ms.mid_mjd
    return None if mid is None else float(local_sidereal_deg([mid])[0])


async def calibrator_matches(
    ctx: GraphContext, ms: MsMetadata, radius_deg: float, top_n: int
) -> list[CalibratorMatch]:
    if not 0 < radius_deg <= MAX_MATCH_RADIUS_DEG:
        raise BadUserInput(f"radiusDeg must be in (0, {MAX_MATCH_RADIUS_DEG}]", field="radiusDeg")
    if not 1 <= top_n <= MAX_TOP_N:
        raise BadUserInput(f"topN must be between 1 and {MAX_TOP_N}", field="topN")
    ra, dec = meridian_ra_deg(ms), ms.pointing_dec_deg
    if ra is None or dec is None:
        return []
    entries = await catalogs.cone_search(ctx.engine, ra, dec, radius_deg, catalog=VLA_CATALOG, limit=1000)
    candidates = [Calibrator(e.name, e.ra_deg, e.dec_deg, e.flux_jy) for e in entries]
    return match_calibrators(ra, dec, candidates, radius_deg=radius_deg, top_n=top_n)


async def solution_arrays(ctx: GraphContext, table: CalTableSummary) -> Any:
    cache: dict[Path, Any] = ctx.extras.setdefault("cal_arrays", {})
    if table.path not in cache:
        cache[table.path] = asyncio.ensure_future(asyncio.to_thread(read_arrays, table.path))
    return await cache[table.path]


async def caltables_in(ctx: GraphContext, directory: str | None, limit: int) -> list[CalTableSummary]:
    if not 1 <= limit <= ctx.settings.max_page_size:
        raise BadUserInput(f"limit must be between 1 and {ctx.settings.max_page_size}", field="limit")
    folder = await resolve(ctx, directory, Kind.DIRECTORY, "directory") if directory else ctx.settings.ms_dir
    found = await asyncio.to_thread(lambda: find_caltables(folder, limit=limit) if folder.is_dir() else [])
    summaries = await asyncio.gather(*(caltable_summary(ctx, str(p)) for p in found))
    return [s for s in summaries if s is not None]


async def uvh5_in(ctx: GraphContext, directory: str | None) -> list[str]:
    """Paths of the UVH5 files under ``directory`` (default: incoming), newest name first."""
    folder = (
        await resolve(ctx, directory, Kind.DIRECTORY, "directory") if directory else ctx.settings.incoming_dir
    )
    found = await asyncio.to_thread(lambda: list_uvh5(folder) if folder.is_dir() else [])
    return [str(p) for p in found]
