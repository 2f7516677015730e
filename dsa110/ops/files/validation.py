"""Can this calibration table be applied to this Measurement Set? Reasons, not just a yes.

Checks, each an *issue* (the table must not be applied) or a *warning* (it may be):

1. The table has solutions at all (an empty table is an issue).
2. Antennas: table antennas (``ANTENNA1``) missing from the MS (ANTENNA rows) are an
   issue; MS antennas without solutions are a warning; antennas whose every solution is
   flagged are a warning.
3. Frequencies: no overlap between the MS and table bands is an issue; bandwidths that
   differ by more than 20 % (relative to the MS) are a warning.
4. Time validity: the MS mid-time must fall in the table's validity window - the
   registered one when the registry has it (``valid_start_mjd`` / ``valid_end_mjd``, a
   missing end is open), otherwise the table's own solution span widened by 12 h on each
   side (the pipeline's bandpass validity: 24 h centred on the calibrator transit).
5. Reference antenna: each ``ANTENNA2`` reference of the solutions must exist in the MS
   (an issue otherwise); a reference antenna that is fully flagged in the MS is a warning,
   and so is one that differs from the registered ``refant``.

Checks 1-3 are the legacy ``validate-caltable`` rules; 4 and 5 are new.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dsa110.ops.files.caltables import CalTableSummary
from dsa110.ops.files.ms import MsMetadata

BANDWIDTH_WARNING = 0.2
DEFAULT_HALF_VALIDITY_DAYS = 0.5


@dataclass(frozen=True)
class Registration:
    """What the calibration registry says about the table, when it knows it."""

    valid_start_mjd: float | None = None
    valid_end_mjd: float | None = None
    refant: str | None = None


@dataclass(frozen=True)
class Compatibility:
    issues: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    valid_start_mjd: float | None = None
    valid_end_mjd: float | None = None

    @property
    def compatible(self) -> bool:
        return not self.issues


def _ids(values: set[int]) -> str:
    return ", ".join(str(v) for v in sorted(values))


def validate(
    ms: MsMetadata, table: CalTableSummary, registration: Registration | None = None
) -> Compatibility:
    issues: list[str] = []
    warnings: list[str] = []
    if table.n_rows == 0:
        issues.append("the calibration table has no solutions")
    ms_ants = {a.antenna_id for a in ms.antennas}
    cal_ants = set(table.antennas)
    if cal_ants - ms_ants:
        issues.append(f"antennas in the table but not in the MS: {_ids(cal_ants - ms_ants)}")
    if table.n_rows and ms_ants - cal_ants:
        warnings.append(f"MS antennas without solutions: {_ids(ms_ants - cal_ants)}")
    dead = {a.antenna_id for a in table.per_antenna if a.n_solutions and a.flagged_fraction >= 1.0}
    if dead:
        warnings.append(f"antennas with every solution flagged: {_ids(dead)}")
    _check_band(ms, table, issues, warnings)
    window = _check_time(ms, table, registration, issues)
    _check_refant(ms, table, registration, issues, warnings)
    return Compatibility(issues=issues, warnings=warnings, valid_start_mjd=window[0], valid_end_mjd=window[1])


def _check_band(ms: MsMetadata, table: CalTableSummary, issues: list[str], warnings: list[str]) -> None:
    ms_lo, ms_hi = ms.freq_min_hz, ms.freq_max_hz
    cal_lo, cal_hi = table.freq_min_hz, table.freq_max_hz
    if ms_lo is None or ms_hi is None or cal_lo is None or cal_hi is None:
        if table.n_rows:
            warnings.append("frequency coverage could not be compared (a SPECTRAL_WINDOW table is missing)")
        return
    if cal_hi <= ms_lo or cal_lo >= ms_hi:
        issues.append(
            f"no frequency overlap: MS {ms_lo / 1e9:.4f}-{ms_hi / 1e9:.4f} GHz, "
            f"table {cal_lo / 1e9:.4f}-{cal_hi / 1e9:.4f} GHz"
        )
        return
    ms_bw = ms_hi - ms_lo
    if ms_bw > 0 and abs((cal_hi - cal_lo) - ms_bw) / ms_bw > BANDWIDTH_WARNING:
        warnings.append(
            f"bandwidths differ by more than {BANDWIDTH_WARNING:.0%}: MS {ms_bw / 1e6:.2f} MHz, "
            f"table {(cal_hi - cal_lo) / 1e6:.2f} MHz"
        )


def _check_time(
    ms: MsMetadata, table: CalTableSummary, registration: Registration | None, issues: list[str]
) -> tuple[float | None, float | None]:
    if registration is not None and (
        registration.valid_start_mjd is not None or registration.valid_end_mjd is not None
    ):
        start, end = registration.valid_start_mjd, registration.valid_end_mjd
    elif table.start_mjd is not None and table.end_mjd is not None:
        start, end = table.start_mjd - DEFAULT_HALF_VALIDITY_DAYS, table.end_mjd + DEFAULT_HALF_VALIDITY_DAYS
    else:
        return None, None
    mid = ms.mid_mjd
    if mid is not None and ((start is not None and mid < start) or (end is not None and mid > end)):
        window = f"[{'open' if start is None else f'{start:.5f}'}, {'open' if end is None else f'{end:.5f}'}]"
        issues.append(f"the MS (mid MJD {mid:.5f}) is outside the table's validity window {window}")
    return start, end


def _check_refant(
    ms: MsMetadata,
    table: CalTableSummary,
    registration: Registration | None,
    issues: list[str],
    warnings: list[str],
) -> None:
    ms_ants = {a.antenna_id for a in ms.antennas}
    flagged = ms.flags.per_antenna if ms.flags is not None else {}
    for ref in table.reference_antennas:
        if ref not in ms_ants:
            issues.append(f"reference antenna {ref} is not in the MS")
        elif flagged.get(ref, 0.0) >= 1.0:
            warnings.append(f"reference antenna {ref} is fully flagged in the MS")
    if registration is not None and registration.refant and table.reference_antennas:
        names = {str(r) for r in table.reference_antennas} | {
            table.antenna_names.get(r, "") for r in table.reference_antennas
        }
        if registration.refant not in names:
            warnings.append(
                f"registered refant {registration.refant} differs from the table's "
                f"reference antenna(s) {_ids(set(table.reference_antennas))}"
            )
