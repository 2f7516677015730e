"""What each exported table holds: column names, types, units, UCDs and descriptions.

One ``TableSpec`` per kind of table (sources, a light curve, an image's measurements,
ESE candidates). Every writer (``dsa110.exports.stream``) and the cone search
(``dsa110.vo``) build their astropy tables from these, so a column means the same thing,
with the same unit, in every format. UCDs are IVOA UCD1+ words (checked by a test with
``astropy.io.votable.ucd.check_ucd``); units are astropy/VOUnit strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from astropy.table import Column, MaskedColumn, Table

Kind = Literal["float", "int", "bool", "str"]

Row = Sequence[Any]
"""One row: values in the order of its spec's columns (None for missing)."""

_DTYPES: Mapping[Kind, Any] = {"float": np.float64, "int": np.int64, "bool": np.bool_}


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: Kind
    description: str
    unit: str | None = None
    ucd: str | None = None
    width: int = 0
    """Characters kept in fixed-width formats (FITS) for a ``str`` column."""
    missing: Any = None
    """What None becomes where the type has no null: NaN for floats (FITS's convention), this
    for ints and strings. In CSV a float's None is an empty cell (``TableSpec.table(masked=)``)."""

    def fill(self) -> Any:
        if self.kind == "float":
            return np.nan
        if self.missing is not None:
            return self.missing
        return {"int": 0, "bool": False, "str": ""}[self.kind]


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    columns: tuple[ColumnSpec, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def only(self, names: Sequence[str]) -> TableSpec:
        """The same table restricted to ``names`` (in the spec's order)."""
        wanted = set(names)
        return replace(self, columns=tuple(c for c in self.columns if c.name in wanted))

    def retag(self, ucds: Mapping[str, str]) -> TableSpec:
        """The same columns with some UCDs replaced (the cone search's UCD1 names)."""
        return replace(self, columns=tuple(replace(c, ucd=ucds.get(c.name, c.ucd)) for c in self.columns))

    def table(
        self,
        rows: Sequence[Row],
        meta: Mapping[str, Any] | None = None,
        *,
        fixed: bool = False,
        masked: bool = False,
    ) -> Table:
        """An astropy Table of ``rows`` with units, descriptions and UCDs on its columns.

        ``fixed``: strings as fixed-width columns of each spec's ``width`` (FITS needs
        every chunk of a streamed table to have the same record layout).
        ``masked``: a float's None is a masked entry, which CSV writes as an empty cell
        (its "no value", as for a string's None), not ``nan``, which a reader would take
        for a number; elsewhere it is NaN (FITS's convention for a missing float).
        """
        table = Table(meta=dict(meta or {}))
        for i, spec in enumerate(self.columns):
            fill = spec.fill()
            values = [fill if row[i] is None else row[i] for row in rows]
            if spec.kind == "str":
                dtype: Any = f"U{max(spec.width, 1)}" if fixed else str
                data = np.array([str(v)[: spec.width] if fixed else str(v) for v in values], dtype=dtype)
            else:
                data = np.array(values, dtype=_DTYPES[spec.kind])
            meta_ = {"ucd": spec.ucd} if spec.ucd else {}
            if masked and spec.kind == "float":
                missing = np.array([row[i] is None for row in rows], dtype=bool)
                table[spec.name] = MaskedColumn(
                    data, mask=missing, unit=spec.unit, description=spec.description, meta=meta_
                )
            else:
                table[spec.name] = Column(data, unit=spec.unit, description=spec.description, meta=meta_)
        return table


def _float(name: str, description: str, unit: str | None = None, ucd: str | None = None) -> ColumnSpec:
    return ColumnSpec(name, "float", description, unit, ucd)


def _str(name: str, description: str, width: int, ucd: str | None = None) -> ColumnSpec:
    return ColumnSpec(name, "str", description, ucd=ucd, width=width)


SOURCE_ID = _str("source_id", "Catalog name of the source (NVSS)", 64, "meta.id;meta.main")
RA = _float("ra_deg", "Right ascension (ICRS)", "deg", "pos.eq.ra;meta.main")
DEC = _float("dec_deg", "Declination (ICRS)", "deg", "pos.eq.dec;meta.main")

SOURCES = TableSpec(
    "sources",
    "Radio sources monitored by the DSA-110 continuum pipeline, with their variability metrics",
    (
        SOURCE_ID,
        RA,
        DEC,
        _float("catalog_flux_jy", "Catalog (NVSS 1.4 GHz) flux density", "Jy", "phot.flux.density;em.radio"),
        ColumnSpec("n_epochs", "int", "Number of measurements", ucd="meta.number"),
        _float("mean_flux_jy", "Mean measured peak flux density", "Jy/beam", "phot.flux.density;stat.mean"),
        _float("min_flux_jy", "Lowest measured peak flux density", "Jy/beam", "phot.flux.density;stat.min"),
        _float("max_flux_jy", "Highest measured peak flux density", "Jy/beam", "phot.flux.density;stat.max"),
        _float("v", "Coefficient of variation std/mean (VAST V)", None, "src.var.index"),
        _float("eta", "Weighted reduced variance, w = 1/sigma^2 (VAST eta)", None, "src.var.index"),
        _float("chi2_nu", "Reduced chi-square about the weighted mean", None, "stat.fit.chi2"),
        _float("sigma_deviation", "max |F - mean| / std", None, "src.var;stat.max"),
        _float(
            "vs_abs_significant_max",
            "Largest two-epoch |Vs| among pairs with |Vs| >= 4.3 (VAST)",
            None,
            "src.var;stat.max",
        ),
        _float(
            "m_abs_significant_max",
            "Largest two-epoch |m| among pairs with |Vs| >= 4.3 (VAST)",
            None,
            "src.var.amplitude;stat.max",
        ),
        _float("first_mjd", "First epoch measured (UTC)", "d", "time.start"),
        _float("last_mjd", "Latest epoch measured (UTC)", "d", "time.end"),
        _float("max_snr", "Highest signal-to-noise ratio of the measurements", None, "stat.snr;stat.max"),
        ColumnSpec("new_source", "bool", "New source (VAST definition)", ucd="meta.code"),
        _float(
            "new_high_sigma",
            "First detection's flux over the earlier epochs' smallest error",
            None,
            "stat.snr",
        ),
    ),
)

LIGHT_CURVE = TableSpec(
    "light_curve",
    "A source's light curve: raw and differentially normalised peak flux density per epoch",
    (
        _float("mjd", "Epoch of the image (mid-exposure, UTC)", "d", "time.epoch;meta.main"),
        _str("time", "Epoch as ISO 8601 UTC", 32, "time.epoch"),
        _float("flux_jy", "Measured peak flux density", "Jy/beam", "phot.flux.density;em.radio"),
        _float("flux_err_jy", "Uncertainty of flux_jy", "Jy/beam", "stat.error;phot.flux.density"),
        _float(
            "norm_flux_jy",
            "Peak flux density divided by the image's ensemble correction",
            "Jy/beam",
            "phot.flux.density;arith.ratio",
        ),
        _float(
            "norm_flux_err_jy",
            "Uncertainty of norm_flux_jy (correction uncertainty propagated)",
            "Jy/beam",
            "stat.error;phot.flux.density",
        ),
        ColumnSpec(
            "corrected",
            "bool",
            "False when the image had too few references to normalise",
            ucd="meta.code.qual",
        ),
        ColumnSpec("image_id", "int", "Image the flux was measured on", ucd="meta.id"),
        ColumnSpec(
            "in_ese_window", "bool", "The epoch lies inside an ESE candidate's window", ucd="meta.code"
        ),
        ColumnSpec(
            "candidate_id", "int", "The ESE candidate whose window holds the epoch (0: none)", ucd="meta.id"
        ),
    ),
)

MEASUREMENTS = TableSpec(
    "measurements",
    "Flux measurements of the monitored sources on one image",
    (
        SOURCE_ID,
        RA,
        DEC,
        _float("mjd", "Epoch of the image (mid-exposure, UTC)", "d", "time.epoch"),
        _float("peak_flux_jy", "Peak flux density", "Jy/beam", "phot.flux.density;em.radio"),
        _float("peak_flux_err_jy", "Uncertainty of peak_flux_jy", "Jy/beam", "stat.error;phot.flux.density"),
        _float("int_flux_jy", "Integrated flux density", "Jy", "phot.flux.density;em.radio"),
        _float("int_flux_err_jy", "Uncertainty of int_flux_jy", "Jy", "stat.error;phot.flux.density"),
        _float("local_rms_jy", "Local noise around the source", "Jy/beam", "stat.stdev;phot.flux.density"),
        _float("snr", "Signal-to-noise ratio", None, "stat.snr"),
        ColumnSpec("forced", "bool", "Forced photometry at the catalog position", ucd="meta.code"),
    ),
)

ESE_CANDIDATES = TableSpec(
    "ese_candidates",
    "Extreme-scattering-event candidates found by the detector",
    (
        ColumnSpec("candidate_id", "int", "Integer key of the candidate", ucd="meta.id;meta.main"),
        replace(SOURCE_ID, ucd="meta.id"),
        replace(RA, ucd="pos.eq.ra"),
        replace(DEC, ucd="pos.eq.dec"),
        _str("status", "Review state", 16, "meta.code.status"),
        _float("score", "Detector score (higher: more ESE-like)", None, "stat.value"),
        _float("significance", "Depth of the dip over its uncertainty", None, "stat.snr"),
        _float("start_mjd", "Start of the dip (UTC)", "d", "time.start"),
        _float("end_mjd", "End of the dip (UTC)", "d", "time.end"),
        _float("duration_days", "Duration of the dip", "d", "time.duration"),
        _float("depth", "Fractional depth of the dip, 0-1", None, "src.var.amplitude"),
        _float("baseline_flux_jy", "Robust out-of-dip baseline flux density", "Jy/beam", "phot.flux.density"),
        _float("min_flux_jy", "Lowest flux density in the dip", "Jy/beam", "phot.flux.density;stat.min"),
        _str("detector_version", "Version of the detector that flagged it", 32, "meta.version"),
        _str("phase", "Detector phase: ongoing, confirmed or rejected", 16, "meta.code"),
        _str("kind", "What the detector saw: dip, ongoing or egress", 16, "meta.code.class"),
        _float(
            "false_alarm_probability",
            "False-alarm probability per steady source-year",
            None,
            "stat.probability",
        ),
        _float(
            "red_rms",
            # A fraction, no unit: 0.034 is a red-noise rms of 3.4 % of the baseline flux, the
            # normalised flux's 1. It chose a dip's live false-alarm stratum (ese_far.live_key:
            # quiet < 0.01, red, strong >= 0.045). None (CSV empty, FITS NaN): not recorded
            # (candidates from before migration 0020, legacy imports).
            "Red-noise rms as a fraction of the normalised flux (0.034 = 3.4 %)",
            None,
            "stat.stdev;src.var",
        ),
        _str("flagged_at", "When the detector flagged it (ISO 8601 UTC)", 32, "time.creation"),
        _str("updated_at", "Last change (ISO 8601 UTC)", 32, "time.processing"),
        _str("changed_by", "Who last changed its review state", 64, "meta.curation"),
        _str("notes", "Review notes (FITS keeps the first 256 characters)", 256, "meta.note"),
    ),
)

ALL_SPECS: tuple[TableSpec, ...] = (SOURCES, LIGHT_CURVE, MEASUREMENTS, ESE_CANDIDATES)
