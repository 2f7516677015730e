"""``variability_stats`` -> sources, ``photometry`` -> measurements (legacy-pipeline-facts 1.3, 3).

Sources: a ``variability_stats`` row gives a source's name (``source_id``), position and
NVSS flux (``nvss_flux_mjy``, mJy -> ``catalog_flux_jy``); its stored metrics are not
copied (see :mod:`dsa110.legacy.metrics`). A photometry row names its source by
``source_id``; a name not seen before makes a source at that row's position. A row without
a name (the batch job's, or any row of an older file without the column) belongs to the
known source at its position (:mod:`dsa110.legacy.sky`), or to a new one named by it.

Measurements: ``peak_jyb`` (Jy/beam) and ``peak_err_jyb`` are the peak flux and its
error; the epoch is the row's ``mjd``, else its image's mid-MJD. A row without a usable
error (NULL, zero, negative, non-finite) cannot weigh into the metrics and is skipped
and counted; so is a non-finite flux or position. One measurement per (source, image):
a repeated row replaces the earlier one. A path the ``images`` table lacks becomes an
image of type ``unregistered`` (counted), timed by its rows. ``snr`` is the row's, else
peak / error. Each image given measurements publishes ``measurements.added`` as the
ingest API does.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import numpy as np
from sqlalchemy import func, select, update

from dsa110.db.norm_tables import bump_epoch
from dsa110.db.tables import images, measurements, sources
from dsa110.events import MEASUREMENTS_ADDED
from dsa110.legacy import bulk_sql, metrics, store
from dsa110.legacy.context import Batch, ImportContext
from dsa110.legacy.sky import SkyIndex
from dsa110.legacy.store import NOTHING_READ
from dsa110.legacy.table import Row, TableSpec
from dsa110.legacy.values import (
    UNIX_EPOCH_MJD,
    as_float,
    epoch_time,
    resolve_path,
    source_name_at,
    text,
)
from dsa110.science.healpix import healpix_index

STATS: Final = "products.variability_stats"
PHOT: Final = "products.photometry"
INLINE_RECOMPUTE_ROWS: Final = 5000
UNREGISTERED: Final = "unregistered"
_MEASUREMENT_COLUMNS: Final = (
    "mjd",
    "ra_deg",
    "dec_deg",
    "peak_flux_jy",
    "peak_flux_err_jy",
    "snr",
    "forced",
)


async def _sky(ctx: ImportContext, b: Batch) -> SkyIndex:
    sky = ctx.state.get("sky")
    if sky is None:
        rows = (await b.conn.execute(select(sources.c.id, sources.c.ra_deg, sources.c.dec_deg))).all()
        sky = SkyIndex([int(r[0]) for r in rows], [float(r[1]) for r in rows], [float(r[2]) for r in rows])
        ctx.state["sky"] = sky
    assert isinstance(sky, SkyIndex)
    return sky


def _position(row: Row) -> tuple[float, float] | None:
    ra, dec = as_float(row.get("ra_deg")), as_float(row.get("dec_deg"))
    if ra is None or dec is None or not -90.0 <= dec <= 90.0:
        return None
    return ra % 360.0, dec


async def _save_sources(
    ctx: ImportContext, b: Batch, wanted: dict[str, dict[str, Any]], overwrite: bool
) -> int:
    """Create (or, with ``overwrite``, update) sources by name; learn their pks."""
    if not wanted:
        return 0
    cells = healpix_index([v["ra_deg"] for v in wanted.values()], [v["dec_deg"] for v in wanted.values()])
    rows = [
        {**v, "healpix": int(cell), "source_id": name}
        for (name, v), cell in zip(wanted.items(), cells.tolist(), strict=True)
    ]
    keep = () if overwrite else ("ra_deg", "dec_deg", "healpix", "catalog_flux_jy")
    changed = await store.upsert(
        b.conn, sources, rows, ("source_id",), ("id", "source_id", "ra_deg", "dec_deg"), keep=keep
    )
    sky = await _sky(ctx, b)
    known = ctx.known["source"]
    for row in changed:
        if row["source_id"] not in known and row["source_id"] not in b.found["source"]:
            sky.add(int(row["id"]), float(row["ra_deg"]), float(row["dec_deg"]))
        b.found["source"][row["source_id"]] = int(row["id"])
    missing = [n for n in wanted if n not in b.found["source"]]
    await ctx.lookup(b, "source", sources, "source_id", missing)
    return len(changed)


async def write_stats(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    wanted: dict[str, dict[str, Any]] = {}
    for row in rows:
        name, position = text(row.get("source_id")), _position(row)
        if not name or len(name) > 64 or position is None:
            ctx.report.skip(STATS, "no source_id (or longer than 64) or no valid position")
            continue
        flux = as_float(row.get("nvss_flux_mjy"))
        wanted[name] = {
            "ra_deg": position[0],
            "dec_deg": position[1],
            "catalog_flux_jy": None if flux is None else flux / 1e3,
        }
    try:
        return await _save_sources(ctx, b, wanted, overwrite=True)
    except BaseException:
        ctx.state.pop("sky", None)  # it may hold sources this rolled-back batch created
        raise


async def _images_for(
    ctx: ImportContext, b: Batch, paths: set[str], rows: list[dict[str, Any]]
) -> dict[str, tuple[int, float]]:
    """Our pk and mid-MJD of each image path; paths the images table lacks are created."""
    out: dict[str, tuple[int, float]] = {}
    wanted = sorted(paths)
    for start in range(0, len(wanted), store.CHUNK):
        result = await b.conn.execute(
            select(images.c.path, images.c.id, images.c.mid_mjd).where(
                images.c.path.in_(wanted[start : start + store.CHUNK])
            )
        )
        out.update({p: (int(i), float(m)) for p, i, m in result.all()})
    for path in paths - out.keys():
        mine = [r for r in rows if r["path"] == path]
        epochs = [r["mjd"] if r["mjd"] is not None else r["measured_mjd"] for r in mine]
        mid = statistics.median(epochs)
        created = datetime.fromtimestamp(min(r["measured_at"] for r in mine), UTC)
        new = {
            "path": path,
            "type": UNREGISTERED,
            "created_at": created,
            "mid_mjd": mid,
            "pbcor": False,
            "n_measurements": 0,
        }
        got = await store.upsert(b.conn, images, [new], ("path",), ("id",), keep=tuple(new))
        pk = int(got[0]["id"]) if got else (await ctx.lookup(b, "image", images, "path", [path]))[path]
        out[path] = (pk, mid)
        ctx.odd.note(PHOT, "image path not in the images table: image created from its photometry")
    return out


_INF: Final = float("inf")


def _number(value: Any) -> float | None:
    """``as_float`` with a fast path for what SQLite hands back for a REAL column."""
    if type(value) is float:
        return value if -_INF < value < _INF else None
    return as_float(value)


class _Parser:
    """Row parsing with the per-batch memo of resolved paths (one image, ~10^3 rows)."""

    def __init__(self, ctx: ImportContext) -> None:
        self.ctx = ctx
        self.paths: dict[Any, str | None] = {}

    def path(self, value: Any) -> str | None:
        if value not in self.paths:
            self.paths[value] = resolve_path(value, self.ctx.root, self.ctx.odd, PHOT)
        return self.paths[value]

    def __call__(self, row: Row) -> dict[str, Any] | None:
        ctx = self.ctx
        path = self.path(row.get("image_path"))
        ra, dec = _number(row.get("ra_deg")), _number(row.get("dec_deg"))
        flux, err = _number(row.get("peak_jyb")), _number(row.get("peak_err_jyb"))
        measured = _number(row.get("measured_at"))
        if measured is None or not 0.0 < measured < 4102444800.0:
            moment = epoch_time(row.get("measured_at"), ctx.odd, PHOT, "measured_at")
            measured = None if moment is None else moment.timestamp()
        if (
            path is None
            or ra is None
            or dec is None
            or not -90.0 <= dec <= 90.0
            or flux is None
            or measured is None
        ):
            ctx.report.skip(PHOT, "no image path, valid position, finite peak_jyb or measured_at")
            return None
        if err is None or err <= 0:
            ctx.report.skip(PHOT, "no usable peak_err_jyb (NULL, zero or negative)")
            return None
        snr = _number(row.get("snr"))
        name = row.get("source_id")
        if name is not None and not isinstance(name, str):
            name = str(name)
        return {
            "rowid": row.get("_rowid", 0),
            "path": path,
            "ra": ra % 360.0,
            "dec": dec,
            "flux": flux,
            "err": err,
            "snr": snr if snr is not None else flux / err,
            "name": name if name and len(name) <= 64 else None,
            "mjd": _number(row.get("mjd")),
            "measured_at": measured,
            "measured_mjd": measured / 86400.0 + UNIX_EPOCH_MJD,
            "nvss": _number(row.get("nvss_flux_mjy")),
        }


_INSERT_COLUMNS: Final = ("source_pk", "image_pk", *_MEASUREMENT_COLUMNS)
_CONFLICT_CHUNK: Final = 20_000
Key = tuple[int, int]  # (source_pk, image_pk)


def _on_conflict(dialect: str) -> str:
    """A repeated (source, image) replaces the stored row, written only if a value differs."""
    differs = "IS DISTINCT FROM" if dialect == "postgresql" else "IS NOT"
    return (
        "ON CONFLICT (source_pk, image_pk) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in _MEASUREMENT_COLUMNS)
        + " WHERE "
        + " OR ".join(f"measurements.{c} {differs} excluded.{c}" for c in _MEASUREMENT_COLUMNS)
    )


def _insert_sql(dialect: str) -> str:
    """The measurement upsert as driver SQL: 10^7 rows skip SQLAlchemy's per-row parameter work."""
    marks = ", ".join(f"${i}" if dialect == "postgresql" else "?" for i in range(1, len(_INSERT_COLUMNS) + 1))
    return f"INSERT INTO measurements ({', '.join(_INSERT_COLUMNS)}) VALUES ({marks}) {_on_conflict(dialect)}"


async def write_photometry(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    try:
        values, parsed = await _convert(ctx, b, rows)
        _note_repeats(ctx, parsed, len(values))
        written = await _insert(b, values)
        await _after(ctx, b, list(values), len(rows))
        return written
    except BaseException:
        ctx.state.pop("sky", None)
        raise


def _note_repeats(ctx: ImportContext, parsed: int, distinct: int) -> None:
    ctx.odd.note(PHOT, "the same source twice on one image: the later row kept", parsed - distinct)


async def _convert(
    ctx: ImportContext, b: Batch, rows: list[Row]
) -> tuple[dict[Key, tuple[int, tuple[Any, ...]]], int]:
    """Rows -> ``{(source_pk, image_pk): (rowid, insert tuple)}``, the later row of a key kept;
    creates the sources and images the rows need. Also returns how many rows parsed."""
    parse = _Parser(ctx)
    parsed = [p for row in rows if (p := parse(row)) is not None]
    if not parsed:
        return {}, 0
    image_of = await _images_for(ctx, b, {p["path"] for p in parsed}, parsed)
    named = {p["name"] for p in parsed if p["name"]}
    pks = await ctx.lookup(b, "source", sources, "source_id", named)
    new_named = {
        p["name"]: {
            "ra_deg": p["ra"],
            "dec_deg": p["dec"],
            "catalog_flux_jy": None if p["nvss"] is None else p["nvss"] / 1e3,
        }
        for p in parsed
        if p["name"] and p["name"] not in pks
    }
    await _save_sources(ctx, b, new_named, overwrite=False)
    unnamed = [p for p in parsed if not p["name"]]
    if unnamed:
        ctx.odd.note(PHOT, "source_id NULL (batch job): source found by position", len(unnamed))
        sky = await _sky(ctx, b)
        near = sky.nearest(np.array([p["ra"] for p in unnamed]), np.array([p["dec"] for p in unnamed]))
        fresh: dict[str, dict[str, Any]] = {}
        for p, pk in zip(unnamed, near, strict=True):
            if pk is not None:
                p["source_pk"] = pk
            else:
                p["name"] = source_name_at(p["ra"], p["dec"])
                fresh.setdefault(p["name"], {"ra_deg": p["ra"], "dec_deg": p["dec"], "catalog_flux_jy": None})
        if fresh:
            ctx.odd.note(PHOT, "no known source at the position: new source named by it", len(fresh))
            await _save_sources(ctx, b, fresh, overwrite=False)
    found, known = b.found["source"], ctx.known["source"]
    out: dict[Key, tuple[int, tuple[Any, ...]]] = {}
    for p in parsed:
        source_pk: int = p.get("source_pk") or found.get(p["name"]) or known[p["name"]]
        image_pk, image_mjd = image_of[p["path"]]
        snr = p["snr"]
        # In _INSERT_COLUMNS order: source_pk, image_pk, mjd, ra, dec, flux, err, snr, forced.
        out[(source_pk, image_pk)] = (
            p["rowid"],
            (
                source_pk,
                image_pk,
                p["mjd"] if p["mjd"] is not None else image_mjd,
                p["ra"],
                p["dec"],
                p["flux"],
                p["err"],
                snr if math.isfinite(snr) else None,
                True,
            ),
        )
    return out, len(parsed)


async def _insert(b: Batch, values: dict[Key, tuple[int, tuple[Any, ...]]]) -> int:
    sql = _insert_sql(b.conn.dialect.name)
    rows = [v for _, v in values.values()]
    written = 0
    for start in range(0, len(rows), _CONFLICT_CHUNK):
        chunk = rows[start : start + _CONFLICT_CHUNK]
        result = await b.conn.exec_driver_sql(sql, chunk)
        written += result.rowcount if result.rowcount is not None and result.rowcount >= 0 else len(chunk)
    return written


async def _after(ctx: ImportContext, b: Batch, keys: list[Key], n_rows: int) -> None:
    """What follows the batch's measurements: metrics (now or owed), image counts, events."""
    if not keys:
        return
    touched_sources = sorted({s for s, _ in keys})
    touched_images = sorted({i for _, i in keys})
    if not b.backlog and n_rows <= INLINE_RECOMPUTE_ROWS:
        await metrics.recompute(b.conn, touched_sources)
    else:
        await metrics.mark_dirty(b.conn, touched_sources)
    for start in range(0, len(touched_images), store.CHUNK):
        chunk = touched_images[start : start + store.CHUNK]
        count = (
            select(func.count())
            .select_from(measurements)
            .where(measurements.c.image_pk == images.c.id)
            .scalar_subquery()
        )
        await b.conn.execute(update(images).where(images.c.id.in_(chunk)).values(n_measurements=count))
    per_image: dict[int, list[int]] = {}
    for source_pk, image_pk in keys:
        per_image.setdefault(image_pk, []).append(source_pk)
    for image_pk, pks_on in per_image.items():
        pks_sorted = sorted(pks_on)
        b.emit(
            MEASUREMENTS_ADDED.signal(
                {"image_pk": image_pk, "n_measurements": len(pks_sorted), "source_pks": pks_sorted[:1000]}
            )
        )
    # Upserted in place (no new id): the stored normalisation must not be trusted (norm_store).
    # Last, as ingest does it (after the sources' row locks): one lock order, no deadlock.
    await bump_epoch(b.conn)


async def _other_rowids(
    b: Batch, sql: bulk_sql.Statements, after: int, last: int, n_rows: int, clean: set[int]
) -> list[int]:
    """The range's rowids that are not clean (without evaluating the clean join again)."""
    if last - after == n_rows:  # no gaps (the usual case): the range is every rowid in it
        everything: Sequence[int] = range(after + 1, last + 1)
    else:
        everything = [int(r[0]) for r in await b.conn.exec_driver_sql(sql.rowids, (after, last))]
    return [rowid for rowid in everything if rowid not in clean]


async def write_photometry_range(
    ctx: ImportContext, b: Batch, columns: Sequence[str], after: int, last: int, n_rows: int
) -> int:
    """The bulk path (SQLite, the file attached): the rows ``after < rowid <= last``.

    Rows that need no Python (:func:`dsa110.legacy.bulk_sql.clean_rows`) are copied by one
    ``INSERT ... SELECT``; the others (no name, a new source, an unregistered or relative
    path, a value needing conversion or to be skipped) are read and converted by the row
    path, exactly as :func:`write_photometry` would. Both go in this transaction. Where a
    row of each names the same (source, image), the later row is kept, as in the row path.
    """
    try:
        sql = bulk_sql.statements(columns, _on_conflict("sqlite"))
        bounds = (after, last)
        clean = [tuple(r) for r in await b.conn.exec_driver_sql(sql.keys, bounds)]
        other: list[Row] = []
        if len(clean) < n_rows:  # read before anything is written: which rows are clean depends on it
            wanted = await _other_rowids(b, sql, after, last, n_rows, {r[0] for r in clean})
            result = await b.conn.exec_driver_sql(sql.others, (json.dumps(wanted),))
            other = [dict(r) for r in result.mappings()]
        values, parsed = await _convert(ctx, b, other)
        later: dict[Key, int] = {(s, i): rowid for rowid, s, i in clean}
        _note_repeats(ctx, parsed + len(clean), len(later.keys() | values.keys()))
        values = {k: v for k, v in values.items() if later.get(k, NOTHING_READ) < v[0]}
        # One write per (source, image), the later row's, as the row path: a repeat read writes nothing.
        passed_over = [rowid for rowid, s, i in clean if later[(s, i)] != rowid]
        passed_over += [later[k] for k in values if k in later]
        written = 0
        if passed_over:
            result = await b.conn.exec_driver_sql(sql.insert_except, (*bounds, json.dumps(passed_over)))
            written += max(result.rowcount or 0, 0)
        elif clean:
            result = await b.conn.exec_driver_sql(sql.insert, bounds)
            written += max(result.rowcount or 0, 0)
        written += await _insert(b, values)  # after the copy: where both name a key, these are later
        await _after(ctx, b, list(dict.fromkeys([*later, *values])), n_rows)
        return written
    except BaseException:
        ctx.state.pop("sky", None)
        raise


async def finish_photometry(ctx: ImportContext) -> None:
    await metrics.recompute_dirty(ctx.engine)


SPECS: Final = (
    TableSpec(
        "products",
        "variability_stats",
        write_stats,
        required=("source_id", "ra_deg", "dec_deg"),
        batch_rows=20_000,
    ),
    TableSpec(
        "products",
        "photometry",
        write_photometry,
        finish=finish_photometry,
        required=("image_path", "ra_deg", "dec_deg", "peak_jyb"),
        batch_rows=50_000,
        bulk=write_photometry_range,
        bulk_required=bulk_sql.REQUIRED,
        bulk_batch_rows=200_000,
    ),
)
