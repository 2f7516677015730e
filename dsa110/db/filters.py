"""Typed filters and orderings for every list, translated to SQL WHERE/ORDER BY.

Each filter is a frozen dataclass whose fields carry units in their names; ``doc``
metadata becomes the GraphQL field description. ``conditions()`` validates the values
(ranges, finite numbers, sensible cone radii) and raises ``InputError`` with the field
name, so a bad filter is a clear client error and never a database error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, Table, func, or_, select

from dsa110.db import tables as t
from dsa110.db.enums import (
    CandidateStatus,
    EseKind,
    EsePhase,
    GroupState,
    JobState,
    JobType,
    MosaicStatus,
    OrderDirection,
    ProductStatus,
    ProductType,
)
from dsa110.db.sky import cone_condition
from dsa110.errors import InputError

MAX_CONE_RADIUS_ARCSEC = 36_000.0  # 10 deg: wider cones are scans, not searches
MAX_LIST_FILTER = 1_000


def doc(text: str, default: Any = None) -> Any:
    return field(default=default, metadata={"doc": text})


def input_name(field_name: str) -> str:
    """The name a client types for a filter field: ``ra_min_deg`` -> ``raMinDeg``.

    The same rule the GraphQL layer uses to name input fields, so every message below names
    a field that exists (``tests/graph/test_filter_errors.py`` holds them to it).
    """
    head, *rest = field_name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _finite(f: object, name: str) -> float | None:
    """The value of field ``name`` of filter ``f``, which must be a finite number if given."""
    value: float | None = getattr(f, name)
    if value is not None and not math.isfinite(value):
        raise InputError(f"`{input_name(name)}` must be a finite number", field=input_name(name))
    return value


def _range(
    conds: list[ColumnElement[bool]], column: Any, f: object, lo_name: str | None, hi_name: str | None
) -> None:
    """``column`` between the values of fields ``lo_name`` and ``hi_name`` (either may be absent)."""
    lo = _finite(f, lo_name) if lo_name is not None else None
    hi = _finite(f, hi_name) if hi_name is not None else None
    if lo is not None and hi is not None and lo > hi:
        lo_field, hi_field = input_name(lo_name or ""), input_name(hi_name or "")
        raise InputError(f"`{lo_field}` is greater than `{hi_field}`", field=lo_field)
    if lo is not None:
        conds.append(column >= lo)
    if hi is not None:
        conds.append(column <= hi)


def _times(
    conds: list[ColumnElement[bool]], column: Any, f: object, after_name: str, before_name: str
) -> None:
    """``column`` at or after field ``after_name`` and before field ``before_name``."""
    after: datetime | None = getattr(f, after_name)
    before: datetime | None = getattr(f, before_name)
    for name, value in ((after_name, after), (before_name, before)):
        if value is not None and value.tzinfo is None:
            field_name = input_name(name)
            raise InputError(f"`{field_name}` needs a timezone (use ...Z for UTC)", field=field_name)
    if after is not None:
        conds.append(column >= after)
    if before is not None:
        conds.append(column < before)


def _text_arg(f: object, name: str, limit: int = 512) -> str | None:
    """The value of text field ``name``: 1 to ``limit`` characters if given."""
    value: str | None = getattr(f, name)
    if value is not None and (not value or len(value) > limit):
        field_name = input_name(name)
        raise InputError(f"`{field_name}` must be 1 to {limit} characters", field=field_name)
    return value


def _members(conds: list[ColumnElement[bool]], column: Any, f: object, name: str) -> None:
    """``column`` among the values of list field ``name``, if given."""
    values: Sequence[Any] | None = getattr(f, name)
    if values is None:
        return
    if len(values) > MAX_LIST_FILTER:
        field_name = input_name(name)
        raise InputError(f"`{field_name}` accepts at most {MAX_LIST_FILTER} values", field=field_name)
    conds.append(column.in_([v.value if isinstance(v, Enum) else v for v in values]))


@dataclass(frozen=True)
class ConeFilter:
    """A circle on the sky: ICRS centre in degrees, radius in arcseconds."""

    ra_deg: float = doc("Right ascension of the centre (ICRS, degrees, 0-360).", 0.0)
    dec_deg: float = doc("Declination of the centre (ICRS, degrees, -90..90).", 0.0)
    radius_arcsec: float = doc("Radius in arcseconds (at most 36000).", 60.0)

    def condition(self, table: Table, ra: str = "ra_deg", dec: str = "dec_deg") -> ColumnElement[bool]:
        for name in ("ra_deg", "dec_deg", "radius_arcsec"):
            _finite(self, name)
        if not 0.0 <= self.ra_deg < 360.0:
            raise InputError("cone `raDeg` must be in [0, 360)", field="raDeg")
        if not -90.0 <= self.dec_deg <= 90.0:
            raise InputError("cone `decDeg` must be in [-90, 90]", field="decDeg")
        if not 0.0 < self.radius_arcsec <= MAX_CONE_RADIUS_ARCSEC:
            raise InputError(
                f"cone `radiusArcsec` must be in (0, {MAX_CONE_RADIUS_ARCSEC:g}]", field="radiusArcsec"
            )
        c = table.c
        return cone_condition(
            c.healpix, c[ra], c[dec], self.ra_deg, self.dec_deg, self.radius_arcsec / 3600.0
        )


@dataclass(frozen=True)
class SourceFilter:
    """Select sources by name, position, flux and variability."""

    source_ids: list[str] | None = doc("Catalog names, e.g. `NVSS J123456.7+420312`.")
    source_id_prefix: str | None = doc("Catalog names starting with this text, e.g. `NVSS J1234`.")
    ra_min_deg: float | None = doc("Lowest RA, degrees.")
    ra_max_deg: float | None = doc("Highest RA, degrees.")
    dec_min_deg: float | None = doc("Lowest declination, degrees.")
    dec_max_deg: float | None = doc("Highest declination, degrees.")
    cone: ConeFilter | None = doc("Only sources inside this cone.")
    flux_min_jy: float | None = doc("Lowest mean measured peak flux, Jy.")
    flux_max_jy: float | None = doc("Highest mean measured peak flux, Jy.")
    catalog_flux_min_jy: float | None = doc("Lowest catalog (NVSS) flux, Jy.")
    eta_min: float | None = doc("Lowest eta (weighted reduced variance).")
    v_min: float | None = doc("Lowest V (coefficient of variation).")
    chi2_nu_min: float | None = doc("Lowest reduced chi-square about the weighted mean.")
    sigma_min: float | None = doc("Lowest sigma deviation (max |F - mean| / std).")
    n_epochs_min: int | None = doc("Fewest measurements.")
    max_snr_min: float | None = doc("Lowest best signal-to-noise (max peak flux / its error).")
    new_source: bool | None = doc("Only new (true) or only not-new (false) sources (`Source.newSource`).")

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.sources.c
        conds: list[ColumnElement[bool]] = []
        _members(conds, c.source_id, self, "source_ids")
        if (prefix := _text_arg(self, "source_id_prefix")) is not None:
            conds.append(c.source_id.startswith(prefix, autoescape=True))
            # The same rows as a range, so that the unique index on source_id answers it (SQLite
            # never uses an index for its case-insensitive LIKE): under binary collation
            # (SQLite BINARY, PostgreSQL "C") every string starting with the prefix lies in
            # [prefix, prefix + U+10FFFF). This makes the prefix case-sensitive on SQLite too.
            conds.append(c.source_id >= prefix)
            conds.append(c.source_id < prefix + "\U0010ffff")
        _range(conds, c.ra_deg, self, "ra_min_deg", "ra_max_deg")
        _range(conds, c.dec_deg, self, "dec_min_deg", "dec_max_deg")
        _range(conds, c.mean_flux_jy, self, "flux_min_jy", "flux_max_jy")
        _range(conds, c.catalog_flux_jy, self, "catalog_flux_min_jy", None)
        _range(conds, c.eta, self, "eta_min", None)
        _range(conds, c.v, self, "v_min", None)
        _range(conds, c.chi2_nu, self, "chi2_nu_min", None)
        _range(conds, c.sigma_deviation, self, "sigma_min", None)
        if self.n_epochs_min is not None:
            conds.append(c.n_epochs >= self.n_epochs_min)
        _range(conds, c.max_snr, self, "max_snr_min", None)
        if self.new_source is not None:
            conds.append(c.new_source == self.new_source)
        if self.cone is not None:
            conds.append(self.cone.condition(t.sources))
        return conds


@dataclass(frozen=True)
class MeasurementFilter:
    """Select measurements by epoch and quality."""

    mjd_min: float | None = doc("Earliest epoch, MJD.")
    mjd_max: float | None = doc("Latest epoch, MJD.")
    forced: bool | None = doc("Only forced (true) or only blind (false) measurements.")
    snr_min: float | None = doc("Lowest signal-to-noise ratio.")
    source_id_contains: str | None = doc(
        "Only measurements of sources whose catalog name contains this text (ASCII letters in any case)."
    )

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.measurements.c
        conds: list[ColumnElement[bool]] = []
        _range(conds, c.mjd, self, "mjd_min", "mjd_max")
        _range(conds, c.snr, self, "snr_min", None)
        if self.forced is not None:
            conds.append(c.forced == self.forced)
        if (part := _text_arg(self, "source_id_contains", limit=200)) is not None:
            # lower() on both sides: SQLite's LIKE ignores ASCII case and PostgreSQL's does not
            s = t.sources.c
            named = func.lower(s.source_id).contains(part.lower(), autoescape=True)
            conds.append(c.source_pk.in_(select(s.id).where(named)))
        return conds


@dataclass(frozen=True)
class ImageFilter:
    """Select images by time, type, quality and position."""

    mjd_min: float | None = doc("Earliest mid-exposure epoch, MJD.")
    mjd_max: float | None = doc("Latest mid-exposure epoch, MJD.")
    created_after: datetime | None = doc("Created at or after this time.")
    created_before: datetime | None = doc("Created before this time.")
    types: list[str] | None = doc("Image types, e.g. `5min`.")
    pbcor: bool | None = doc("Primary-beam corrected or not.")
    noise_max_jy: float | None = doc("Highest image noise, Jy/beam.")
    dec_min_deg: float | None = doc("Lowest centre declination, degrees.")
    dec_max_deg: float | None = doc("Highest centre declination, degrees.")
    cone: ConeFilter | None = doc("Only images whose centre is inside this cone.")
    paths: list[str] | None = doc("Only images with these file paths.")
    ms_path_contains: str | None = doc(
        "Only images made from a Measurement Set whose path contains this text."
    )
    has_calibrator: bool | None = doc(
        "Only images of groups with (true) or without (false) a calibrator in the beam."
    )

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.images.c
        conds: list[ColumnElement[bool]] = []
        _range(conds, c.mid_mjd, self, "mjd_min", "mjd_max")
        _times(conds, c.created_at, self, "created_after", "created_before")
        _members(conds, c.type, self, "types")
        _range(conds, c.noise_jy, self, None, "noise_max_jy")
        _range(conds, c.center_dec_deg, self, "dec_min_deg", "dec_max_deg")
        if self.pbcor is not None:
            conds.append(c.pbcor == self.pbcor)
        if self.cone is not None:
            conds.append(self.cone.condition(t.images, "center_ra_deg", "center_dec_deg"))
        _members(conds, c.path, self, "paths")
        if (part := _text_arg(self, "ms_path_contains")) is not None:
            ms = t.measurement_sets.c
            conds.append(c.ms_pk.in_(select(ms.id).where(ms.path.contains(part, autoescape=True))))
        if self.has_calibrator is not None:
            g = t.groups.c
            conds.append(c.group_pk.in_(select(g.id).where(g.has_calibrator == self.has_calibrator)))
        return conds


@dataclass(frozen=True)
class GroupFilter:
    """Select observation groups by state and time."""

    states: list[GroupState] | None = doc("Queue states.")
    received_after: datetime | None = doc("First subband received at or after this time.")
    received_before: datetime | None = doc("First subband received before this time.")
    mjd_min: float | None = doc("Earliest mid-observation epoch, MJD.")
    mjd_max: float | None = doc("Latest mid-observation epoch, MJD.")
    has_calibrator: bool | None = doc("Only groups with (true) or without (false) a calibrator in the beam.")

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.groups.c
        conds: list[ColumnElement[bool]] = []
        _members(conds, c.state, self, "states")
        _times(conds, c.received_at, self, "received_after", "received_before")
        _range(conds, c.mid_mjd, self, "mjd_min", "mjd_max")
        if self.has_calibrator is not None:
            conds.append(c.has_calibrator == self.has_calibrator)
        return conds


@dataclass(frozen=True)
class MosaicFilter:
    """Select mosaics by the time window they cover."""

    mjd_min: float | None = doc("Mosaics ending at or after this epoch, MJD.")
    mjd_max: float | None = doc("Mosaics starting at or before this epoch, MJD.")
    statuses: list[MosaicStatus] | None = doc("Build states.")
    dec_min_deg: float | None = doc("Lowest centre declination, degrees.")
    dec_max_deg: float | None = doc("Highest centre declination, degrees.")

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.mosaics.c
        conds: list[ColumnElement[bool]] = []
        _finite(self, "mjd_min")
        _finite(self, "mjd_max")
        if self.mjd_min is not None:
            conds.append(c.end_mjd >= self.mjd_min)
        if self.mjd_max is not None:
            conds.append(c.start_mjd <= self.mjd_max)
        _members(conds, c.status, self, "statuses")
        _range(conds, c.center_dec_deg, self, "dec_min_deg", "dec_max_deg")
        return conds


@dataclass(frozen=True)
class JobFilter:
    """Select jobs by state, type and time."""

    states: list[JobState] | None = doc("Job states.")
    types: list[JobType] | None = doc("Job types.")
    created_after: datetime | None = doc("Created at or after this time.")
    created_before: datetime | None = doc("Created before this time.")

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.jobs.c
        conds: list[ColumnElement[bool]] = []
        _members(conds, c.state, self, "states")
        _members(conds, c.type, self, "types")
        _times(conds, c.created_at, self, "created_after", "created_before")
        return conds


@dataclass(frozen=True)
class DataProductFilter:
    """Select data products by type and lifecycle status."""

    types: list[ProductType] | None = doc("Product types.")
    statuses: list[ProductStatus] | None = doc("Lifecycle statuses.")
    created_after: datetime | None = doc("Created at or after this time.")
    created_before: datetime | None = doc("Created before this time.")

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.data_products.c
        conds: list[ColumnElement[bool]] = []
        _members(conds, c.data_type, self, "types")
        _members(conds, c.status, self, "statuses")
        _times(conds, c.created_at, self, "created_after", "created_before")
        return conds


@dataclass(frozen=True)
class EseCandidateFilter:
    """Select ESE candidates by review state, strength and time."""

    statuses: list[CandidateStatus] | None = doc("Review states (default: all).")
    phases: list[EsePhase] | None = doc("Detector phases (candidates from before ese-drw-3.0 have none).")
    kinds: list[EseKind] | None = doc("What part of the dip was seen: dip, ongoing, egress.")
    max_false_alarm: float | None = doc(
        "Highest false-alarm probability per steady source-year (0-1): sweep it to choose your own "
        "trade-off between recall and false alarms. Candidates without one (legacy) are left out."
    )
    operating_point: float | None = doc(
        "Only the candidates flagged at this false-alarm probability per steady source-year "
        "(0-1): rated at most this and not rejected by the detector since; candidates from "
        "before the calibration (legacy, unrated) are kept. `maxFalseAlarm` alone counts a "
        "candidate the detector later rejected and leaves legacy ones out."
    )
    min_score: float | None = doc("Lowest detector score.")
    min_significance: float | None = doc("Lowest significance (sigma) of the dip.")
    min_depth: float | None = doc("Shallowest fractional depth, 0-1.")
    source_ids: list[str] | None = doc("Only these sources (catalog names).")
    flagged_after: datetime | None = doc("Flagged at or after this time.")
    flagged_before: datetime | None = doc("Flagged before this time.")

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.ese_candidates.c
        conds: list[ColumnElement[bool]] = []
        _members(conds, c.status, self, "statuses")
        _members(conds, c.phase, self, "phases")
        _members(conds, c.kind, self, "kinds")
        _range(conds, c.false_alarm_probability, self, None, "max_false_alarm")
        point = _finite(self, "operating_point")
        if point is not None:
            conds.append(or_(c.phase.is_(None), c.phase != "rejected"))
            conds.append(or_(c.false_alarm_probability.is_(None), c.false_alarm_probability <= point))
        _range(conds, c.score, self, "min_score", None)
        _range(conds, c.significance, self, "min_significance", None)
        _range(conds, c.depth, self, "min_depth", None)
        _times(conds, c.flagged_at, self, "flagged_after", "flagged_before")
        if self.source_ids is not None:
            names: list[ColumnElement[bool]] = []
            _members(names, t.sources.c.source_id, self, "source_ids")
            conds.append(c.source_pk.in_(t.sources.select().with_only_columns(t.sources.c.id).where(*names)))
        return conds


@dataclass(frozen=True)
class AlertFilter:
    """Select alerts by type, severity, state and time."""

    alert_types: list[str] | None = doc("Alert types, e.g. `ese_candidate`.")
    severities: list[str] | None = doc("Severities: info, warning, critical.")
    unresolved: bool | None = doc("Only open (true) or only resolved (false) alerts.")
    triggered_after: datetime | None = doc("Triggered at or after this time.")
    triggered_before: datetime | None = doc("Triggered before this time.")

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.alerts.c
        conds: list[ColumnElement[bool]] = []
        _members(conds, c.alert_type, self, "alert_types")
        _members(conds, c.severity, self, "severities")
        _times(conds, c.triggered_at, self, "triggered_after", "triggered_before")
        if self.unresolved is not None:
            conds.append(c.resolved_at.is_(None) if self.unresolved else c.resolved_at.is_not(None))
        return conds


@dataclass(frozen=True)
class RegionFilter:
    """Select regions by image and shape."""

    image_ids: list[int] | None = doc("Only regions on these images.")
    types: list[str] | None = doc("Shapes: circle, ellipse, rectangle, polygon.")

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.regions.c
        conds: list[ColumnElement[bool]] = []
        _members(conds, c.image_pk, self, "image_ids")
        _members(conds, c.type, self, "types")
        return conds


# --- orderings -----------------------------------------------------------------------


class SourceOrderField(Enum):
    SOURCE_ID = "source_id"
    RA = "ra_deg"
    DEC = "dec_deg"
    CATALOG_FLUX = "catalog_flux_jy"
    MEAN_FLUX = "mean_flux_jy"
    ETA = "eta"
    V = "v"
    CHI2_NU = "chi2_nu"
    SIGMA_DEVIATION = "sigma_deviation"
    N_EPOCHS = "n_epochs"
    LAST_MJD = "last_mjd"
    MAX_SNR = "max_snr"


class ImageOrderField(Enum):
    MJD = "mid_mjd"
    CREATED_AT = "created_at"
    NOISE = "noise_jy"
    DEC = "center_dec_deg"


class GroupOrderField(Enum):
    GROUP_ID = "group_id"
    RECEIVED_AT = "received_at"
    UPDATED_AT = "updated_at"


class MosaicOrderField(Enum):
    START_MJD = "start_mjd"
    CREATED_AT = "created_at"
    NOISE = "noise_jy"


class MeasurementOrderField(Enum):
    """Columns a source's or an image's measurements can be sorted by (``Relation``'s
    ``reordered``: ties keep the link's own order)."""

    MJD = "mjd"
    RA = "ra_deg"
    DEC = "dec_deg"
    PEAK_FLUX = "peak_flux_jy"
    PEAK_FLUX_ERR = "peak_flux_err_jy"
    INT_FLUX = "int_flux_jy"
    INT_FLUX_ERR = "int_flux_err_jy"
    LOCAL_RMS = "local_rms_jy"
    SNR = "snr"


class JobOrderField(Enum):
    CREATED_AT = "created_at"
    STARTED_AT = "started_at"
    FINISHED_AT = "finished_at"


class DataProductOrderField(Enum):
    CREATED_AT = "created_at"
    PUBLISHED_AT = "published_at"
    DATA_ID = "data_id"


class EseCandidateOrderField(Enum):
    SCORE = "score"
    SIGNIFICANCE = "significance"
    DEPTH = "depth"
    FLAGGED_AT = "flagged_at"
    UPDATED_AT = "updated_at"


class AlertOrderField(Enum):
    TRIGGERED_AT = "triggered_at"


class RegionOrderField(Enum):
    CREATED = "id"  # ids grow with creation time, and the primary key is indexed


@dataclass(frozen=True)
class Ordering:
    """A column and a direction; ties are always broken by primary key for stable pages."""

    column: str
    direction: OrderDirection = OrderDirection.ASC

    def clauses(self, table: Table) -> list[Any]:
        col = table.c[self.column]
        pk = table.c.id
        # NULLs sort last either way. A NOT NULL column needs no NULLS clause, and leaving it
        # out lets PostgreSQL scan the column's plain index backwards for DESC (issue 11).
        if self.direction is OrderDirection.DESC:
            return [col.desc().nulls_last() if col.nullable else col.desc(), pk.desc()]
        return [col.asc().nulls_last() if col.nullable else col.asc(), pk.asc()]


# --- the audit log (read by admins only) ----------------------------------------------


@dataclass(frozen=True)
class AuditFilter:
    """Select audit-log entries by who, what, outcome and time."""

    actors: list[str] | None = doc("Who: `key:<name>`, `oidc:<subject>` or `anonymous`.")
    operations: list[str] | None = doc("Mutation fields, e.g. `setEseCandidateStatus`.")
    outcomes: list[str] | None = doc("`OK`, or an error code such as `FORBIDDEN`.")
    after: datetime | None = doc("At or after this time.")
    before: datetime | None = doc("Before this time.")

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.audit_log.c
        conds: list[ColumnElement[bool]] = []
        _members(conds, c.actor, self, "actors")
        _members(conds, c.operation, self, "operations")
        _members(conds, c.outcome, self, "outcomes")
        _times(conds, c.at, self, "after", "before")
        return conds


class AuditOrderField(Enum):
    AT = "at"
