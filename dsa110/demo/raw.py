"""Raw data the pipeline can really process: UVH5 subband files simulated from a sky model.

A group is the visibilities a reduced DSA-110 would record in a few 12.88 s integrations
(legacy-pipeline-facts §8): ``n_antennas`` 4.7 m dishes of a compact T (an east-west arm
and a north-south arm, as the real array), 16 subband files of ``n_chan`` channels covering
the real 1.3114-1.4986 GHz band (subband 00 is the top of the band, as the correlator
writes), two linear polarisations (XX, YY), drift-scan (unprojected) phasing as the
correlator writes, and DSA-110's header conventions (``extra_keywords/phase_center_dec``).

The measurement equation (Thompson, Moran & Swenson 2017, eq. 3.7 with the SIN
projection of ``dsa110.ops.stages.sky``), per baseline (i, j), channel of frequency f::

    V_ij(f) = g_i(f) conj(g_j(f)) * sum_k S_k P(theta_k, f) exp(+2 pi i f/c (u l_k + v m_k + w (n_k - 1)))
              + noise

with (u, v, w) the baseline in metres toward the phase centre (pyuvdata ``phase``), P the
Airy power pattern of a 4.7 m dish (``dsa110.science.site.airy_primary_beam``) at the
source's distance theta from the pointing, and complex antenna gains g (a bandpass ripple
``1 + 0.08 cos(2 pi f / 50 MHz)`` times a per-antenna amplitude in 0.8-1.2 and phase): the
instrument the calibrate stage must solve for. The gains are fixed (seed ``GAIN_SEED``), so
solutions from a calibrator group apply to other groups, as the daily bandpass does. Noise
is complex Gaussian, ``noise_jy`` per real and imaginary part. The visibilities are
computed phased to the meridian at mid time and stored unprojected (pyuvdata
``unproject_phase``), so conversion must phase them again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import h5py
import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.ops.stages.sky import direction_cosines, offline_time, phase_centre
from dsa110.science.healpix import angular_separation_deg
from dsa110.science.site import (
    DISH_DIAMETER_M,
    OVRO_ALT_M,
    OVRO_LAT_DEG,
    OVRO_LON_DEG,
    SPEED_OF_LIGHT_M_S,
    airy_primary_beam,
)

SECONDS_PER_DAY = 86400.0
MJD_UNIX_EPOCH = 40587.0
JD_MINUS_MJD = 2400000.5
DSA_INTEGRATION_S = 12.884902
DSA_CHANNEL_HZ = 244140.625
BAND_TOP_HZ = 1.4986e9
N_SUBBANDS = 16
GAIN_SEED = 4242
# East-north positions (m) of a compact T: the east-west arm, then the north-south arm.
LAYOUT_EN_M = (
    (-96.0, 0.0),
    (-31.0, 0.0),
    (0.0, 0.0),
    (47.0, 0.0),
    (0.0, -52.0),
    (0.0, -118.0),
    (112.0, 0.0),
    (0.0, -83.0),
)
MAX_ANTENNAS = len(LAYOUT_EN_M)


@dataclass(frozen=True)
class PointSource:
    ra_deg: float
    dec_deg: float
    flux_jy: float


@dataclass(frozen=True)
class RawSpec:
    """One observation group's raw data."""

    start_mjd: float
    dec_deg: float
    n_subbands: int = N_SUBBANDS
    n_chan: int = 4
    n_times: int = 2
    n_antennas: int = 6
    chan_width_hz: float = 12 * DSA_CHANNEL_HZ  # 16 x 4 x 2.93 MHz = 187.5 MHz, the real band
    integration_s: float = DSA_INTEGRATION_S
    noise_jy: float = 0.05
    seed: int = 0

    @property
    def mid_mjd(self) -> float:
        return self.start_mjd + self.n_times * self.integration_s / 2 / SECONDS_PER_DAY

    def subband_freqs_hz(self, subband: int) -> NDArray[np.float64]:
        """Ascending channel centres of ``subband`` (subband 0 is the top of the band)."""
        top = BAND_TOP_HZ - subband * self.n_chan * self.chan_width_hz
        return np.asarray(top - (self.n_chan - np.arange(self.n_chan) - 0.5) * self.chan_width_hz)


def antenna_gains(n_antennas: int, freqs_hz: NDArray[np.float64]) -> NDArray[np.complex128]:
    """The instrument's complex gains, shape (antenna, frequency, polarisation)."""
    rng = np.random.default_rng(GAIN_SEED)
    amp = rng.uniform(0.8, 1.2, (MAX_ANTENNAS, 1, 2))[:n_antennas]
    phase = rng.uniform(-math.pi, math.pi, (MAX_ANTENNAS, 1, 2))[:n_antennas]
    slope = rng.uniform(-0.02, 0.02, (MAX_ANTENNAS, 1, 2))[:n_antennas]  # rad per MHz
    df = (freqs_hz[None, :, None] - BAND_TOP_HZ) / 1e6
    ripple = 1.0 + 0.08 * np.cos(2 * math.pi * freqs_hz[None, :, None] / 50e6)
    return np.asarray(amp * ripple * np.exp(1j * (phase + slope * df)), dtype=np.complex128)


def _telescope(n_antennas: int) -> object:
    from astropy import units as u
    from astropy.coordinates import EarthLocation
    from pyuvdata import Telescope, utils

    location = EarthLocation(lon=OVRO_LON_DEG * u.deg, lat=OVRO_LAT_DEG * u.deg, height=OVRO_ALT_M * u.m)
    enu = np.array([[e, n, 0.0] for e, n in LAYOUT_EN_M[:n_antennas]])
    ecef = utils.ECEF_from_ENU(enu, center_loc=location)
    centre = np.array([location.x.to_value("m"), location.y.to_value("m"), location.z.to_value("m")])
    return Telescope.new(
        name="OVRO_DSA",
        location=location,
        antenna_positions=ecef - centre,
        antenna_names=[f"DSA-{i + 1:03d}" for i in range(n_antennas)],
        antenna_numbers=list(range(n_antennas)),
        antenna_diameters=[DISH_DIAMETER_M] * n_antennas,
        instrument="DSA",
        # Dual linear feeds, x to the east. The dishes only slew in elevation, on the
        # meridian: an alt-az mount at fixed azimuth is the closest of pyuvdata's types.
        x_orientation="east",
        feeds=["x", "y"],
        mount_type="alt-az",
        update_from_known=False,
    )


def simulate_group(
    directory: Path, group_id: str, spec: RawSpec, sources: Sequence[PointSource]
) -> list[Path]:
    """Write ``<directory>/<group_id>_sbNN.hdf5`` for every subband; returns the paths."""
    from pyuvdata.uvdata.initializers import new_uvdata

    offline_time()
    if not 2 <= spec.n_antennas <= MAX_ANTENNAS:
        raise ValueError(f"n_antennas must be between 2 and {MAX_ANTENNAS}")
    freqs = np.concatenate([spec.subband_freqs_hz(k) for k in range(spec.n_subbands)])
    spw_of_chan = np.repeat(np.arange(spec.n_subbands), spec.n_chan)
    times = spec.start_mjd + (np.arange(spec.n_times) + 0.5) * spec.integration_s / SECONDS_PER_DAY
    pairs = [(a, b) for a in range(spec.n_antennas) for b in range(a, spec.n_antennas)]
    uv = new_uvdata(
        freq_array=freqs,
        polarization_array=["xx", "yy"],
        times=times + JD_MINUS_MJD,
        telescope=_telescope(spec.n_antennas),
        antpairs=pairs,
        do_blt_outer=True,
        integration_time=spec.integration_s,
        channel_width=spec.chan_width_hz,
        flex_spw_id_array=spw_of_chan,
        empty=True,
        vis_units="uncalib",
        update_telescope_from_known=False,
    )
    ra0, dec0 = phase_centre(spec.mid_mjd, spec.dec_deg)
    uv.phase(ra=math.radians(ra0), dec=math.radians(dec0), cat_name="meridian", epoch="J2000")
    model = np.zeros((uv.Nblts, uv.Nfreqs), dtype=np.complex128)
    uvw = uv.uvw_array
    k_f = 2 * math.pi * freqs / SPEED_OF_LIGHT_M_S
    for source in sources:
        l_, m_, n_ = direction_cosines(source.ra_deg, source.dec_deg, ra0, dec0)
        sep = float(angular_separation_deg(ra0, dec0, source.ra_deg, source.dec_deg))
        beam = np.array([airy_primary_beam(sep, f)[()] for f in freqs])
        path = uvw[:, 0] * float(l_) + uvw[:, 1] * float(m_) + uvw[:, 2] * (float(n_) - 1.0)
        model += source.flux_jy * beam[None, :] * np.exp(1j * np.outer(path, k_f))
    gains = antenna_gains(spec.n_antennas, freqs)
    a1, a2 = uv.ant_1_array, uv.ant_2_array
    data = model[:, :, None] * gains[a1] * np.conj(gains[a2])
    autos = a1 == a2
    rng = np.random.default_rng(spec.seed)
    noise = rng.normal(0, spec.noise_jy, data.shape) + 1j * rng.normal(0, spec.noise_jy, data.shape)
    data = data + np.where(autos[:, None, None], 0.0, noise)
    # Autocorrelations: real, the total power (sky + a 100 Jy-equivalent system) times |g|^2.
    total = sum(s.flux_jy for s in sources) + 100.0
    data[autos] = (total * np.abs(gains[a1[autos]]) ** 2).astype(np.complex128)
    uv.data_array = data.astype(np.complex64)
    uv.flag_array = np.zeros(data.shape, dtype=bool)
    uv.nsample_array = np.ones(data.shape, dtype=np.float32)
    uv.unproject_phase()
    uv.extra_keywords = {"phase_center_dec": math.radians(spec.dec_deg)}
    uv.history = f"simulated by dsa110.demo.raw: {len(sources)} point sources"
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    uv.check()  # once for the group: each subband is a selection of these checked arrays
    for k in range(spec.n_subbands):
        sub = uv.select(spws=[k], inplace=False, run_check=False)
        assert sub is not None
        path = directory / f"{group_id}_sb{k:02d}.hdf5"
        path.unlink(missing_ok=True)  # the file step's placeholder; clobber=True would print
        sub.write_uvh5(str(path), run_check=False)
        paths.append(path)
    return paths


DEMO_RADIUS_DEG = 2.5
DEMO_MAX_SOURCES = 60


def demo_group(
    directory: Path,
    group_id: str,
    start_mjd: float,
    dec_deg: float,
    sky: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
    seed: int,
) -> list[Path]:
    """A demo group's 16 subband files from the demo's sky (RA, Dec, true flux arrays):
    the ``DEMO_MAX_SOURCES`` apparently brightest sources within ``DEMO_RADIUS_DEG``."""
    spec = RawSpec(start_mjd=start_mjd, dec_deg=dec_deg, seed=seed)
    ra0, dec0 = phase_centre(spec.mid_mjd, dec_deg)
    ra, dec, flux = sky
    sep = angular_separation_deg(ra0, dec0, ra, dec)
    near = np.flatnonzero(sep <= DEMO_RADIUS_DEG)
    apparent = flux[near] * airy_primary_beam(sep[near])
    keep = near[np.argsort(apparent)[::-1][:DEMO_MAX_SOURCES]]
    sources = [PointSource(float(ra[k]), float(dec[k]), float(flux[k])) for k in keep.tolist()]
    return simulate_group(directory, group_id, spec, sources)


async def add_raw_data(engine: AsyncEngine) -> tuple[list[str], int]:
    """Replace the subband files of every demo group that has them on disk with visibilities
    simulated from the demo's sky (the ``sources`` table: positions and catalog fluxes).

    Returns (the group ids, those with a calibrator first; the number of files). Run after
    the demo build (``dsa110-graph demo``): a newcomer can then run a ``workflow`` on them.
    """
    from sqlalchemy import select

    from dsa110.db.tables import groups, sources, subband_files

    async with engine.connect() as conn:
        sky_rows = (
            await conn.execute(
                select(sources.c.ra_deg, sources.c.dec_deg, sources.c.catalog_flux_jy).where(
                    sources.c.catalog_flux_jy.is_not(None)
                )
            )
        ).all()
        file_rows = (
            await conn.execute(
                select(groups.c.group_id, subband_files.c.path)
                .join(groups, groups.c.id == subband_files.c.group_pk)
                .order_by(groups.c.has_calibrator.desc(), groups.c.group_id, subband_files.c.subband_idx)
            )
        ).all()
    sky = (
        np.array([float(r[0]) for r in sky_rows]),
        np.array([float(r[1]) for r in sky_rows]),
        np.array([float(r[2]) for r in sky_rows]),
    )
    return await asyncio.to_thread(_simulate_on_disk, [(str(g), str(p)) for g, p in file_rows], sky)


def _simulate_on_disk(
    file_rows: list[tuple[str, str]],
    sky: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
) -> tuple[list[str], int]:
    on_disk: dict[str, list[Path]] = {}
    for group_id, path in file_rows:
        if Path(path).is_file():
            on_disk.setdefault(group_id, []).append(Path(path))
    made = 0
    for group_id, paths in on_disk.items():
        with h5py.File(paths[0], "r") as f:
            dec = math.degrees(float(f["Header/extra_keywords/phase_center_dec"][()]))
        start = datetime.fromisoformat(group_id).replace(tzinfo=UTC)
        start_mjd = start.timestamp() / SECONDS_PER_DAY + MJD_UNIX_EPOCH
        written = demo_group(paths[0].parent, group_id, start_mjd, dec, sky, seed=len(group_id) + made)
        made += len(written)
    return list(on_disk), made  # groups with a calibrator first
