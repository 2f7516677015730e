"""Value types read from files: MS structure and flags, calibration solutions, calibrator
matches, compatibility, calibration QA. Built from the domain's dataclasses by field name.

Byte sizes are Floats (they exceed GraphQL's 32-bit Int); times are MJD and UTC.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import strawberry

from dsa110.ops.files import calqa, caltables, ms, validation
from dsa110.science import calibrators
from dsa110.times import mjd_to_datetime

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


def from_domain(cls: type[T], obj: Any, **overrides: Any) -> T:
    """``cls`` filled from the same-named attributes of ``obj`` (a domain dataclass)."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {name: getattr(obj, name) for name in names if name not in overrides and hasattr(obj, name)}
    return cls(**values, **overrides)


def utc(mjd: float | None) -> datetime | None:
    return None if mjd is None else mjd_to_datetime(mjd)


# The domain's own dataclasses, registered as graph types in place (like the filters).
MsField = ms.FieldInfo
strawberry.type(MsField, name="MsField", description="A field and its phase centre (ICRS).")
MsSpectralWindow = ms.SpectralWindowInfo
strawberry.type(
    MsSpectralWindow, name="MsSpectralWindow", description="A spectral window: channels and band edges."
)
MsAntenna = ms.AntennaInfo
strawberry.type(MsAntenna, name="MsAntenna", description="An antenna of the array.")
AntennaSolutions = caltables.AntennaSolutions
strawberry.type(
    AntennaSolutions,
    name="AntennaSolutions",
    description="One antenna's solutions; phaseScatterDeg is the circular standard deviation of phases.",
)
TableMetrics = calqa.TableMetrics
strawberry.type(
    TableMetrics, name="TableMetrics", description="Solution statistics of one calibration table."
)


@strawberry.type(description="A flagged fraction of one antenna, field or spectral window.")
class FlaggedFraction:
    id: int = strawberry.field(description="Antenna, field or spectral-window id.")
    fraction: float


@strawberry.type(description="Flag statistics of an MS (fractions of channel x polarisation samples).")
class MsFlagging:
    total_fraction: float
    per_antenna: list[FlaggedFraction]
    per_field: list[FlaggedFraction]
    per_spw: list[FlaggedFraction]
    rfi_channels: int = strawberry.field(description="Channels flagged in more than half their samples.")


def flagging(stats: ms.FlagStats) -> MsFlagging:
    def pairs(values: dict[int, float]) -> list[FlaggedFraction]:
        return [FlaggedFraction(id=k, fraction=v) for k, v in sorted(values.items())]

    return MsFlagging(
        total_fraction=stats.total_fraction,
        per_antenna=pairs(stats.per_antenna),
        per_field=pairs(stats.per_field),
        per_spw=pairs(stats.per_spw),
        rfi_channels=stats.rfi_channels(),
    )


@strawberry.type(description="A VLA calibrator in the beam, weighted by the 4.7 m dish's Airy pattern.")
class CalibratorMatch:
    name: str
    ra_deg: float
    dec_deg: float
    flux_jy: float | None = strawberry.field(description="20 cm flux density, Jy.")
    sep_deg: float = strawberry.field(description="Separation from the pointing.")
    pb_response: float = strawberry.field(description="Primary-beam power response at that separation.")
    weighted_flux: float | None = strawberry.field(description="pbResponse x fluxJy.")
    quality: str = strawberry.field(description="excellent (pb >= 0.8), good (0.5), marginal (0.3), poor.")


@strawberry.type(description="Calibrators near a drift scan's pointing (meridian at its mid-time).")
class CalibratorMatches:
    pointing_ra_deg: float | None = strawberry.field(description="Local sidereal time at the mid-time.")
    pointing_dec_deg: float | None
    mid_mjd: float | None
    has_calibrator: bool = strawberry.field(description="The best match has pbResponse > 0.3.")
    matches: list[CalibratorMatch]


def calibrator_matches(
    ra: float | None, dec: float | None, mid: float | None, found: list[calibrators.CalibratorMatch]
) -> CalibratorMatches:
    return CalibratorMatches(
        pointing_ra_deg=ra,
        pointing_dec_deg=dec,
        mid_mjd=mid,
        has_calibrator=calibrators.has_calibrator(found),
        matches=[from_domain(CalibratorMatch, m) for m in found],
    )


@strawberry.type(description="One spectral window's solutions in a calibration table.")
class SpwSolutions:
    spw_id: int
    n_channels: int
    total_solutions: int
    flagged_solutions: int
    fraction_flagged: float
    channels_with_high_flagging: int
    avg_flagged_per_channel: float
    max_flagged_in_channel: int
    is_problematic: bool = strawberry.field(description="More than 30 % of its solutions flagged.")
    amp_median: float | None


def spw_solutions(spw: caltables.SpwSolutions) -> SpwSolutions:
    return from_domain(
        SpwSolutions, spw, fraction_flagged=spw.fraction_flagged, is_problematic=spw.is_problematic
    )


@strawberry.type(description="Whether a calibration table can be applied to an MS, with reasons.")
class CalTableCompatibility:
    compatible: bool
    issues: list[str] = strawberry.field(description="Each one makes the table inapplicable.")
    warnings: list[str]
    caltable_path: str
    ms_path: str
    ms_antennas: list[int]
    caltable_antennas: list[int]
    ms_freq_min_hz: float | None
    ms_freq_max_hz: float | None
    caltable_freq_min_hz: float | None
    caltable_freq_max_hz: float | None
    valid_start_mjd: float | None = strawberry.field(description="The validity window checked (null: open).")
    valid_end_mjd: float | None


def compatibility(
    meta: ms.MsMetadata, table: caltables.CalTableSummary, result: validation.Compatibility
) -> CalTableCompatibility:
    return CalTableCompatibility(
        compatible=result.compatible,
        issues=result.issues,
        warnings=result.warnings,
        caltable_path=str(table.path),
        ms_path=str(meta.path),
        ms_antennas=[a.antenna_id for a in meta.antennas],
        caltable_antennas=table.antennas,
        ms_freq_min_hz=meta.freq_min_hz,
        ms_freq_max_hz=meta.freq_max_hz,
        caltable_freq_min_hz=table.freq_min_hz,
        caltable_freq_max_hz=table.freq_max_hz,
        valid_start_mjd=result.valid_start_mjd,
        valid_end_mjd=result.valid_end_mjd,
    )


@strawberry.type(description="Calibration QA of an MS from its K, BP and G tables.")
class CalibrationQa:
    tables: list[TableMetrics]
    k_metrics: TableMetrics | None
    bp_metrics: TableMetrics | None
    g_metrics: TableMetrics | None
    overall_quality: str = strawberry.field(description="good, marginal, poor, incomplete or missing.")
    success_rate: float | None = strawberry.field(description="Unflagged over all solutions.")
    phase_rms_deg: float | None = strawberry.field(description="Mean gain-phase scatter over antennas.")
    amp_rms: float | None = strawberry.field(description="Scatter of gain amplitudes.")
    per_spw: list[SpwSolutions] = strawberry.field(description="From the bandpass table.")


def calibration_qa(report: calqa.CalibrationReport) -> CalibrationQa:
    return CalibrationQa(
        tables=report.tables,
        k_metrics=report.k,
        bp_metrics=report.bp,
        g_metrics=report.g,
        overall_quality=report.overall_quality,
        success_rate=report.success_rate,
        phase_rms_deg=report.phase_rms_deg,
        amp_rms=report.amp_rms,
        per_spw=[spw_solutions(s) for s in report.per_spw],
    )


@strawberry.type(description="Are the expected calibration tables there, for every antenna and time?")
class CalTableCompleteness:
    expected_types: list[str]
    existing_paths: list[str]
    missing_types: list[str]
    completeness: float = strawberry.field(description="Share of (expected table x MS antenna) solved.")
    missing_antennas: list[int]
    missing_times: list[datetime] = strawberry.field(description="MS integrations no gain solution covers.")
    has_issues: bool


def completeness(found: calqa.Completeness) -> CalTableCompleteness:
    return CalTableCompleteness(
        expected_types=found.expected,
        existing_paths=[str(t.path) for t in found.existing],
        missing_types=found.missing,
        completeness=found.completeness,
        missing_antennas=found.missing_antennas,
        missing_times=[mjd_to_datetime(m) for m in found.missing_times_mjd],
        has_issues=found.has_issues,
    )


@strawberry.type(description="A QA picture made on demand (cached), and where to fetch it.")
class QaPlot:
    filename: str
    path: str
    url: str
    kind: str = strawberry.field(description="`bandpass` (per antenna) or `spw`.")
    antenna_id: int | None
