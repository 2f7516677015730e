"""Filters and orderings for the file-backed lists: Measurement Sets, calibration tables and
QA artefacts (the same conventions as :mod:`dsa110.db.filters`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import ColumnElement, exists, select

from dsa110.db import tables as t
from dsa110.db.filters import _finite, _members, _range, _text_arg, _times, doc
from dsa110.errors import InputError

MAX_SEARCH_CHARS = 256


def _contains(column: ColumnElement[str], text: str) -> ColumnElement[bool]:
    """Case-sensitive substring match with LIKE wildcards in ``text`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"%{escaped}%", escape="\\")


@dataclass(frozen=True)
class MeasurementSetFilter:
    """Select Measurement Sets by path, processing state, time and calibration."""

    search: str | None = doc("Only paths containing this text.")
    stages: list[str] | None = doc(
        "Processing stages, e.g. `converted`, `calibrated`, `imaged`, `discovered`."
    )
    statuses: list[str] | None = doc("Statuses, e.g. `ok`, `done`, `failed`, `discovered`.")
    mjd_min: float | None = doc("Mid-time at or after this MJD.")
    mjd_max: float | None = doc("Mid-time at or before this MJD.")
    cal_applied: bool | None = doc("Only MS with (true) or without (false) calibration applied.")
    has_calibrator: bool | None = doc(
        "Only MS of groups with (true) or without (false) a calibrator in the beam."
    )
    imaged: bool | None = doc("Only MS with (true) or without (false) an image made from them.")

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.measurement_sets.c
        conds: list[ColumnElement[bool]] = []
        if self.search is not None:
            if len(self.search) > MAX_SEARCH_CHARS:
                raise InputError(f"`search` must be at most {MAX_SEARCH_CHARS} characters", field="search")
            conds.append(_contains(c.path, self.search))
        _members(conds, c.stage, self, "stages")
        _members(conds, c.status, self, "statuses")
        _range(conds, c.mid_mjd, self, "mjd_min", "mjd_max")
        if self.cal_applied is not None:
            conds.append(c.cal_applied == self.cal_applied)
        if self.has_calibrator is not None:
            g = t.groups.c
            conds.append(c.group_pk.in_(select(g.id).where(g.has_calibrator == self.has_calibrator)))
        if self.imaged is not None:
            made = exists().where(t.images.c.ms_pk == c.id)
            conds.append(made if self.imaged else ~made)
        return conds


@dataclass(frozen=True)
class CalTableFilter:
    """Select registered calibration tables by type, state and validity."""

    table_types: list[str] | None = doc("Types: K, BA, BP, GA, GP, 2G, FLUX.")
    statuses: list[str] | None = doc("Registry states: `active`, `retired`, `failed`.")
    set_name: str | None = doc("One calibration set, e.g. `cal_2025-10-24T13:00:00`.")
    valid_at_mjd: float | None = doc(
        "Only tables whose validity window covers this MJD (open ends cover all)."
    )

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.cal_tables.c
        conds: list[ColumnElement[bool]] = []
        _members(conds, c.table_type, self, "table_types")
        _members(conds, c.status, self, "statuses")
        if (set_name := _text_arg(self, "set_name", 64)) is not None:
            conds.append(c.set_name == set_name)
        if self.valid_at_mjd is not None:
            _finite(self, "valid_at_mjd")
            conds.append((c.valid_start_mjd.is_(None)) | (c.valid_start_mjd <= self.valid_at_mjd))
            conds.append((c.valid_end_mjd.is_(None)) | (c.valid_end_mjd >= self.valid_at_mjd))
        return conds


@dataclass(frozen=True)
class QaArtifactFilter:
    """Select QA artefacts by kind and time."""

    kinds: list[str] | None = doc("`plot`, `thumbnail`, `notebook`, `report`.")
    created_after: datetime | None = doc("Made at or after this time.")
    created_before: datetime | None = doc("Made before this time.")

    def conditions(self) -> list[ColumnElement[bool]]:
        c = t.qa_artifacts.c
        conds: list[ColumnElement[bool]] = []
        _members(conds, c.kind, self, "kinds")
        _times(conds, c.created_at, self, "created_after", "created_before")
        return conds


class MeasurementSetOrderField(Enum):
    MID_MJD = "mid_mjd"
    PATH = "path"


class CalTableOrderField(Enum):
    VALID_START = "valid_start_mjd"
    PATH = "path"


class QaArtifactOrderField(Enum):
    CREATED_AT = "created_at"
