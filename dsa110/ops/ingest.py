"""The measurement ingest path, ESE detection over the database, and candidate lifecycle.

``ingest_image_measurements`` is what the pipeline (and the GraphQL mutation) calls when an
image has been measured. In one transaction it inserts the image's measurements and folds
each into its source's running sums (``dsa110.science.variability``: O(1) per measurement
plus the +-10 d pair window read by an index range scan, and, only for a detection
back-filled before a source's first detection, one indexed ``min()`` for the new-source
state), then optionally runs ESE detection for the touched sources. ``detect_ese`` runs
the same detection on demand.

Detection reads each target's light curve, normalises it by differential photometry
against nearby bright references (``dsa110.science.lightcurve``), runs
``dsa110.science.ese.detect_dip`` and reconciles the result with stored candidates: a dip
overlapping an open candidate updates it (an *escalation* when its significance grows by
``ESCALATION_FACTOR`` or its severity rises); a dip overlapping a candidate a person has
closed is left alone (their decision stands); anything else is a new candidate. New and
escalated candidates each write an ``alerts`` row.

Writers take the write lock before they read what they update
(``dsa110.db.writes.write_transaction``: SQLite ``BEGIN IMMEDIATE``; PostgreSQL row locks
on the touched sources, in id order), so concurrent ingests that share sources, in this
process or another, serialise instead of losing running-sum updates. A writer that cannot
get the lock within the budget is refused with ``BUSY`` and writes nothing.

``publish(channel, payload)`` is an optional async callable (the event bus); channels are
``measurements.added`` and ``ese.candidate``. It is called after the commit, so a
subscriber never sees an event for data that was rolled back.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110 import errors, telemetry
from dsa110.db.tables import alerts, ese_candidates, ese_status_changes, images, measurements, sources
from dsa110.db.writes import write_transaction
from dsa110.errors import InputError
from dsa110.science.ese import DEFAULT_PARAMS, EseDetection, EseParams, detect_dip
from dsa110.science.healpix import INDEX_ORDER, angular_separation_deg, cone_ranges
from dsa110.science.lightcurve import (
    Correction,
    PhotometryRow,
    normalised_points,
    reference_baselines,
    refine_references,
)
from dsa110.science.variability import (
    PAIR_WINDOW_DAYS,
    RunningSums,
    add_measurement,
    needs_prior_min_err,
    source_row,
    state_of_row,
    sums_from_arrays,
)

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]

MAX_ROWS_PER_INGEST = 200_000
CHUNK = 500  # bound parameters per IN (...) list; SQLite's limit is far above it
REFERENCE_RADIUS_DEG = 1.5  # legacy fov_radius_deg (legacy-pipeline-facts section 3.3)
MAX_REFERENCES = 30
MIN_REFERENCE_EPOCHS = 10
MIN_REFERENCE_SNR = 30.0
GROUP_ORDER = 6  # targets in one ~0.9 deg HEALPix cell share one reference set
ESCALATION_FACTOR = 1.5

STATUSES = ("active", "investigated", "resolved", "false_positive", "dismissed")
OPEN_STATUSES = frozenset({"active", "investigated"})
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "active": frozenset({"investigated", "false_positive", "dismissed"}),
    "investigated": frozenset({"resolved", "false_positive", "dismissed"}),
    "resolved": frozenset(),
    "false_positive": frozenset(),
    "dismissed": frozenset(),
}


class IngestError(InputError):
    """Measurements refused as a whole (nothing was written); the message says why."""


class NotFoundError(errors.NotFoundError):
    """A referenced image, source or candidate does not exist."""


class CandidateStatusError(InputError):
    """A status change the lifecycle does not allow."""


@dataclass(frozen=True)
class MeasurementIn:
    """One measurement of one source on the image being ingested."""

    source_pk: int
    peak_flux_jy: float
    peak_flux_err_jy: float
    mjd: float | None = None  # default: the image's mid_mjd
    ra_deg: float | None = None  # default: the source's position
    dec_deg: float | None = None
    int_flux_jy: float | None = None
    int_flux_err_jy: float | None = None
    local_rms_jy: float | None = None
    snr: float | None = None
    forced: bool = True


@dataclass(frozen=True)
class DetectionResult:
    n_sources: int
    new_candidate_pks: tuple[int, ...] = ()
    escalated_candidate_pks: tuple[int, ...] = ()
    updated_candidate_pks: tuple[int, ...] = ()
    alert_pks: tuple[int, ...] = ()


@dataclass(frozen=True)
class IngestResult:
    image_pk: int
    n_measurements: int
    source_pks: tuple[int, ...]
    detection: DetectionResult | None = None


@dataclass(frozen=True)
class NormalisedLightCurve:
    """One source's points in time order, raw and normalised (lightcurve section 3.3)."""

    source_pk: int
    measurement_pks: tuple[int, ...]
    image_pks: tuple[int, ...]
    mjd: tuple[float, ...]
    flux_jy: tuple[float, ...]
    flux_err_jy: tuple[float, ...]
    norm_flux_jy: tuple[float, ...]
    norm_flux_err_jy: tuple[float, ...]
    corrected: tuple[bool, ...]
    n_references: int = 0
    reference_pks: tuple[int, ...] = field(default_factory=tuple)


# --- input validation -------------------------------------------------------------------

_FLOAT_FIELDS = ("mjd", "ra_deg", "dec_deg", "int_flux_jy", "int_flux_err_jy", "local_rms_jy", "snr")


def _as_float(value: Any, name: str, index: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IngestError(f"row {index}: {name} must be a number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise IngestError(f"row {index}: {name} must be finite")
    return out


def _coerce_row(raw: MeasurementIn | Mapping[str, Any], index: int) -> MeasurementIn:
    if isinstance(raw, MeasurementIn):
        if (
            type(raw.source_pk) is int
            and raw.source_pk > 0
            and type(raw.peak_flux_jy) is float
            and type(raw.peak_flux_err_jy) is float
            and math.isfinite(raw.peak_flux_jy)
            and math.isfinite(raw.peak_flux_err_jy)
            and raw.peak_flux_err_jy > 0
            and all(getattr(raw, name) is None for name in _FLOAT_FIELDS)
            and type(raw.forced) is bool
        ):
            return raw  # the common pipeline case, already well-formed: skip the rebuild
        data: dict[str, Any] = {k: getattr(raw, k) for k in MeasurementIn.__dataclass_fields__}
    elif isinstance(raw, Mapping):
        unknown = set(raw) - set(MeasurementIn.__dataclass_fields__)
        if unknown:
            raise IngestError(f"row {index}: unknown fields {sorted(map(str, unknown))[:5]}")
        data = dict(raw)
    else:
        raise IngestError(f"row {index}: expected a mapping or MeasurementIn, got {type(raw).__name__}")
    for required in ("source_pk", "peak_flux_jy", "peak_flux_err_jy"):
        if data.get(required) is None:
            raise IngestError(f"row {index}: {required} is required")
    pk = data["source_pk"]
    if isinstance(pk, bool) or not isinstance(pk, int) or pk <= 0:
        raise IngestError(f"row {index}: source_pk must be a positive integer")
    data["peak_flux_jy"] = _as_float(data["peak_flux_jy"], "peak_flux_jy", index)
    data["peak_flux_err_jy"] = _as_float(data["peak_flux_err_jy"], "peak_flux_err_jy", index)
    if data["peak_flux_err_jy"] <= 0:
        raise IngestError(f"row {index}: peak_flux_err_jy must be > 0")
    for name in _FLOAT_FIELDS:
        if data.get(name) is not None:
            data[name] = _as_float(data[name], name, index)
    if data.get("dec_deg") is not None and abs(data["dec_deg"]) > 90:
        raise IngestError(f"row {index}: dec_deg must be within [-90, 90]")
    if not isinstance(data.get("forced", True), bool):
        raise IngestError(f"row {index}: forced must be a boolean")
    return MeasurementIn(**data)


def _validate_rows(rows: Sequence[MeasurementIn | Mapping[str, Any]]) -> list[MeasurementIn]:
    if isinstance(rows, str | bytes) or not isinstance(rows, Sequence):
        raise IngestError("rows must be a list of measurements")
    if len(rows) > MAX_ROWS_PER_INGEST:
        raise IngestError(f"at most {MAX_ROWS_PER_INGEST} measurements per call, got {len(rows)}")
    parsed = [_coerce_row(raw, i) for i, raw in enumerate(rows)]
    seen: set[int] = set()
    for i, row in enumerate(parsed):
        if row.source_pk in seen:
            raise IngestError(f"row {i}: source_pk {row.source_pk} appears twice for this image")
        seen.add(row.source_pk)
    return parsed


def _chunks(values: Sequence[int], size: int = CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


# --- ingest -------------------------------------------------------------------------------


_SOURCE_UPDATE = (
    update(sources)
    .where(sources.c.id == bindparam("b_id"))
    .values({name: bindparam(f"b_{name}") for name in source_row(RunningSums())})
)


async def _write_sources(conn: AsyncConnection, states: Mapping[int, RunningSums]) -> None:
    if not states:
        return
    params = []
    for pk, state in states.items():
        values = {f"b_{k}": v for k, v in source_row(state).items()}
        values["b_id"] = pk
        params.append(values)
    await conn.execute(_SOURCE_UPDATE, params)


async def _prior_min_errors(conn: AsyncConnection, wanted: Sequence[tuple[int, float]]) -> dict[int, float]:
    """min(peak_flux_err_jy) of each source's stored measurements before the given epoch.

    Only a detection back-filled before a source's first detection needs this
    (``dsa110.science.newsource``); rows of one image share an epoch, so this is usually
    one index range read per chunk of such sources, and none at all for time-ordered ingest.
    """
    by_epoch: dict[float, list[int]] = defaultdict(list)
    for pk, mjd in wanted:
        by_epoch[mjd].append(pk)
    out: dict[int, float] = {}
    for mjd, pks in by_epoch.items():
        for chunk in _chunks(sorted(pks)):
            result = await conn.execute(
                select(measurements.c.source_pk, func.min(measurements.c.peak_flux_err_jy))
                .where(measurements.c.source_pk.in_(chunk), measurements.c.mjd < mjd)
                .group_by(measurements.c.source_pk)
            )
            out.update({int(pk): float(err) for pk, err in result.all()})
    return out


async def _ingest_one_image(
    conn: AsyncConnection, image_pk: int, parsed: Sequence[MeasurementIn]
) -> list[int]:
    """Write one image's validated measurements inside the caller's transaction.

    Returns the touched source pks (sorted). Raises before anything of this image is
    written when the image or a source is unknown; the caller's transaction rolls back.
    """
    image = (
        (await conn.execute(select(images.c.id, images.c.mid_mjd).where(images.c.id == image_pk)))
        .mappings()
        .first()
    )
    if image is None:
        raise NotFoundError(f"image {image_pk} does not exist")
    if not parsed:
        return []
    pks = sorted(r.source_pk for r in parsed)
    found: dict[int, Mapping[str, Any]] = {}
    for chunk in _chunks(pks):
        result = await conn.execute(
            select(sources).where(sources.c.id.in_(chunk)).order_by(sources.c.id).with_for_update()
        )
        found.update({row["id"]: row for row in result.mappings()})
    missing = [pk for pk in pks if pk not in found]
    if missing:
        raise IngestError(f"unknown source_pk {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    mid_mjd = float(image["mid_mjd"])
    when = {r.source_pk: (r.mjd if r.mjd is not None else mid_mjd) for r in parsed}
    # Pair partners (+-PAIR_WINDOW_DAYS) stored before this image: one range scan per chunk.
    lo, hi = min(when.values()) - PAIR_WINDOW_DAYS, max(when.values()) + PAIR_WINDOW_DAYS
    partners: dict[int, list[tuple[float, float, float]]] = defaultdict(list)
    for chunk in _chunks(pks):
        result = await conn.execute(
            select(
                measurements.c.source_pk,
                measurements.c.mjd,
                measurements.c.peak_flux_jy,
                measurements.c.peak_flux_err_jy,
            ).where(measurements.c.source_pk.in_(chunk), measurements.c.mjd.between(lo, hi))
        )
        for spk, mjd, flux, err in result.all():
            partners[spk].append((mjd, flux, err))
    states = {pk: state_of_row(found[pk]) for pk in pks}
    prior = await _prior_min_errors(
        conn,
        [
            (r.source_pk, when[r.source_pk])
            for r in parsed
            if needs_prior_min_err(states[r.source_pk], r.peak_flux_jy, r.peak_flux_err_jy, when[r.source_pk])
        ],
    )
    try:
        await conn.execute(
            insert(measurements),
            [
                {
                    "source_pk": r.source_pk,
                    "image_pk": image_pk,
                    "mjd": when[r.source_pk],
                    "ra_deg": r.ra_deg if r.ra_deg is not None else found[r.source_pk]["ra_deg"],
                    "dec_deg": r.dec_deg if r.dec_deg is not None else found[r.source_pk]["dec_deg"],
                    "peak_flux_jy": r.peak_flux_jy,
                    "peak_flux_err_jy": r.peak_flux_err_jy,
                    "int_flux_jy": r.int_flux_jy,
                    "int_flux_err_jy": r.int_flux_err_jy,
                    "local_rms_jy": r.local_rms_jy,
                    "snr": r.snr,
                    "forced": r.forced,
                }
                for r in parsed
            ],
        )
    except IntegrityError:
        # The (source_pk, image_pk) unique constraint: checked by the database, not a query.
        raise IngestError(f"some of these sources already have a measurement on image {image_pk}") from None
    for r in parsed:
        t = when[r.source_pk]
        nb = [(f, e) for (m, f, e) in partners.get(r.source_pk, ()) if abs(m - t) <= PAIR_WINDOW_DAYS]
        states[r.source_pk] = add_measurement(
            states[r.source_pk], r.peak_flux_jy, r.peak_flux_err_jy, t, nb, prior.get(r.source_pk)
        )
    await _write_sources(conn, states)
    await conn.execute(
        update(images)
        .where(images.c.id == image_pk)
        .values(n_measurements=func.coalesce(images.c.n_measurements, 0) + len(parsed))
    )
    return pks


async def ingest_image_measurements(
    engine: AsyncEngine,
    image_pk: int,
    rows: Sequence[MeasurementIn | Mapping[str, Any]],
    *,
    publish: Publish | None = None,
    detect: bool = True,
    params: EseParams = DEFAULT_PARAMS,
) -> IngestResult:
    """Add an image's measurements, update their sources' metrics, optionally detect ESEs.

    All-or-nothing: any invalid row, unknown source, or a source already measured on this
    image raises :class:`IngestError` (or :class:`NotFoundError` for the image) and nothing
    is written. Returns what was written and, with ``detect``, the detection outcome.
    """
    results = await ingest_images_measurements(
        engine, [(image_pk, rows)], publish=publish, detect=detect, params=params
    )
    return results[0]


@telemetry.observed(telemetry.INGEST_LATENCY)
async def ingest_images_measurements(
    engine: AsyncEngine,
    batches: Sequence[tuple[int, Sequence[MeasurementIn | Mapping[str, Any]]]],
    *,
    publish: Publish | None = None,
    detect: bool = True,
    params: EseParams = DEFAULT_PARAMS,
) -> list[IngestResult]:
    """Several images' measurements in one transaction (a backlog, a bench, a replay).

    Same rules as :func:`ingest_image_measurements`, applied to every image in the order
    given (each image's running updates see the ones before it); all-or-nothing over the
    whole batch. One commit instead of one per image is what makes replays fast. With
    ``detect``, detection runs once, after the commit, over every touched source; its
    outcome is attached to the last result.
    """
    if isinstance(batches, str | bytes) or not isinstance(batches, Sequence):
        raise IngestError("batches must be a list of (image_pk, rows) pairs")
    parsed_batches: list[tuple[int, list[MeasurementIn]]] = []
    for item in batches:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise IngestError("each batch item must be an (image_pk, rows) pair")
        image_pk, rows = item
        if isinstance(image_pk, bool) or not isinstance(image_pk, int):
            raise IngestError("image_pk must be an integer")
        parsed_batches.append((image_pk, _validate_rows(rows)))
    if sum(len(p) for _, p in parsed_batches) > MAX_ROWS_PER_INGEST:
        raise IngestError(f"at most {MAX_ROWS_PER_INGEST} measurements per call")
    touched: list[list[int]] = []
    async with write_transaction(engine) as conn:
        for image_pk, parsed in parsed_batches:
            touched.append(await _ingest_one_image(conn, image_pk, parsed))
    telemetry.INGESTED_ROWS.inc(sum(len(parsed) for _, parsed in parsed_batches))
    if publish is not None:
        for (image_pk, parsed), pks in zip(parsed_batches, touched, strict=True):
            if pks:
                await publish(
                    "measurements.added",
                    {"image_pk": image_pk, "n_measurements": len(parsed), "source_pks": pks[:1000]},
                )
    all_pks = sorted({pk for pks in touched for pk in pks})
    detection = (
        await detect_ese(engine, all_pks, publish=publish, params=params) if detect and all_pks else None
    )
    return [
        IngestResult(
            image_pk=image_pk,
            n_measurements=len(parsed),
            source_pks=tuple(pks),
            detection=detection if i == len(parsed_batches) - 1 else None,
        )
        for i, ((image_pk, parsed), pks) in enumerate(zip(parsed_batches, touched, strict=True))
    ]


async def recompute_source_metrics(engine: AsyncEngine, source_pks: Sequence[int] | None = None) -> int:
    """Rebuild running sums and metrics from the stored measurements (the batch path)."""
    async with write_transaction(engine) as conn:
        if source_pks is None:
            source_pks = (await conn.execute(select(sources.c.id).order_by(sources.c.id))).scalars().all()
        count = 0
        for chunk in _chunks(sorted(source_pks)):
            await conn.execute(select(sources.c.id).where(sources.c.id.in_(chunk)).with_for_update())
            series: dict[int, list[tuple[float, float, float]]] = {pk: [] for pk in chunk}
            result = await conn.execute(
                select(
                    measurements.c.source_pk,
                    measurements.c.peak_flux_jy,
                    measurements.c.peak_flux_err_jy,
                    measurements.c.mjd,
                ).where(measurements.c.source_pk.in_(chunk))
            )
            for spk, flux, err, mjd in result.all():
                series[spk].append((flux, err, mjd))
            states = {}
            for pk, points in series.items():
                arr = np.asarray(points, dtype=np.float64).reshape(-1, 3)
                states[pk] = sums_from_arrays(arr[:, 0], arr[:, 1], arr[:, 2])
            await _write_sources(conn, states)
            count += len(states)
    return count


# --- light curves and references -----------------------------------------------------------


def _reference_snr_key() -> Any:
    # mean^2 * S_w / N is (mean / rms error)^2: order by single-epoch SNR without sqrt().
    return (sources.c.mean_flux_jy * sources.c.mean_flux_jy * sources.c.sum_w / sources.c.n_epochs).desc()


async def _reference_set(conn: AsyncConnection, ra_deg: float, dec_deg: float) -> list[int]:
    """Brightest steady-looking sources within ``REFERENCE_RADIUS_DEG`` (legacy section 3.3)."""
    ranges = cone_ranges(ra_deg, dec_deg, REFERENCE_RADIUS_DEG)
    in_cone = or_(*(and_(sources.c.healpix >= lo, sources.c.healpix < hi) for lo, hi in ranges))
    snr_sq = sources.c.mean_flux_jy * sources.c.mean_flux_jy * sources.c.sum_w / sources.c.n_epochs
    result = await conn.execute(
        select(sources.c.id, sources.c.ra_deg, sources.c.dec_deg)
        .where(
            in_cone,
            sources.c.n_epochs >= MIN_REFERENCE_EPOCHS,
            sources.c.mean_flux_jy > 0,
            snr_sq >= MIN_REFERENCE_SNR**2,
        )
        .order_by(_reference_snr_key())
        .limit(4 * MAX_REFERENCES)
    )
    rows = result.all()
    if not rows:
        return []
    sep = angular_separation_deg(ra_deg, dec_deg, [r[1] for r in rows], [r[2] for r in rows])
    return [int(r[0]) for r, d in zip(rows, sep.tolist(), strict=True) if d <= REFERENCE_RADIUS_DEG][
        :MAX_REFERENCES
    ]


async def _corrections_for(conn: AsyncConnection, reference_pks: Sequence[int]) -> dict[int, Correction]:
    if len(reference_pks) < 3:
        return {}
    result = await conn.execute(
        select(
            measurements.c.image_pk,
            measurements.c.source_pk,
            measurements.c.peak_flux_jy,
            measurements.c.peak_flux_err_jy,
        ).where(measurements.c.source_pk.in_(list(reference_pks)))
    )
    rows = [PhotometryRow(*r) for r in result.all()]
    _, corrections = refine_references(rows, reference_baselines(rows, reference_pks))
    return corrections


async def _light_curves(
    conn: AsyncConnection, source_pks: Sequence[int]
) -> dict[int, list[tuple[int, int, float, float, float]]]:
    curves: dict[int, list[tuple[int, int, float, float, float]]] = {pk: [] for pk in source_pks}
    result = await conn.execute(
        select(
            measurements.c.source_pk,
            measurements.c.id,
            measurements.c.image_pk,
            measurements.c.mjd,
            measurements.c.peak_flux_jy,
            measurements.c.peak_flux_err_jy,
        )
        .where(measurements.c.source_pk.in_(list(source_pks)))
        .order_by(measurements.c.source_pk, measurements.c.mjd, measurements.c.id)
    )
    for spk, mpk, ipk, mjd, flux, err in result.all():
        curves[spk].append((mpk, ipk, mjd, flux, err))
    return curves


async def _grouped_light_curves(
    conn: AsyncConnection, source_pks: Sequence[int]
) -> list[NormalisedLightCurve]:
    """Normalised light curves of ``source_pks``; one reference set per coarse sky cell."""
    result = await conn.execute(
        select(sources.c.id, sources.c.ra_deg, sources.c.dec_deg, sources.c.healpix).where(
            sources.c.id.in_(list(source_pks))
        )
    )
    cells: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for pk, ra, dec, hp in result.all():
        cells[int(hp) >> (2 * (INDEX_ORDER - GROUP_ORDER))].append((pk, ra, dec))
    out: list[NormalisedLightCurve] = []
    for members in cells.values():
        ra = float(np.mean([m[1] for m in members]))
        dec = float(np.mean([m[2] for m in members]))
        refs = await _reference_set(conn, ra, dec)
        corrections = await _corrections_for(conn, refs)
        curves = await _light_curves(conn, [m[0] for m in members])
        for pk, points in curves.items():
            if points:
                arr = np.asarray([(p[1], p[3], p[4]) for p in points], dtype=np.float64)
                f, e, ok = normalised_points(arr[:, 0].astype(np.int64), arr[:, 1], arr[:, 2], corrections)
            else:
                f, e, ok = np.empty(0), np.empty(0), np.empty(0, dtype=bool)
            out.append(
                NormalisedLightCurve(
                    source_pk=pk,
                    measurement_pks=tuple(p[0] for p in points),
                    image_pks=tuple(p[1] for p in points),
                    mjd=tuple(p[2] for p in points),
                    flux_jy=tuple(p[3] for p in points),
                    flux_err_jy=tuple(p[4] for p in points),
                    norm_flux_jy=tuple(f.tolist()),
                    norm_flux_err_jy=tuple(e.tolist()),
                    corrected=tuple(ok.tolist()),
                    n_references=len(refs),
                    reference_pks=tuple(refs),
                )
            )
    return out


async def normalised_light_curves(
    engine: AsyncEngine, source_pks: Sequence[int]
) -> dict[int, NormalisedLightCurve]:
    """Raw and differentially normalised light curves, keyed by source pk (unknown pks absent)."""
    out: dict[int, NormalisedLightCurve] = {}
    async with engine.connect() as conn:
        for chunk in _chunks(sorted(set(source_pks))):
            out.update({lc.source_pk: lc for lc in await _grouped_light_curves(conn, chunk)})
    return out


# --- detection and candidates ----------------------------------------------------------------


def severity_of(score: float) -> str:
    """Alert severity from the detector's margin over its thresholds."""
    if score >= 3.0:
        return "critical"
    if score >= 1.5:
        return "warning"
    return "info"


_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def _candidate_values(d: EseDetection) -> dict[str, Any]:
    return {
        "score": d.score,
        "significance": d.significance,
        "start_mjd": d.start_mjd,
        "end_mjd": d.end_mjd,
        "depth": d.depth,
        "baseline_flux_jy": d.baseline_flux_jy,
        "min_flux_jy": d.min_flux_jy,
        "detector_version": d.detector_version,
    }


def _alert_message(source_id: str, d: EseDetection, escalated: bool) -> str:
    what = "ESE candidate escalated" if escalated else "ESE candidate"
    return (
        f"{what}: {source_id} dipped {d.depth:.0%} below {d.baseline_flux_jy * 1e3:.1f} mJy "
        f"over MJD {d.start_mjd:.1f}-{d.end_mjd:.1f} ({d.significance:.1f} sigma, score {d.score:.2f})"
    )


async def _reconcile(
    conn: AsyncConnection,
    detections: Mapping[int, EseDetection],
    now: datetime,
) -> tuple[list[int], list[int], list[int], list[int], list[dict[str, Any]]]:
    new: list[int] = []
    escalated: list[int] = []
    updated: list[int] = []
    alert_pks: list[int] = []
    events: list[dict[str, Any]] = []
    pks = sorted(detections)
    names = dict(
        (
            await conn.execute(
                select(sources.c.id, sources.c.source_id).where(sources.c.id.in_(pks)).with_for_update()
            )
        ).all()
    )
    existing: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for row in (
        await conn.execute(
            # Candidates imported from the legacy pipeline (dsa110.legacy.candidates) are its
            # verdicts, not this detector's: they are neither updated nor escalated here.
            select(ese_candidates).where(
                ese_candidates.c.source_pk.in_(pks), ese_candidates.c.detector_version != "legacy"
            )
        )
    ).mappings():
        existing[row["source_pk"]].append(dict(row))
    for pk in pks:
        d = detections[pk]
        overlapping = [c for c in existing[pk] if c["start_mjd"] <= d.end_mjd and c["end_mjd"] >= d.start_mjd]
        if any(c["status"] not in OPEN_STATUSES for c in overlapping):
            continue  # a person closed this event; re-detection does not reopen it
        values = _candidate_values(d)
        if overlapping:
            cand = max(overlapping, key=lambda c: c["significance"])
            await conn.execute(
                update(ese_candidates)
                .where(ese_candidates.c.id == cand["id"])
                .values(**values, updated_at=now)
            )
            rises = _SEVERITY_RANK[severity_of(d.score)] > _SEVERITY_RANK[severity_of(cand["score"])]
            if d.significance >= ESCALATION_FACTOR * cand["significance"] or rises:
                escalated.append(cand["id"])
                cand_pk, kind = cand["id"], "ese_escalated"
            else:
                updated.append(cand["id"])
                continue
        else:
            result = await conn.execute(
                insert(ese_candidates)
                .values(source_pk=pk, status="active", flagged_at=now, updated_at=now, **values)
                .returning(ese_candidates.c.id)
            )
            cand_pk, kind = int(result.scalar_one()), "ese_candidate"
            new.append(cand_pk)
        result = await conn.execute(
            insert(alerts)
            .values(
                source_pk=pk,
                candidate_pk=cand_pk,
                alert_type=kind,
                severity=severity_of(d.score),
                message=_alert_message(names.get(pk, str(pk)), d, kind == "ese_escalated"),
                triggered_at=now,
            )
            .returning(alerts.c.id)
        )
        alert_pk = int(result.scalar_one())
        alert_pks.append(alert_pk)
        events.append(
            {
                "event": "escalated" if kind == "ese_escalated" else "new",
                "candidate_pk": cand_pk,
                "alert_pk": alert_pk,
                "source_pk": pk,
                "source_id": names.get(pk),
                "status": "active" if kind == "ese_candidate" else None,
                **values,
            }
        )
    return new, escalated, updated, alert_pks, events


@telemetry.observed(telemetry.DETECTION_LATENCY)
async def detect_ese(
    engine: AsyncEngine,
    source_pks: Sequence[int] | None = None,
    *,
    publish: Publish | None = None,
    params: EseParams = DEFAULT_PARAMS,
) -> DetectionResult:
    """Run ESE detection for ``source_pks`` (default: every source with enough epochs).

    Creates or updates ``ese_candidates`` and writes an alert for each new or escalated
    candidate; publishes one ``ese.candidate`` event per alert after each commit.
    """
    if source_pks is None:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(sources.c.id).where(sources.c.n_epochs >= params.min_points).order_by(sources.c.id)
            )
            targets = list(result.scalars().all())
    else:
        targets = sorted(set(source_pks))
    telemetry.DETECTION_SOURCES.inc(len(targets))
    totals: dict[str, list[int]] = {"new": [], "escalated": [], "updated": [], "alerts": []}
    for chunk in _chunks(targets):
        async with engine.connect() as conn:
            curves = await _grouped_light_curves(conn, chunk)
        detections: dict[int, EseDetection] = {}
        for lc in curves:
            if len(lc.mjd) >= params.min_points:
                found = detect_dip(lc.mjd, lc.norm_flux_jy, lc.norm_flux_err_jy, params)
                if found is not None:
                    detections[lc.source_pk] = found
        if not detections:
            continue
        now = datetime.now(UTC)
        async with write_transaction(engine) as conn:
            new, escalated, updated, alert_pks, events = await _reconcile(conn, detections, now)
        totals["new"] += new
        totals["escalated"] += escalated
        totals["updated"] += updated
        totals["alerts"] += alert_pks
        if publish is not None:
            for payload in events:
                await publish("ese.candidate", payload)
    return DetectionResult(
        n_sources=len(targets),
        new_candidate_pks=tuple(totals["new"]),
        escalated_candidate_pks=tuple(totals["escalated"]),
        updated_candidate_pks=tuple(totals["updated"]),
        alert_pks=tuple(totals["alerts"]),
    )


async def set_candidate_status(
    engine: AsyncEngine,
    candidate_pk: int,
    status: str,
    changed_by: str,
    notes: str | None = None,
    *,
    publish: Publish | None = None,
) -> dict[str, Any]:
    """Move a candidate along its lifecycle and record who, when and why.

    active -> investigated | false_positive | dismissed; investigated -> resolved |
    false_positive | dismissed; the three closing states are final. Closing a candidate
    marks its open alerts resolved. Returns the updated candidate row.
    """
    if status not in STATUSES:
        raise CandidateStatusError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    if not isinstance(changed_by, str) or not changed_by.strip():
        raise CandidateStatusError("changed_by is required")
    if len(changed_by) > 64:
        raise CandidateStatusError("changed_by must be at most 64 characters")
    if notes is not None and (not isinstance(notes, str) or len(notes) > 10_000):
        raise CandidateStatusError("notes must be text of at most 10000 characters")
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        current = (
            (
                await conn.execute(
                    select(ese_candidates).where(ese_candidates.c.id == candidate_pk).with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if current is None:
            raise NotFoundError(f"ESE candidate {candidate_pk} does not exist")
        from_status = current["status"]
        if status not in TRANSITIONS.get(from_status, frozenset()):
            allowed = ", ".join(sorted(TRANSITIONS.get(from_status, ()))) or "none (final state)"
            raise CandidateStatusError(
                f"cannot change status from {from_status} to {status}; allowed: {allowed}"
            )
        result = await conn.execute(
            update(ese_candidates)
            .where(ese_candidates.c.id == candidate_pk, ese_candidates.c.status == from_status)
            .values(status=status, updated_at=now, changed_by=changed_by, notes=notes)
        )
        if result.rowcount != 1:
            raise CandidateStatusError(f"candidate {candidate_pk} changed concurrently; retry")
        await conn.execute(
            insert(ese_status_changes).values(
                candidate_pk=candidate_pk,
                from_status=from_status,
                to_status=status,
                changed_by=changed_by,
                changed_at=now,
                notes=notes,
            )
        )
        if not TRANSITIONS[status]:
            await conn.execute(
                update(alerts)
                .where(alerts.c.candidate_pk == candidate_pk, alerts.c.resolved_at.is_(None))
                .values(resolved_at=now)
            )
        row = dict(
            (await conn.execute(select(ese_candidates).where(ese_candidates.c.id == candidate_pk)))
            .mappings()
            .one()
        )
    if publish is not None:
        await publish(
            "ese.candidate",
            {
                "event": "status_changed",
                "candidate_pk": candidate_pk,
                "source_pk": row["source_pk"],
                "from_status": from_status,
                "status": status,
                "changed_by": changed_by,
            },
        )
    return row
