"""Small but real radio files: Measurement Sets and calibration tables written with
python-casacore, UVH5 subband files written with h5py.

They follow the formats the pipeline's tools read and write, at a size a test or a laptop
demo can afford: a handful of DSA-110 antennas (4.7 m dishes on an east-west line at
OVRO), a few spectral windows of the real band layout (channels of 6 x 244.14 kHz from
1.311 GHz), a few 12.88 s integrations, each its own field phased to the meridian, as the
real drift-scan MS is (24 fields of 12.88 s).

* MS: ``casacore.tables.default_ms`` with DATA / CORRECTED_DATA / MODEL_DATA columns of
  fixed shape, and filled ANTENNA, FEED, SPECTRAL_WINDOW, POLARIZATION, DATA_DESCRIPTION,
  FIELD and OBSERVATION subtables. FEED has a row per antenna and spectral window (CASA
  reads it to open an MS: ``ft``, ``bandpass``, ``gaincal``, ``tclean``): two linear
  receptors X, Y, x to the east as the UVH5 files declare (``dsa110.demo.raw``), with the
  receptor angles pyuvdata writes for them when it converts those files to an MS.
* Calibration tables: the CASA "new calibration table" layout - TIME, FIELD_ID,
  SPECTRAL_WINDOW_ID, ANTENNA1, ANTENNA2 (the reference antenna), INTERVAL, SCAN_NUMBER,
  OBSERVATION_ID, CPARAM (complex gains) or FPARAM (K: delays in ns), PARAMERR, FLAG, SNR,
  WEIGHT; keywords ParType, MSName, VisCal, PolBasis; table info type ``Calibration``; the
  MS's ANTENNA, FIELD, SPECTRAL_WINDOW and OBSERVATION subtables copied in.
* UVH5: the ``Header`` datasets the UVH5 memo (pyuvdata) requires, ``phase_type`` drift
  with the pointing declination in ``extra_keywords/phase_center_dec`` (radians) as the
  DSA-110 correlator writes, and ``Data/visdata``, ``flags``, ``nsamples``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from numpy.typing import NDArray

from dsa110.science.site import (
    DISH_DIAMETER_M,
    OVRO_ALT_M,
    OVRO_LAT_DEG,
    OVRO_LON_DEG,
    local_sidereal_deg,
)

SECONDS_PER_DAY = 86400.0
JD_MINUS_MJD = 2400000.5
DSA_INTEGRATION_S = 12.884902
DSA_CHANNEL_HZ = 244140.625
BAND_START_HZ = 1.3114e9
ANTENNA_SPACING_M = 5.75
CORR_XX_YY = (9, 12)  # casacore Stokes enum: XX, YY
FEED_TYPES = ("X", "Y")  # DSA-110's dual linear feeds
FEED_ANGLES_RAD = (math.pi / 2, 0.0)  # x east (pyuvdata's feed_angle, as dsa110.demo.raw declares)
VISCAL = {"K": "K Jones", "B": "B Jones", "G": "G Jones"}
WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563


@dataclass(frozen=True)
class Band:
    """Spectral windows of ``n_chan`` channels of ``chan_width_hz`` each, back to back."""

    n_spw: int = 2
    n_chan: int = 8
    chan_width_hz: float = 6 * DSA_CHANNEL_HZ
    start_hz: float = BAND_START_HZ

    def chan_freqs(self, spw: int) -> NDArray[np.float64]:
        first = self.start_hz + spw * self.n_chan * self.chan_width_hz
        return np.asarray(first + (np.arange(self.n_chan) + 0.5) * self.chan_width_hz, dtype=np.float64)


@dataclass(frozen=True)
class MsSpec:
    """What one small Measurement Set holds."""

    start_mjd: float
    dec_deg: float
    n_antennas: int = 6
    n_times: int = 4
    integration_s: float = DSA_INTEGRATION_S
    band: Band = field(default_factory=Band)
    field_prefix: str = "drift"
    flagged_antennas: tuple[int, ...] = ()
    rfi_channel: int | None = 3  # one channel flagged in every row, as RFI flagging leaves
    columns: tuple[str, ...] = ("DATA", "CORRECTED_DATA", "MODEL_DATA")
    first_antenna: int = 0
    seed: int = 0

    @property
    def antenna_ids(self) -> list[int]:
        return list(range(self.n_antennas))

    @property
    def antenna_names(self) -> list[str]:
        return [f"DSA-{self.first_antenna + i + 1:03d}" for i in range(self.n_antennas)]

    @property
    def times_mjd(self) -> NDArray[np.float64]:
        """Mid-points of the integrations."""
        offsets = (np.arange(self.n_times) + 0.5) * self.integration_s / SECONDS_PER_DAY
        return np.asarray(self.start_mjd + offsets, dtype=np.float64)

    @property
    def field_ra_deg(self) -> NDArray[np.float64]:
        """Each integration is its own field, phased to the meridian (RA = LST) at its time."""
        return local_sidereal_deg(self.times_mjd)


def _itrf(east_m: NDArray[np.float64]) -> NDArray[np.float64]:
    """ITRF x, y, z of points ``east_m`` metres east of the array centre (WGS84, local ENU)."""
    lat, lon = math.radians(OVRO_LAT_DEG), math.radians(OVRO_LON_DEG)
    e2 = WGS84_F * (2 - WGS84_F)
    n = WGS84_A / math.sqrt(1 - e2 * math.sin(lat) ** 2)
    centre = np.array(
        [
            (n + OVRO_ALT_M) * math.cos(lat) * math.cos(lon),
            (n + OVRO_ALT_M) * math.cos(lat) * math.sin(lon),
            (n * (1 - e2) + OVRO_ALT_M) * math.sin(lat),
        ]
    )
    east = np.array([-math.sin(lon), math.cos(lon), 0.0])
    return centre + np.outer(east_m, east)


def _baselines(n: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(n) for b in range(a + 1, n)]


def _fill(table_name: Path, columns: dict[str, object], nrow: int) -> None:
    from casacore import tables as ct

    with ct.table(str(table_name), readonly=False, ack=False) as sub:
        sub.addrows(nrow)
        for name, values in columns.items():
            sub.putcol(name, values)


def write_ms(path: Path, spec: MsSpec) -> Path:
    """Write ``spec`` as a Measurement Set at ``path`` (which must not exist)."""
    from casacore import tables as ct

    band, n_ant, npol = spec.band, spec.n_antennas, len(CORR_XX_YY)
    shape = [band.n_chan, npol]
    extra = [ct.makearrcoldesc(c, 0j, valuetype="complex", shape=shape) for c in spec.columns]
    extra.append(ct.makearrcoldesc("FLAG", False, valuetype="boolean", shape=shape))
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    baselines = _baselines(n_ant)
    times = spec.times_mjd
    rows = [(t, s, a, b) for t in range(spec.n_times) for s in range(band.n_spw) for a, b in baselines]
    nrow = len(rows)
    t_idx = np.array([r[0] for r in rows])
    a1 = np.array([r[2] for r in rows], dtype=np.int32)
    a2 = np.array([r[3] for r in rows], dtype=np.int32)
    east = np.arange(n_ant, dtype=np.float64) * ANTENNA_SPACING_M
    flags = np.zeros((nrow, band.n_chan, npol), dtype=bool)
    if spec.rfi_channel is not None:
        flags[:, spec.rfi_channel, :] = True
    for bad in spec.flagged_antennas:
        flags[(a1 == bad) | (a2 == bad)] = True
    with ct.default_ms(str(path), ct.maketabdesc(extra)) as ms:
        ms.addrows(nrow)
        ms.putcol("TIME", times[t_idx] * SECONDS_PER_DAY)
        ms.putcol("TIME_CENTROID", times[t_idx] * SECONDS_PER_DAY)
        ms.putcol("INTERVAL", np.full(nrow, spec.integration_s))
        ms.putcol("EXPOSURE", np.full(nrow, spec.integration_s))
        ms.putcol("ANTENNA1", a1)
        ms.putcol("ANTENNA2", a2)
        ms.putcol("DATA_DESC_ID", np.array([r[1] for r in rows], dtype=np.int32))
        ms.putcol("FIELD_ID", t_idx.astype(np.int32))
        ms.putcol("SCAN_NUMBER", np.ones(nrow, dtype=np.int32))
        uvw = np.zeros((nrow, 3))
        uvw[:, 0] = east[a2] - east[a1]
        ms.putcol("UVW", uvw)
        ms.putcol("WEIGHT", np.ones((nrow, npol), dtype=np.float32))
        ms.putcol("SIGMA", np.ones((nrow, npol), dtype=np.float32))
        model = np.ones((nrow, band.n_chan, npol), dtype=np.complex64)
        noise = rng.normal(0, 0.05, (nrow, band.n_chan, npol)) + 1j * rng.normal(
            0, 0.05, (nrow, band.n_chan, npol)
        )
        for name in spec.columns:
            ms.putcol(name, model if name == "MODEL_DATA" else (model + noise).astype(np.complex64))
        ms.putcol("FLAG", flags)
        ms.putinfo({"type": "Measurement Set", "subType": "", "readme": ""})
    _fill(
        path / "ANTENNA",
        {
            "NAME": spec.antenna_names,
            "STATION": [f"DSA-{i:03d}" for i in range(spec.first_antenna, spec.first_antenna + n_ant)],
            "TYPE": ["GROUND-BASED"] * n_ant,
            "MOUNT": ["ALT-AZ"] * n_ant,
            "POSITION": _itrf(east),
            "OFFSET": np.zeros((n_ant, 3)),
            "DISH_DIAMETER": np.full(n_ant, DISH_DIAMETER_M),
        },
        n_ant,
    )
    freqs = np.array([band.chan_freqs(s) for s in range(band.n_spw)])
    widths = np.full(freqs.shape, band.chan_width_hz)
    _fill(
        path / "SPECTRAL_WINDOW",
        {
            "NAME": [f"spw{s:02d}" for s in range(band.n_spw)],
            "NUM_CHAN": np.full(band.n_spw, band.n_chan, dtype=np.int32),
            "CHAN_FREQ": freqs,
            "CHAN_WIDTH": widths,
            "EFFECTIVE_BW": widths,
            "RESOLUTION": widths,
            "REF_FREQUENCY": freqs[:, 0] - band.chan_width_hz / 2,
            "TOTAL_BANDWIDTH": np.full(band.n_spw, band.n_chan * band.chan_width_hz),
            "MEAS_FREQ_REF": np.full(band.n_spw, 5, dtype=np.int32),  # TOPO
            "NET_SIDEBAND": np.ones(band.n_spw, dtype=np.int32),
        },
        band.n_spw,
    )
    _fill(
        path / "POLARIZATION",
        {
            "NUM_CORR": np.array([npol], dtype=np.int32),
            "CORR_TYPE": np.array([CORR_XX_YY], dtype=np.int32),
            "CORR_PRODUCT": np.array([[[0, 0], [1, 1]]], dtype=np.int32).transpose(0, 2, 1),
        },
        1,
    )
    _fill(
        path / "DATA_DESCRIPTION",
        {
            "SPECTRAL_WINDOW_ID": np.arange(band.n_spw, dtype=np.int32),
            "POLARIZATION_ID": np.zeros(band.n_spw, dtype=np.int32),
        },
        band.n_spw,
    )
    directions = np.stack(
        [np.radians(spec.field_ra_deg), np.full(spec.n_times, math.radians(spec.dec_deg))], 1
    )
    directions = directions[:, None, :]
    _fill(
        path / "FIELD",
        {
            "NAME": [f"{spec.field_prefix}_t{i}" for i in range(spec.n_times)],
            "CODE": [""] * spec.n_times,
            "PHASE_DIR": directions,
            "DELAY_DIR": directions,
            "REFERENCE_DIR": directions,
            "TIME": times * SECONDS_PER_DAY,
            "SOURCE_ID": np.full(spec.n_times, -1, dtype=np.int32),
        },
        spec.n_times,
    )
    half = spec.integration_s / 2
    time_range = np.array([times[0] * SECONDS_PER_DAY - half, times[-1] * SECONDS_PER_DAY + half])
    _fill(
        path / "OBSERVATION",
        {
            "TELESCOPE_NAME": ["DSA_110"],
            "OBSERVER": ["dsa110"],
            "PROJECT": ["dsa110-contimg"],
            "TIME_RANGE": time_range[None, :],
        },
        1,
    )
    _fill_feed(path / "FEED", n_ant, band.n_spw, time_range)
    return path


def _fill_feed(table_name: Path, n_ant: int, n_spw: int, time_range: NDArray[np.float64]) -> None:
    """One feed per antenna and spectral window, valid over the whole observation."""
    nrow, n_rec = n_ant * n_spw, len(FEED_TYPES)
    _fill(
        table_name,
        {
            "ANTENNA_ID": np.repeat(np.arange(n_ant, dtype=np.int32), n_spw),
            "FEED_ID": np.zeros(nrow, dtype=np.int32),
            "SPECTRAL_WINDOW_ID": np.tile(np.arange(n_spw, dtype=np.int32), n_ant),
            "TIME": np.full(nrow, time_range.mean()),
            "INTERVAL": np.full(nrow, time_range[1] - time_range[0]),
            "NUM_RECEPTORS": np.full(nrow, n_rec, dtype=np.int32),
            "BEAM_ID": np.full(nrow, -1, dtype=np.int32),
            "BEAM_OFFSET": np.zeros((nrow, n_rec, 2)),
            "POLARIZATION_TYPE": np.array([FEED_TYPES] * nrow),
            "POL_RESPONSE": np.tile(np.eye(n_rec, dtype=np.complex64), (nrow, 1, 1)),  # no leakage
            "POSITION": np.zeros((nrow, 3)),
            "RECEPTOR_ANGLE": np.array([FEED_ANGLES_RAD] * nrow),
        },
        nrow,
    )


def write_caltable(
    path: Path,
    ms_path: Path,
    kind: str,
    *,
    refant: int = 0,
    flagged_antennas: Sequence[int] = (),
    n_solutions: int = 1,
    seed: int = 0,
) -> Path:
    """Solutions of type ``kind`` (K delays, B bandpass, G gains) for the MS at ``ms_path``.

    Solutions are smooth and deterministic: bandpass amplitude ``1 + 0.1 cos(2 pi f / 40
    MHz)`` with a per-antenna phase slope; gains of amplitude ~1 and a per-antenna phase;
    delays of a few ns. ``flagged_antennas`` are flagged in every solution.
    """
    from casacore import tables as ct

    if kind not in VISCAL:
        raise ValueError(f"kind must be one of {', '.join(VISCAL)}")
    rng = np.random.default_rng(seed)
    with ct.table(str(ms_path), ack=False) as ms:
        times = np.unique(ms.getcol("TIME"))
        interval = float(ms.getcell("INTERVAL", 0))
    with ct.table(str(ms_path / "ANTENNA"), ack=False) as ant:
        n_ant = ant.nrows()
    with ct.table(str(ms_path / "SPECTRAL_WINDOW"), ack=False) as spw_table:
        freqs = [np.asarray(spw_table.getcell("CHAN_FREQ", s)) for s in range(spw_table.nrows())]
    span = (times[-1] - times[0]) + interval
    solution_times = times[0] - interval / 2 + (np.arange(n_solutions) + 0.5) * span / n_solutions
    npol = len(CORR_XX_YY)
    complex_kind = kind != "K"
    n_chan = freqs[0].size if kind == "B" else 1
    param, value_type = ("CPARAM", "complex") if complex_kind else ("FPARAM", "float")
    desc = ct.maketabdesc(
        [
            ct.makescacoldesc("TIME", 0.0),
            ct.makescacoldesc("FIELD_ID", 0),
            ct.makescacoldesc("SPECTRAL_WINDOW_ID", 0),
            ct.makescacoldesc("ANTENNA1", 0),
            ct.makescacoldesc("ANTENNA2", 0),
            ct.makescacoldesc("INTERVAL", 0.0),
            ct.makescacoldesc("SCAN_NUMBER", 0),
            ct.makescacoldesc("OBSERVATION_ID", 0),
            ct.makearrcoldesc(param, 0j if complex_kind else 0.0, valuetype=value_type, ndim=2),
            ct.makearrcoldesc("PARAMERR", 0.0, valuetype="float", ndim=2),
            ct.makearrcoldesc("FLAG", False, valuetype="boolean", ndim=2),
            ct.makearrcoldesc("SNR", 0.0, valuetype="float", ndim=2),
            ct.makearrcoldesc("WEIGHT", 0.0, valuetype="float", ndim=2),
        ]
    )
    rows = [(t, s, a) for t in range(n_solutions) for s in range(len(freqs)) for a in range(n_ant)]
    phase_slope = rng.uniform(-0.5, 0.5, n_ant)
    gain_phase = rng.uniform(-np.pi, np.pi, n_ant)
    gain_phase[refant] = phase_slope[refant] = 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    with ct.table(str(path), desc, nrow=len(rows), ack=False) as cal:
        cal.putcol("TIME", solution_times[[r[0] for r in rows]])
        cal.putcol("SPECTRAL_WINDOW_ID", np.array([r[1] for r in rows], dtype=np.int32))
        cal.putcol("ANTENNA1", np.array([r[2] for r in rows], dtype=np.int32))
        cal.putcol("ANTENNA2", np.full(len(rows), refant, dtype=np.int32))
        cal.putcol("INTERVAL", np.full(len(rows), span / n_solutions))
        cal.putcol("SCAN_NUMBER", np.ones(len(rows), dtype=np.int32))
        for i, (_t, s, a) in enumerate(rows):
            f = freqs[s] if kind == "B" else freqs[s][:1]
            if kind == "B":
                amp = 1.0 + 0.1 * np.cos(2 * np.pi * f / 40e6) + rng.normal(0, 0.01, f.size)
                value = amp * np.exp(1j * phase_slope[a] * (f - f[0]) / 1e6)
                cell = np.repeat(value[:, None], npol, axis=1).astype(np.complex64)
            elif kind == "G":
                amp = 1.0 + rng.normal(0, 0.02, npol)
                cell = (amp * np.exp(1j * (gain_phase[a] + rng.normal(0, 0.05, npol))))[None, :].astype(
                    np.complex64
                )
            else:
                cell = np.full((1, npol), 0.0 if a == refant else float(rng.normal(0, 3.0)), dtype=np.float32)
            flagged = a in flagged_antennas
            cal.putcell(param, i, cell)
            cal.putcell("PARAMERR", i, np.full((n_chan, npol), 0.01, dtype=np.float32))
            cal.putcell("FLAG", i, np.full((n_chan, npol), flagged))
            cal.putcell("SNR", i, np.full((n_chan, npol), 0.0 if flagged else 50.0, dtype=np.float32))
            cal.putcell("WEIGHT", i, np.ones((n_chan, npol), dtype=np.float32))
        cal.putkeyword("ParType", "Complex" if complex_kind else "Float")
        cal.putkeyword("MSName", ms_path.name)
        cal.putkeyword("VisCal", VISCAL[kind])
        cal.putkeyword("PolBasis", "unknown")
        cal.putinfo({"type": "Calibration", "subType": VISCAL[kind], "readme": ""})
        for sub in ("ANTENNA", "FIELD", "SPECTRAL_WINDOW", "OBSERVATION"):
            with ct.table(str(ms_path / sub), ack=False) as source:
                copied = source.copy(str(path / sub), deep=True)
            cal.putkeyword(sub, copied)
            copied.close()
    return path


@dataclass(frozen=True)
class UvhSpec:
    """One subband file of one observation group."""

    start_mjd: float
    dec_deg: float
    subband: int = 0
    n_antennas: int = 6
    n_times: int = 4
    n_chan: int = 8
    integration_s: float = DSA_INTEGRATION_S
    chan_width_hz: float = 6 * DSA_CHANNEL_HZ
    seed: int = 0

    def freqs_hz(self) -> NDArray[np.float64]:
        first = BAND_START_HZ + self.subband * self.n_chan * self.chan_width_hz
        return np.asarray(first + (np.arange(self.n_chan) + 0.5) * self.chan_width_hz, dtype=np.float64)


def _ascii(text: str) -> np.bytes_:
    return np.bytes_(text.encode("ascii"))


def write_uvh5(path: Path, spec: UvhSpec) -> Path:
    """A UVH5 file: the memo's required header, DSA-110's drift phasing, tiny data arrays."""
    n_ant = spec.n_antennas
    baselines = [(a, b) for a in range(n_ant) for b in range(a, n_ant)]  # with autocorrelations
    n_bls, npol = len(baselines), 2
    nblts = n_bls * spec.n_times
    times_jd = (
        spec.start_mjd + (np.arange(spec.n_times) + 0.5) * spec.integration_s / SECONDS_PER_DAY + JD_MINUS_MJD
    )
    east = np.arange(n_ant) * ANTENNA_SPACING_M
    rng = np.random.default_rng(spec.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        h = f.create_group("Header")
        for name, value in (
            ("latitude", OVRO_LAT_DEG),
            ("longitude", OVRO_LON_DEG),
            ("altitude", OVRO_ALT_M),
            ("Nants_data", n_ant),
            ("Nants_telescope", n_ant),
            ("Nbls", n_bls),
            ("Nblts", nblts),
            ("Nfreqs", spec.n_chan),
            ("Npols", npol),
            ("Ntimes", spec.n_times),
            ("Nspws", 1),
        ):
            h[name] = value
        for name, text in (
            ("telescope_name", "OVRO_DSA"),
            ("instrument", "DSA"),
            ("object_name", "search"),
            ("history", "written by dsa110.demo.radio_files"),
            ("phase_type", "drift"),
            ("version", "1.0"),
        ):
            h[name] = _ascii(text)
        h["ant_1_array"] = np.tile([a for a, _ in baselines], spec.n_times).astype(np.int32)
        h["ant_2_array"] = np.tile([b for _, b in baselines], spec.n_times).astype(np.int32)
        h["antenna_numbers"] = np.arange(n_ant, dtype=np.int32)
        h["antenna_names"] = np.array([f"DSA-{i + 1:03d}".encode() for i in range(n_ant)], dtype="S7")
        h["antenna_positions"] = np.stack([east, np.zeros(n_ant), np.zeros(n_ant)], 1)
        h["antenna_diameters"] = np.full(n_ant, DISH_DIAMETER_M)
        h["time_array"] = np.repeat(times_jd, n_bls)
        h["integration_time"] = np.full(nblts, spec.integration_s)
        h["uvw_array"] = np.zeros((nblts, 3))
        h["freq_array"] = spec.freqs_hz()[None, :]
        h["channel_width"] = spec.chan_width_hz
        h["spw_array"] = np.array([spec.subband], dtype=np.int32)
        h["polarization_array"] = np.array([-5, -6], dtype=np.int32)  # XX, YY (AIPS memo 117)
        extra = h.create_group("extra_keywords")
        extra["phase_center_dec"] = math.radians(spec.dec_deg)
        d = f.create_group("Data")
        shape = (nblts, 1, spec.n_chan, npol)
        d.create_dataset("visdata", data=(1 + rng.normal(0, 0.05, shape)).astype(np.complex64))
        d.create_dataset("flags", data=np.zeros(shape, dtype=bool), compression="lzf")
        d.create_dataset("nsamples", data=np.ones(shape, dtype=np.float32), compression="lzf")
    return path
