"""QA on demand: calibration metrics and pictures of an MS, browsing, FITS and CASA tables,
thumbnails and notebooks. File work runs in worker threads; pictures are cached files."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from dsa110.ops.files import calplots, calqa, pictures
from dsa110.ops.files.browse import Entry, Listing, classify, list_directory
from dsa110.ops.files.caltables import CalTableSummary, solution_intervals
from dsa110.ops.files.casatable import CasaTableInfo, read_casa_table
from dsa110.ops.files.fitsinfo import FitsInfo, read_fits
from dsa110.ops.files.ms import MsMetadata
from dsa110.ops.files.paths import Kind
from resolvers import files
from resolvers.context import GraphContext
from resolvers.errors import BadUserInput, NotFound

BANDPASS_FILE = re.compile(r"bandpass_antenna_(\d{1,5})\.png")
MAX_LISTING_PAGE = 1000


def ms_url_path(path: Path) -> str:
    """An MS path as the legacy URLs carry it: without its leading ``/``, each segment quoted."""
    return quote(str(path).lstrip("/"), safe="/")


async def calibration_report(ctx: GraphContext, meta: MsMetadata) -> calqa.CalibrationReport:
    return calqa.calibration_report(await files.caltables_next_to(ctx, meta))


async def completeness(ctx: GraphContext, meta: MsMetadata) -> calqa.Completeness:
    tables = await files.caltables_next_to(ctx, meta)
    chosen = calqa.newest_by_family(tables)
    gains = chosen.get("G")
    spans = {str(gains.path): await asyncio.to_thread(solution_intervals, gains.path)} if gains else {}
    return calqa.completeness(meta, tables, spans)


async def bandpass_table(ctx: GraphContext, meta: MsMetadata) -> CalTableSummary | None:
    return calqa.newest_by_family(await files.caltables_next_to(ctx, meta)).get("BP")


def _fresh(target: Path, source: Path) -> bool:
    return target.is_file() and target.stat().st_mtime >= source.stat().st_mtime


async def bandpass_plots(ctx: GraphContext, meta: MsMetadata) -> list[tuple[int, Path]]:
    """One picture per antenna of the newest bandpass table, made if missing or stale."""
    table = await bandpass_table(ctx, meta)
    if table is None:
        return []
    arrays = await files.solution_arrays(ctx, table)
    folder = calplots.plot_dir(ctx.settings.qa_dir, meta.path) / "bandpass"

    def make() -> list[tuple[int, Path]]:
        made = []
        for antenna in table.antennas:
            target = folder / calplots.bandpass_name(antenna)
            if not _fresh(target, table.path):
                name = table.antenna_names.get(antenna, str(antenna))
                title = f"{table.path.name}: antenna {name} ({antenna})"
                pictures.write_atomic(target, calplots.bandpass_plot(arrays, antenna, title))
            made.append((antenna, target))
        return made

    return await asyncio.to_thread(make)


async def bandpass_plot(ctx: GraphContext, meta: MsMetadata, filename: str) -> Path:
    match = BANDPASS_FILE.fullmatch(filename)
    if match is None:
        raise BadUserInput("filename must be bandpass_antenna_<n>.png", code="BAD_PATH", field="filename")
    antenna = int(match.group(1))
    for number, path in await bandpass_plots(ctx, meta):
        if number == antenna:
            return path
    raise NotFound(f"no bandpass solutions for antenna {antenna}")


async def spw_plot(ctx: GraphContext, meta: MsMetadata) -> Path | None:
    table = await bandpass_table(ctx, meta)
    if table is None:
        return None
    arrays = await files.solution_arrays(ctx, table)

    def make() -> Path:
        key = pictures.cache_key(table.path / "table.dat", "spw")
        target = ctx.settings.cache_dir / "calplots" / f"{key}.png"
        return pictures.cached(target, lambda: calplots.spw_overview_plot(arrays, table.path.name))

    return await asyncio.to_thread(make)


def plot_url(meta: MsMetadata, filename: str | None) -> str:
    base = f"/api/qa/calibration/{ms_url_path(meta.path)}"
    return f"{base}/bandpass-plots/{filename}" if filename else f"{base}/spw-plot"


# -- browsing ---------------------------------------------------------------------------


async def listing(
    ctx: GraphContext, raw: str | None, offset: int, limit: int, kinds: list[str] | None
) -> Listing:
    if not 0 <= offset <= 10_000_000 or not 1 <= limit <= MAX_LISTING_PAGE:
        raise BadUserInput(f"offset must be >= 0 and limit between 1 and {MAX_LISTING_PAGE}", field="limit")
    folder = await files.resolve(ctx, raw, Kind.DIRECTORY) if raw else ctx.settings.qa_dir
    if not raw and not await asyncio.to_thread(folder.is_dir):
        folder = ctx.settings.data_dir.resolve()
    return await asyncio.to_thread(list_directory, folder, offset=offset, limit=limit, kinds=set(kinds or ()))


async def fits_info(ctx: GraphContext, raw: str, hdu: int) -> FitsInfo:
    path = await files.resolve(ctx, raw, Kind.FILE)
    try:
        return await asyncio.to_thread(read_fits, path, hdu)
    except IndexError as exc:
        raise BadUserInput(str(exc), field="hdu") from None
    except (OSError, ValueError, TypeError) as exc:
        raise BadUserInput(f"not a readable FITS file: {str(exc)[:200]}", code="NOT_FITS") from None


async def casa_table(ctx: GraphContext, raw: str, offset: int, rows: int) -> CasaTableInfo:
    if offset < 0 or not 0 <= rows <= 100:
        raise BadUserInput("offset must be >= 0 and rows between 0 and 100", field="rows")
    path = await files.resolve(ctx, raw, Kind.TABLE)
    try:
        return await asyncio.to_thread(read_casa_table, path, offset=offset, rows=rows)
    except RuntimeError as exc:
        raise BadUserInput(f"not a readable CASA table: {str(exc)[:200]}", code="NOT_A_TABLE") from None


def _check_thumbnail_size(size: int) -> None:
    if not 16 <= size <= pictures.MAX_THUMB:
        raise BadUserInput(f"size must be between 16 and {pictures.MAX_THUMB}", field="size")


def thumbnail_url(path: str, size: int) -> str:
    """Where the thumbnail of ``path`` is served; a size the route would refuse is refused
    here (a URL handed out must work)."""
    _check_thumbnail_size(size)
    return f"/api/qa/thumbnail?path={quote(path)}&size={size}"


async def thumbnail(ctx: GraphContext, raw: str, size: int) -> Path:
    _check_thumbnail_size(size)
    path = await files.resolve(ctx, raw, Kind.FILE)
    if path.suffix.lower() not in (".fits", ".fit", ".fts", ".png", ".jpg", ".jpeg", ".gif"):
        raise BadUserInput("thumbnails are made of FITS images and pictures", code="NOT_AN_IMAGE")
    try:
        return await asyncio.to_thread(pictures.thumbnail, path, ctx.settings.cache_dir, size)
    except (OSError, ValueError) as exc:
        raise BadUserInput(f"cannot draw this file: {str(exc)[:200]}", code="NOT_AN_IMAGE") from None


async def file_entry(ctx: GraphContext, raw: str) -> Entry:
    """A regular file under the roots, as a listing entry (for downloads)."""
    path = await files.resolve(ctx, raw, Kind.FILE)

    def stat() -> Entry:
        info = path.stat()
        return Entry(
            path.name,
            path,
            classify(path, False),
            info.st_size,
            datetime.fromtimestamp(info.st_mtime, tz=UTC),
        )

    return await asyncio.to_thread(stat)


async def thumbnail_entry(ctx: GraphContext, raw: str, size: int) -> Entry:
    made = await thumbnail(ctx, raw, size)
    info = await asyncio.to_thread(made.stat)
    return Entry(made.name, made, "image", info.st_size, datetime.fromtimestamp(info.st_mtime, tz=UTC))
