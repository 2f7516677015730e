"""UVH5 subband files: their header, read with h5py, never their data.

Only datasets of the ``Header`` group are opened (the UVH5 memo, pyuvdata): sizes,
antennas, frequencies, the time array (Julian Dates at integration centres, one per
baseline-time: a few MB at most) and the phase centre. ``Data/visdata`` is never read, so
listing a directory of 2 GB files costs what their headers cost.

Phase centre, in order of preference: a ``phase_center_catalog`` entry with coordinates
(pyuvdata >= 2.2), ``phase_center_ra``/``phase_center_dec`` (older "phased" files), or a
drift scan: RA is the local sidereal time at the mid-time (the meridian) and Dec is
``extra_keywords/phase_center_dec`` (radians, as the DSA-110 correlator writes it), else
the site latitude (zenith).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dsa110.science.site import local_sidereal_deg

JD_MINUS_MJD = 2400000.5
SECONDS_PER_DAY = 86400.0
NAME_RE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})_sb(\d{2})\.(?:hdf5|uvh5|h5)$")
SUFFIXES = (".hdf5", ".uvh5", ".h5")


class NotUvh5(ValueError):
    """The file is not HDF5, or has no UVH5 ``Header``."""


@dataclass(frozen=True)
class UvhHeader:
    path: Path
    size_bytes: int
    modified: datetime
    group_id: str | None
    subband: int | None
    telescope: str | None
    n_antennas: int
    antenna_names: list[str]
    n_baselines: int
    n_times: int
    n_freqs: int
    n_pols: int
    integration_s: float | None
    start_mjd: float | None
    end_mjd: float | None
    freq_min_hz: float | None
    freq_max_hz: float | None
    channel_width_hz: float | None
    phase_type: str
    phase_center_ra_deg: float | None
    phase_center_dec_deg: float | None

    @property
    def mid_mjd(self) -> float | None:
        if self.start_mjd is None or self.end_mjd is None:
            return None
        return (self.start_mjd + self.end_mjd) / 2


def parse_name(name: str) -> tuple[str | None, int | None]:
    """``2025-10-24T13:28:03_sb03.hdf5`` -> (``2025-10-24T13:28:03``, 3)."""
    match = NAME_RE.search(name)
    return (match.group(1), int(match.group(2))) if match else (None, None)


def _text(value: Any) -> str:
    raw = value[()] if isinstance(value, h5py.Dataset) else value
    if isinstance(raw, bytes | np.bytes_):
        return bytes(raw).decode("ascii", "replace").rstrip("\x00")
    return str(raw)


def _scalar(header: h5py.Group, name: str, default: float | None = None) -> float | None:
    return float(header[name][()]) if name in header else default


def _phase_centre(header: h5py.Group, mid_mjd: float | None) -> tuple[str, float | None, float | None]:
    catalog = header.get("phase_center_catalog")
    if isinstance(catalog, h5py.Group):
        for entry in catalog.values():
            if isinstance(entry, h5py.Group) and "cat_lon" in entry and "cat_lat" in entry:
                kind = _text(entry["cat_type"]) if "cat_type" in entry else "sidereal"
                if kind == "sidereal":
                    lon, lat = float(entry["cat_lon"][()]), float(entry["cat_lat"][()])
                    return kind, math.degrees(lon) % 360.0, math.degrees(lat)
    if "phase_center_ra" in header and "phase_center_dec" in header:
        ra, dec = float(header["phase_center_ra"][()]), float(header["phase_center_dec"][()])
        return "phased", math.degrees(ra) % 360.0, math.degrees(dec)
    extra = header.get("extra_keywords")
    dec_deg: float | None = None
    if isinstance(extra, h5py.Group) and "phase_center_dec" in extra:
        dec_deg = math.degrees(float(extra["phase_center_dec"][()]))
    elif "latitude" in header:
        dec_deg = float(header["latitude"][()])
    ra_deg = float(local_sidereal_deg(np.array([mid_mjd]))[0]) if mid_mjd is not None else None
    return "drift", ra_deg, dec_deg


def read_header(path: Path) -> UvhHeader:
    """The header of the UVH5 file at ``path`` (blocking I/O); ``NotUvh5`` if it is not one."""
    stat = path.stat()
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise NotUvh5(f"{path.name} is not an HDF5 file") from exc
    with handle as f:
        header = f.get("Header")
        if not isinstance(header, h5py.Group):
            raise NotUvh5(f"{path.name} has no UVH5 Header")
        times = np.asarray(header["time_array"][()], dtype=float) if "time_array" in header else np.array([])
        integration = (
            np.asarray(header["integration_time"][()], dtype=float) if "integration_time" in header else None
        )
        freqs = (
            np.asarray(header["freq_array"][()], dtype=float).ravel()
            if "freq_array" in header
            else np.array([])
        )
        width = (
            np.asarray(header["channel_width"][()], dtype=float).ravel()
            if "channel_width" in header
            else None
        )
        half_day = (
            float(np.median(integration)) / 2 / SECONDS_PER_DAY
            if integration is not None and integration.size
            else 0.0
        )
        start = float(times.min()) - JD_MINUS_MJD - half_day if times.size else None
        end = float(times.max()) - JD_MINUS_MJD + half_day if times.size else None
        mid = (start + end) / 2 if start is not None and end is not None else None
        names = [_text(n) for n in header["antenna_names"][()]] if "antenna_names" in header else []
        numbers = [int(n) for n in header["antenna_numbers"][()]] if "antenna_numbers" in header else []
        used: set[int] = set()
        for key in ("ant_1_array", "ant_2_array"):
            if key in header:
                used.update(int(a) for a in np.unique(header[key][()]))
        by_number = dict(zip(numbers, names, strict=False))
        phase_type, ra, dec = _phase_centre(header, mid)
        group_id, subband = parse_name(path.name)
        channel = float(np.median(width)) if width is not None and width.size else None
        return UvhHeader(
            path=path,
            size_bytes=stat.st_size,
            modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            group_id=group_id,
            subband=subband,
            telescope=_text(header["telescope_name"]) if "telescope_name" in header else None,
            n_antennas=int(_scalar(header, "Nants_data", len(used)) or 0),
            antenna_names=[by_number.get(a, str(a)) for a in sorted(used)],
            n_baselines=int(_scalar(header, "Nbls", 0) or 0),
            n_times=int(_scalar(header, "Ntimes", 0) or 0),
            n_freqs=int(_scalar(header, "Nfreqs", freqs.size) or 0),
            n_pols=int(_scalar(header, "Npols", 0) or 0),
            integration_s=float(np.median(integration))
            if integration is not None and integration.size
            else None,
            start_mjd=start,
            end_mjd=end,
            freq_min_hz=float(freqs.min() - (channel or 0) / 2) if freqs.size else None,
            freq_max_hz=float(freqs.max() + (channel or 0) / 2) if freqs.size else None,
            channel_width_hz=channel,
            phase_type=phase_type,
            phase_center_ra_deg=ra,
            phase_center_dec_deg=dec,
        )


def list_uvh5(root: Path, *, recursive: bool = True, limit: int = 100_000) -> list[Path]:
    """UVH5 files under ``root`` by suffix, newest name first (legacy order: path descending)."""
    pattern = "**/*" if recursive else "*"
    found: list[Path] = []
    for path in root.glob(pattern):
        if path.suffix.lower() in SUFFIXES and path.is_file() and not path.is_symlink():
            found.append(path)
            if len(found) >= limit:
                break
    return sorted(found, reverse=True)
