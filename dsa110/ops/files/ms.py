"""What a Measurement Set holds, read with python-casacore (never CASA's own tools).

Fields and their phase centres (FIELD ``PHASE_DIR``), spectral windows and frequencies
(SPECTRAL_WINDOW ``CHAN_FREQ``), antennas (ANTENNA), the time range (main table ``TIME``
+/- ``INTERVAL`` / 2: ``TIME`` is the integration mid-point in MJD seconds, UTC), the data
columns present, and flag statistics. Flags are read per data description in blocks of
rows, so memory stays bounded on a 2 GB MS (the legacy endpoint read the whole ``FLAG``
column at once); a row with ``FLAG_ROW`` set counts as fully flagged.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

SECONDS_PER_DAY = 86400.0
DATA_COLUMNS = ("DATA", "CORRECTED_DATA", "MODEL_DATA", "FLOAT_DATA")
FLAG_BLOCK_ROWS = 50_000


@dataclass(frozen=True)
class FieldInfo:
    field_id: int
    name: str
    ra_deg: float
    dec_deg: float


@dataclass(frozen=True)
class SpectralWindowInfo:
    spw_id: int
    name: str
    n_channels: int
    freq_min_hz: float
    freq_max_hz: float
    chan_width_hz: float
    total_bandwidth_hz: float


@dataclass(frozen=True)
class AntennaInfo:
    antenna_id: int
    name: str
    station: str
    dish_diameter_m: float


@dataclass(frozen=True)
class FlagStats:
    """Flagged fractions of visibilities (channel x polarisation samples)."""

    total_fraction: float
    per_antenna: dict[int, float]
    per_field: dict[int, float]
    per_spw: dict[int, float]
    per_channel: dict[int, list[float]]  # spw -> flagged fraction of each channel

    def rfi_channels(self, threshold: float = 0.5) -> int:
        """Channels flagged in more than ``threshold`` of their samples (RFI-struck channels)."""
        return sum(1 for fractions in self.per_channel.values() for f in fractions if f > threshold)


@dataclass(frozen=True)
class MsMetadata:
    path: Path
    size_bytes: int
    n_rows: int
    start_mjd: float | None
    end_mjd: float | None
    integration_s: float | None
    fields: list[FieldInfo]
    spectral_windows: list[SpectralWindowInfo]
    antennas: list[AntennaInfo]
    n_baselines: int
    data_columns: list[str]
    telescope: str | None
    times_mjd: list[float] = field(default_factory=list)  # integration mid-points
    flags: FlagStats | None = field(default=None)

    @property
    def mid_mjd(self) -> float | None:
        if self.start_mjd is None or self.end_mjd is None:
            return None
        return (self.start_mjd + self.end_mjd) / 2

    @property
    def duration_s(self) -> float | None:
        if self.start_mjd is None or self.end_mjd is None:
            return None
        return (self.end_mjd - self.start_mjd) * SECONDS_PER_DAY

    @property
    def freq_min_hz(self) -> float | None:
        return min((s.freq_min_hz for s in self.spectral_windows), default=None)

    @property
    def freq_max_hz(self) -> float | None:
        return max((s.freq_max_hz for s in self.spectral_windows), default=None)

    @property
    def n_channels(self) -> int:
        return sum(s.n_channels for s in self.spectral_windows)

    @property
    def bandwidth_hz(self) -> float:
        return sum(s.total_bandwidth_hz for s in self.spectral_windows)

    @property
    def pointing_dec_deg(self) -> float | None:
        """The drift scan's declination: the median of the fields' phase-centre Decs."""
        if not self.fields:
            return None
        return float(np.median([f.dec_deg for f in self.fields]))

    @property
    def calibrated(self) -> bool:
        return "CORRECTED_DATA" in self.data_columns


def directory_size(path: Path) -> int:
    """Bytes of every regular file under ``path`` (an MS is a directory tree)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total


def _table(path: Path) -> Any:
    from casacore import tables as ct

    return ct.table(str(path), ack=False, readonly=True)


def _subtable(path: Path, name: str) -> Any | None:
    sub = path / name
    return _table(sub) if (sub / "table.dat").is_file() else None


def read_fields(path: Path) -> list[FieldInfo]:
    sub = _subtable(path, "FIELD")
    if sub is None:
        return []
    with sub:
        if sub.nrows() == 0:
            return []
        names = sub.getcol("NAME")
        directions = np.asarray(sub.getcol("PHASE_DIR"))  # (nfield, npoly + 1, 2) radians
    return [
        FieldInfo(
            field_id=i,
            name=str(names[i]),
            ra_deg=math.degrees(float(directions[i, 0, 0])) % 360.0,
            dec_deg=math.degrees(float(directions[i, 0, 1])),
        )
        for i in range(len(names))
    ]


def read_spectral_windows(path: Path) -> list[SpectralWindowInfo]:
    sub = _subtable(path, "SPECTRAL_WINDOW")
    if sub is None:
        return []
    out = []
    with sub:
        for i in range(sub.nrows()):
            freqs = np.asarray(sub.getcell("CHAN_FREQ", i), dtype=float)
            widths = np.abs(np.asarray(sub.getcell("CHAN_WIDTH", i), dtype=float))
            out.append(
                SpectralWindowInfo(
                    spw_id=i,
                    name=str(sub.getcell("NAME", i)),
                    n_channels=int(freqs.size),
                    freq_min_hz=float(freqs.min() - widths[int(freqs.argmin())] / 2),
                    freq_max_hz=float(freqs.max() + widths[int(freqs.argmax())] / 2),
                    chan_width_hz=float(np.median(widths)),
                    total_bandwidth_hz=float(sub.getcell("TOTAL_BANDWIDTH", i)),
                )
            )
    return out


def read_antennas(path: Path) -> list[AntennaInfo]:
    sub = _subtable(path, "ANTENNA")
    if sub is None:
        return []
    with sub:
        if sub.nrows() == 0:
            return []
        names, stations = sub.getcol("NAME"), sub.getcol("STATION")
        diameters = sub.getcol("DISH_DIAMETER")
    return [
        AntennaInfo(
            antenna_id=i, name=str(names[i]), station=str(stations[i]), dish_diameter_m=float(diameters[i])
        )
        for i in range(len(names))
    ]


def _telescope(path: Path) -> str | None:
    sub = _subtable(path, "OBSERVATION")
    if sub is None:
        return None
    with sub:
        return str(sub.getcell("TELESCOPE_NAME", 0)) if sub.nrows() else None


def _blocks(table: Any, n: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, FLAG_BLOCK_ROWS):
        yield start, min(FLAG_BLOCK_ROWS, n - start)


def _weighted(keys: NDArray[Any], values: NDArray[Any], size: int) -> NDArray[np.float64]:
    return np.bincount(keys, weights=values, minlength=size).astype(np.float64)


def read_flag_stats(main: Any, n_antennas: int, n_fields: int) -> FlagStats:
    """Flagged fractions overall, per antenna (rows it takes part in), per field and per SPW."""
    ddids = np.unique(main.getcol("DATA_DESC_ID")) if main.nrows() else np.array([], dtype=int)
    spw_of_ddid = _spw_of_ddid(main)
    size = max(n_antennas, 1)
    flagged_ant, total_ant = np.zeros(size), np.zeros(size)
    fsize = max(n_fields, 1)
    flagged_field, total_field = np.zeros(fsize), np.zeros(fsize)
    per_spw_flagged: dict[int, float] = {}
    per_spw_total: dict[int, float] = {}
    channel_flagged: dict[int, NDArray[np.float64]] = {}
    channel_total: dict[int, float] = {}
    for ddid in ddids.tolist():
        sub = main.query(f"DATA_DESC_ID=={int(ddid)}")
        with sub:
            for start, nrow in _blocks(sub, sub.nrows()):
                flags = np.asarray(sub.getcol("FLAG", start, nrow))
                row_flag = np.asarray(sub.getcol("FLAG_ROW", start, nrow), dtype=bool)
                flags = flags | row_flag[:, None, None]
                spw = spw_of_ddid.get(int(ddid), int(ddid))
                per_chan = flags.sum(axis=(0, 2)).astype(np.float64)
                channel_flagged[spw] = channel_flagged.get(spw, np.zeros_like(per_chan)) + per_chan
                channel_total[spw] = channel_total.get(spw, 0.0) + nrow * flags.shape[2]
                per_row = flags.reshape(nrow, -1)
                cells = per_row.shape[1]
                counted = per_row.sum(axis=1).astype(np.float64)
                a1 = np.asarray(sub.getcol("ANTENNA1", start, nrow))
                a2 = np.asarray(sub.getcol("ANTENNA2", start, nrow))
                fid = np.asarray(sub.getcol("FIELD_ID", start, nrow))
                ones = np.full(nrow, float(cells))
                for ants in (a1, a2):
                    ok = (ants >= 0) & (ants < size)
                    flagged_ant += _weighted(ants[ok], counted[ok], size)[:size]
                    total_ant += _weighted(ants[ok], ones[ok], size)[:size]
                ok = (fid >= 0) & (fid < fsize)
                flagged_field += _weighted(fid[ok], counted[ok], fsize)[:fsize]
                total_field += _weighted(fid[ok], ones[ok], fsize)[:fsize]
                per_spw_flagged[spw] = per_spw_flagged.get(spw, 0.0) + float(counted.sum())
                per_spw_total[spw] = per_spw_total.get(spw, 0.0) + float(ones.sum())
    total = sum(per_spw_total.values())
    return FlagStats(
        total_fraction=sum(per_spw_flagged.values()) / total if total else 0.0,
        per_antenna={i: float(flagged_ant[i] / total_ant[i]) for i in range(size) if total_ant[i] > 0},
        per_field={i: float(flagged_field[i] / total_field[i]) for i in range(fsize) if total_field[i] > 0},
        per_spw={s: per_spw_flagged[s] / per_spw_total[s] for s in sorted(per_spw_total) if per_spw_total[s]},
        per_channel={s: (channel_flagged[s] / channel_total[s]).tolist() for s in sorted(channel_total)},
    )


def _spw_of_ddid(main: Any) -> dict[int, int]:
    path = Path(main.name())
    sub = _subtable(path, "DATA_DESCRIPTION")
    if sub is None:
        return {}
    with sub:
        if not sub.nrows():
            return {}
        return {i: int(s) for i, s in enumerate(sub.getcol("SPECTRAL_WINDOW_ID"))}


def time_range(main: Any) -> tuple[float | None, float | None, float | None, list[float]]:
    """(start MJD, end MJD, median integration s, distinct mid-times MJD) from TIME +/- INTERVAL / 2."""
    if main.nrows() == 0:
        return None, None, None, []
    times = np.asarray(main.getcol("TIME"), dtype=float)
    intervals = np.asarray(main.getcol("INTERVAL"), dtype=float)
    start = float((times - intervals / 2).min()) / SECONDS_PER_DAY
    end = float((times + intervals / 2).max()) / SECONDS_PER_DAY
    return start, end, float(np.median(intervals)), (np.unique(times) / SECONDS_PER_DAY).tolist()


def _n_baselines(main: Any) -> int:
    if main.nrows() == 0:
        return 0
    a1 = np.asarray(main.getcol("ANTENNA1"), dtype=np.int64)
    a2 = np.asarray(main.getcol("ANTENNA2"), dtype=np.int64)
    cross = a1 != a2
    return int(np.unique(a1[cross] * 100_000 + a2[cross]).size)


def read_ms(path: Path, *, flags: bool = True) -> MsMetadata:
    """Everything :class:`MsMetadata` holds about the MS at ``path`` (blocking I/O)."""
    fields = read_fields(path)
    antennas = read_antennas(path)
    with _table(path) as main:
        start, end, integration, times = time_range(main)
        columns = set(main.colnames())
        stats = read_flag_stats(main, len(antennas), len(fields)) if flags else None
        n_rows = int(main.nrows())
        n_baselines = _n_baselines(main)
    return MsMetadata(
        path=path,
        size_bytes=directory_size(path),
        n_rows=n_rows,
        start_mjd=start,
        end_mjd=end,
        integration_s=integration,
        fields=fields,
        spectral_windows=read_spectral_windows(path),
        antennas=antennas,
        n_baselines=n_baselines,
        data_columns=[c for c in DATA_COLUMNS if c in columns],
        telescope=_telescope(path),
        times_mjd=times,
        flags=stats,
    )
