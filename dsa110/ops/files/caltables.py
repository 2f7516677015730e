"""Calibration tables: what type they are, where they are, and what their solutions say.

Types and apply order are the legacy registry's (K=10, BA=20, BP=30, GA=40, GP=50, 2G=60,
FLUX=70), inferred from the name suffix the pipeline gives a table next to its MS
(``<ms base>_kcal``, ``_bpcal``, ``_gpcal``...; the dot forms ``.kcal`` and ``cal.K`` are
accepted too - the legacy ``/api/caltables`` glob knew only those and so found nothing),
else from the table's ``VisCal`` keyword.

Solution summaries are read from the table itself (CASA's new calibration-table layout:
``CPARAM`` complex gains or ``FPARAM`` delays in ns, ``FLAG``, ``SNR``, ``ANTENNA1``,
``ANTENNA2`` = the reference antenna, ``SPECTRAL_WINDOW_ID``, ``TIME``):

* flagged fraction: flagged (channel x polarisation) solutions over all of them;
* amplitude mean and standard deviation of unflagged complex solutions;
* phase scatter: the circular standard deviation ``sqrt(-2 ln R)``, ``R = |mean(e^{i phi})|``
  (Mardia & Jupp 2000, Directional Statistics, eq. 2.3.11), in degrees - unlike a plain
  standard deviation it is not fooled by a wrap at +/-180 deg;
* for delay (K) tables, the mean and scatter of the delays instead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dsa110.ops.files.ms import SECONDS_PER_DAY, directory_size

APPLY_ORDER = {"K": 10, "BA": 20, "BP": 30, "GA": 40, "GP": 50, "2G": 60, "FLUX": 70}
KIND_OF_TYPE = {
    "K": "delay",
    "BA": "bandpass",
    "BP": "bandpass",
    "GA": "gain",
    "GP": "gain",
    "G": "gain",
    "2G": "gain",
    "FLUX": "flux",
}
_SUFFIXES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (r"[._]2kcal$", "K"),
        (r"[._]kcal$", "K"),
        (r"[._]bacal$", "BA"),
        (r"[._]bpcal$", "BP"),
        (r"[._]bcal$", "BP"),
        (r"[._]gacal$", "GA"),
        (r"[._]gpcal$", "GP"),
        (r"[._]2gcal$", "2G"),
        (r"[._]gcal$", "G"),
        (r"[._]flux\.?cal$|[._]fcal$", "FLUX"),
        (r"\.K$", "K"),
        (r"\.(B|BP)$", "BP"),
        (r"\.(G|GP)$", "GP"),
        (r"\.GA$", "GA"),
        (r"\.F$", "FLUX"),
    )
)
_VISCAL = {"K": "K", "B": "BP", "G": "G", "T": "G", "F": "FLUX"}
HIGH_CHANNEL_FLAGGING = 0.5  # a channel with more than half its solutions flagged
PROBLEMATIC_SPW_FRACTION = 0.3


def type_from_name(name: str) -> str | None:
    """The legacy table type for a file name, e.g. ``..._bpcal`` -> ``BP``; None if unknown."""
    for pattern, kind in _SUFFIXES:
        if pattern.search(name):
            return kind
    return None


def looks_like_caltable(path: Path) -> bool:
    return type_from_name(path.name) is not None and (path / "table.dat").is_file()


def find_caltables(root: Path, *, recursive: bool = True, limit: int = 100_000) -> list[Path]:
    """Calibration-table directories under ``root`` by name, without descending into them
    or into Measurement Sets (both are directory trees of their own)."""
    found: list[Path] = []
    stack = [root]
    while stack and len(found) < limit:
        folder = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if not entry.is_dir() or entry.is_symlink():
                continue
            if looks_like_caltable(entry):
                found.append(entry)
            elif recursive and not (entry / "table.dat").is_file():
                stack.append(entry)
    return found[:limit]


def tables_next_to(ms_path: Path) -> list[Path]:
    """Tables named after an MS (``<base>_kcal``, ``<base>_bpcal``...) in its directory,
    newest first (the legacy ``existing-caltables`` rule, every suffix included)."""
    base = ms_path.name[:-3] if ms_path.name.endswith(".ms") else ms_path.name
    folder = ms_path.parent
    try:
        entries = [e for e in folder.iterdir() if e.name.startswith(base) and e != ms_path]
    except OSError:
        return []
    tables = [e for e in entries if e.is_dir() and looks_like_caltable(e)]
    return sorted(tables, key=lambda p: p.stat().st_mtime, reverse=True)


@dataclass(frozen=True)
class AntennaSolutions:
    antenna_id: int
    name: str | None
    n_solutions: int
    flagged_fraction: float
    amp_mean: float | None
    amp_std: float | None
    phase_scatter_deg: float | None
    delay_mean_ns: float | None
    delay_std_ns: float | None


@dataclass(frozen=True)
class SpwSolutions:
    spw_id: int
    n_channels: int
    total_solutions: int
    flagged_solutions: int
    channels_with_high_flagging: int
    avg_flagged_per_channel: float
    max_flagged_in_channel: int
    amp_median: float | None

    @property
    def fraction_flagged(self) -> float:
        return self.flagged_solutions / self.total_solutions if self.total_solutions else 0.0

    @property
    def is_problematic(self) -> bool:
        return self.fraction_flagged > PROBLEMATIC_SPW_FRACTION


@dataclass(frozen=True)
class CalTableSummary:
    path: Path
    table_type: str | None
    vis_cal: str | None
    ms_name: str | None
    n_rows: int
    size_bytes: int
    modified: datetime
    antennas: list[int]
    antenna_names: dict[int, str]
    reference_antennas: list[int]
    spw_ids: list[int]
    freq_min_hz: float | None
    freq_max_hz: float | None
    start_mjd: float | None
    end_mjd: float | None
    flagged_fraction: float
    snr_mean: float | None
    per_antenna: list[AntennaSolutions]
    per_spw: list[SpwSolutions]

    @property
    def kind(self) -> str | None:
        return KIND_OF_TYPE.get(self.table_type or "")

    @property
    def apply_order(self) -> int | None:
        return APPLY_ORDER.get(self.table_type or "")


def _table(path: Path) -> Any:
    from casacore import tables as ct

    return ct.table(str(path), ack=False, readonly=True)


def _keyword(table: Any, name: str) -> str | None:
    keywords = table.getkeywords()
    value = keywords.get(name)
    return str(value) if value is not None else None


def _subtable_freqs(path: Path, spw_ids: list[int]) -> tuple[float | None, float | None]:
    sub = path / "SPECTRAL_WINDOW"
    if not (sub / "table.dat").is_file() or not spw_ids:
        return None, None
    lo, hi = math.inf, -math.inf
    with _table(sub) as spw:
        for i in spw_ids:
            if 0 <= i < spw.nrows():
                freqs = np.asarray(spw.getcell("CHAN_FREQ", i), dtype=float)
                widths = np.abs(np.asarray(spw.getcell("CHAN_WIDTH", i), dtype=float))
                lo = min(lo, float((freqs - widths / 2).min()))
                hi = max(hi, float((freqs + widths / 2).max()))
    return (lo, hi) if math.isfinite(lo) else (None, None)


def _antenna_names(path: Path) -> dict[int, str]:
    sub = path / "ANTENNA"
    if not (sub / "table.dat").is_file():
        return {}
    with _table(sub) as ant:
        return {i: str(n) for i, n in enumerate(ant.getcol("NAME"))} if ant.nrows() else {}


def circular_std_deg(phases_rad: NDArray[np.float64]) -> float | None:
    """``sqrt(-2 ln R)`` in degrees, ``R`` the mean resultant length of the phases."""
    if phases_rad.size == 0:
        return None
    r = float(np.abs(np.exp(1j * phases_rad).mean()))
    return math.degrees(math.sqrt(max(0.0, -2.0 * math.log(max(r, 1e-300)))))


@dataclass(frozen=True)
class SpwArrays:
    """One spectral window's solutions: rows x channels x polarisations."""

    spw_id: int
    freqs_hz: NDArray[np.float64] | None  # channel centres, from the table's SPECTRAL_WINDOW
    antennas: NDArray[np.int64]
    values: NDArray[Any]  # complex gains (CPARAM) or delays in ns (FPARAM)
    flags: NDArray[np.bool_]
    snr: NDArray[np.float64] | None

    @property
    def complex_values(self) -> bool:
        return bool(np.iscomplexobj(self.values))


def _channel_freqs(path: Path) -> dict[int, NDArray[np.float64]]:
    sub = path / "SPECTRAL_WINDOW"
    if not (sub / "table.dat").is_file():
        return {}
    with _table(sub) as spw:
        return {i: np.asarray(spw.getcell("CHAN_FREQ", i), dtype=float) for i in range(spw.nrows())}


def read_arrays(path: Path) -> list[SpwArrays]:
    """Every spectral window's solutions, read one SPW at a time (cells may differ in shape
    between SPWs, never within one)."""
    freqs = _channel_freqs(path)
    out = []
    with _table(path) as table:
        if table.nrows() == 0:
            return []
        param = "CPARAM" if "CPARAM" in table.colnames() else "FPARAM"
        has_snr = "SNR" in table.colnames()
        for spw in np.unique(table.getcol("SPECTRAL_WINDOW_ID")).tolist():
            with table.query(f"SPECTRAL_WINDOW_ID=={int(spw)}") as sub:
                values = np.asarray(sub.getcol(param))
                out.append(
                    SpwArrays(
                        spw_id=int(spw),
                        freqs_hz=freqs.get(int(spw)),
                        antennas=np.asarray(sub.getcol("ANTENNA1"), dtype=np.int64),
                        values=values,
                        flags=np.asarray(sub.getcol("FLAG"), dtype=bool),
                        snr=np.asarray(sub.getcol("SNR"), dtype=float) if has_snr else None,
                    )
                )
    return out


def solution_intervals(path: Path) -> list[tuple[float, float]]:
    """(start, end) MJD of every distinct solution interval (TIME +/- INTERVAL / 2)."""
    with _table(path) as table:
        if not table.nrows():
            return []
        times = np.asarray(table.getcol("TIME"), dtype=float)
        intervals = np.asarray(table.getcol("INTERVAL"), dtype=float)
    pairs = np.unique(np.stack([times - intervals / 2, times + intervals / 2], 1), axis=0) / SECONDS_PER_DAY
    return [(float(lo), float(hi)) for lo, hi in pairs]


def _time_span(path: Path) -> tuple[float | None, float | None, set[int], str | None, str | None, int]:
    with _table(path) as table:
        n_rows = int(table.nrows())
        vis_cal, ms_name = _keyword(table, "VisCal"), _keyword(table, "MSName")
        if not n_rows:
            return None, None, set(), vis_cal, ms_name, 0
        times = np.asarray(table.getcol("TIME"), dtype=float)
        intervals = np.asarray(table.getcol("INTERVAL"), dtype=float)
        refants = {int(a) for a in np.unique(table.getcol("ANTENNA2")) if a >= 0}
    start = float((times - intervals / 2).min()) / SECONDS_PER_DAY
    end = float((times + intervals / 2).max()) / SECONDS_PER_DAY
    return start, end, refants, vis_cal, ms_name, n_rows


def read_caltable(path: Path) -> CalTableSummary:
    """Summarise the calibration table at ``path`` from its own rows (blocking I/O)."""
    start, end, refants, vis_cal, ms_name, n_rows = _time_span(path)
    arrays = read_arrays(path)
    per_spw = [_spw_stats(a) for a in arrays]
    snr = [a.snr[~a.flags] for a in arrays if a.snr is not None]
    snr_all = np.concatenate(snr) if snr else np.array([])
    antenna_ids = sorted({int(x) for a in arrays for x in np.unique(a.antennas).tolist()})
    names = _antenna_names(path)
    antennas = [_antenna_stats(ant, names.get(ant), arrays) for ant in antenna_ids]
    total = sum(s.total_solutions for s in per_spw)
    flagged = sum(s.flagged_solutions for s in per_spw)
    spw_ids = [s.spw_id for s in per_spw]
    freq_min, freq_max = _subtable_freqs(path, spw_ids)
    return CalTableSummary(
        path=path,
        table_type=type_from_name(path.name) or _VISCAL.get((vis_cal or " ")[0]),
        vis_cal=vis_cal,
        ms_name=ms_name,
        n_rows=n_rows,
        size_bytes=directory_size(path),
        modified=datetime.fromtimestamp(path.stat().st_mtime, tz=UTC),
        antennas=antenna_ids,
        antenna_names=names,
        reference_antennas=sorted(refants),
        spw_ids=spw_ids,
        freq_min_hz=freq_min,
        freq_max_hz=freq_max,
        start_mjd=start,
        end_mjd=end,
        flagged_fraction=flagged / total if total else 0.0,
        snr_mean=float(snr_all.mean()) if snr_all.size else None,
        per_antenna=antennas,
        per_spw=per_spw,
    )


def _spw_stats(arrays: SpwArrays) -> SpwSolutions:
    values, flags = arrays.values, arrays.flags
    n_channels = int(values.shape[1]) if values.ndim == 3 else 1
    per_channel = flags.sum(axis=(0, 2)) if flags.ndim == 3 else flags.sum(axis=0)
    per_channel_total = flags.shape[0] * (flags.shape[2] if flags.ndim == 3 else 1)
    good = values[~flags]
    amp = np.abs(good) if arrays.complex_values else None
    return SpwSolutions(
        spw_id=arrays.spw_id,
        n_channels=n_channels,
        total_solutions=int(flags.size),
        flagged_solutions=int(flags.sum()),
        channels_with_high_flagging=int((per_channel > HIGH_CHANNEL_FLAGGING * per_channel_total).sum()),
        avg_flagged_per_channel=float(per_channel.mean()) if per_channel.size else 0.0,
        max_flagged_in_channel=int(per_channel.max()) if per_channel.size else 0,
        amp_median=float(np.median(amp)) if amp is not None and amp.size else None,
    )


def _antenna_stats(antenna: int, name: str | None, arrays: list[SpwArrays]) -> AntennaSolutions:
    mine = [(a.values[a.antennas == antenna].ravel(), a.flags[a.antennas == antenna].ravel()) for a in arrays]
    values = np.concatenate([v for v, _ in mine]) if mine else np.array([])
    flags = np.concatenate([f for _, f in mine]) if mine else np.array([], dtype=bool)
    complex_values = bool(np.iscomplexobj(values))
    good = values[~flags]
    amp = np.abs(good) if complex_values else None
    return AntennaSolutions(
        antenna_id=antenna,
        name=name,
        n_solutions=int(values.size),
        flagged_fraction=float(flags.mean()) if flags.size else 0.0,
        amp_mean=float(amp.mean()) if amp is not None and amp.size else None,
        amp_std=float(amp.std()) if amp is not None and amp.size else None,
        phase_scatter_deg=circular_std_deg(np.angle(good)) if complex_values else None,
        delay_mean_ns=None if complex_values or not good.size else float(good.real.mean()),
        delay_std_ns=None if complex_values or not good.size else float(good.real.std()),
    )
