"""Calibration QA of a Measurement Set, computed from its calibration tables.

Per table type (K delays, BP bandpass, G gains) the flagged fraction of solutions, the
mean SNR and the amplitude statistics of unflagged solutions (the legacy
``CalibrationQA`` fields). Across tables:

* ``success_rate``: unflagged over all solutions;
* ``phase_rms_deg``: the mean over antennas of the gain-phase circular scatter (G table);
* ``amp_rms``: the standard deviation of unflagged gain amplitudes (G table);
* ``overall_quality``: ``missing`` without tables, ``incomplete`` when an expected type is
  absent, else by the worst table's flagged fraction: ``good`` < 10 %, ``marginal`` < 30 %,
  ``poor`` otherwise.

Completeness compares the expected tables (K, BP, G - the pipeline's solve) with those
found, and the MS with their solutions: ``missing_antennas`` are MS antennas with no
unflagged solution in some present table; ``missing_times`` are MS integrations that no
gain solution interval covers. ``completeness`` is the fraction of (expected table x MS
antenna) pairs with an unflagged solution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from dsa110.ops.files.caltables import CalTableSummary, SpwSolutions
from dsa110.ops.files.ms import MsMetadata

EXPECTED_TYPES: Final = ("K", "BP", "G")
GOOD_FLAGGED = 0.1
MARGINAL_FLAGGED = 0.3
_FAMILY = {"K": "K", "BA": "BP", "BP": "BP", "GA": "G", "GP": "G", "G": "G", "2G": "G"}


def family(table_type: str | None) -> str | None:
    """K, BP or G: what a table type contributes to the solve."""
    return _FAMILY.get(table_type or "")


@dataclass(frozen=True)
class TableMetrics:
    table_type: str
    path: str
    flag_fraction: float
    avg_snr: float | None
    amp_mean: float | None
    amp_std: float | None
    phase_scatter_deg: float | None


def table_metrics(table: CalTableSummary) -> TableMetrics:
    amps = [a.amp_mean for a in table.per_antenna if a.amp_mean is not None]
    stds = [a.amp_std for a in table.per_antenna if a.amp_std is not None]
    phases = [a.phase_scatter_deg for a in table.per_antenna if a.phase_scatter_deg is not None]
    return TableMetrics(
        table_type=table.table_type or "?",
        path=str(table.path),
        flag_fraction=table.flagged_fraction,
        avg_snr=table.snr_mean,
        amp_mean=sum(amps) / len(amps) if amps else None,
        amp_std=sum(stds) / len(stds) if stds else None,
        phase_scatter_deg=sum(phases) / len(phases) if phases else None,
    )


@dataclass(frozen=True)
class CalibrationReport:
    tables: list[TableMetrics]
    k: TableMetrics | None
    bp: TableMetrics | None
    g: TableMetrics | None
    overall_quality: str
    success_rate: float | None
    phase_rms_deg: float | None
    amp_rms: float | None
    per_spw: list[SpwSolutions]


def newest_by_family(tables: list[CalTableSummary]) -> dict[str, CalTableSummary]:
    chosen: dict[str, CalTableSummary] = {}
    for table in sorted(tables, key=lambda t: t.modified):
        kind = family(table.table_type)
        if kind is not None:
            chosen[kind] = table
    return chosen


def calibration_report(tables: list[CalTableSummary]) -> CalibrationReport:
    chosen = newest_by_family(tables)
    metrics = {kind: table_metrics(t) for kind, t in chosen.items()}
    total = sum(s.total_solutions for t in chosen.values() for s in t.per_spw)
    flagged = sum(s.flagged_solutions for t in chosen.values() for s in t.per_spw)
    if not chosen:
        quality = "missing"
    elif any(kind not in chosen for kind in EXPECTED_TYPES):
        quality = "incomplete"
    else:
        worst = max(m.flag_fraction for m in metrics.values())
        quality = "good" if worst < GOOD_FLAGGED else "marginal" if worst < MARGINAL_FLAGGED else "poor"
    gains = chosen.get("G")
    amp_rms = None
    if gains is not None:
        stds = [a.amp_std for a in gains.per_antenna if a.amp_std is not None]
        amp_rms = (sum(s * s for s in stds) / len(stds)) ** 0.5 if stds else None
    bandpass = chosen.get("BP")
    return CalibrationReport(
        tables=list(metrics.values()),
        k=metrics.get("K"),
        bp=metrics.get("BP"),
        g=metrics.get("G"),
        overall_quality=quality,
        success_rate=1 - flagged / total if total else None,
        phase_rms_deg=metrics["G"].phase_scatter_deg if "G" in metrics else None,
        amp_rms=amp_rms,
        per_spw=bandpass.per_spw if bandpass is not None else [],
    )


@dataclass(frozen=True)
class Completeness:
    expected: list[str]
    existing: list[CalTableSummary]
    missing: list[str]
    completeness: float
    missing_antennas: list[int]
    missing_times_mjd: list[float]

    @property
    def has_issues(self) -> bool:
        return bool(self.missing or self.missing_antennas or self.missing_times_mjd)


def _covered_antennas(table: CalTableSummary) -> set[int]:
    return {a.antenna_id for a in table.per_antenna if a.n_solutions and a.flagged_fraction < 1.0}


def completeness(
    ms: MsMetadata, tables: list[CalTableSummary], solution_times: dict[str, list[tuple[float, float]]]
) -> Completeness:
    """``solution_times``: per table path, the (start, end) MJD of each gain solution interval."""
    chosen = newest_by_family(tables)
    antennas = [a.antenna_id for a in ms.antennas]
    pairs = len(EXPECTED_TYPES) * len(antennas)
    covered = sum(len(_covered_antennas(chosen[k]) & set(antennas)) for k in EXPECTED_TYPES if k in chosen)
    missing_antennas = sorted({a for t in chosen.values() for a in antennas if a not in _covered_antennas(t)})
    gains = chosen.get("G")
    missing_times: list[float] = []
    if gains is not None:
        spans = solution_times.get(str(gains.path), [])
        missing_times = [t for t in ms.times_mjd if not any(lo <= t <= hi for lo, hi in spans)]
    return Completeness(
        expected=list(EXPECTED_TYPES),
        existing=list(chosen.values()),
        missing=[k for k in EXPECTED_TYPES if k not in chosen],
        completeness=covered / pairs if pairs else 0.0,
        missing_antennas=missing_antennas,
        missing_times_mjd=missing_times,
    )
