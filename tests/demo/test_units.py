"""The demo's building blocks against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.time import Time
from astropy.utils import iers

from dsa110.demo.catalog import euclidean_fluxes, make_catalog, nvss_names
from dsa110.demo.instrument import OVRO_LON_DEG, airy_primary_beam
from dsa110.demo.observe import local_sidereal_deg
from dsa110.demo.variability import InjectedVariability


def test_nvss_names_by_hand():
    # 187.5 deg = 12.5 h = 12h30m00.0s; +42.5 deg = +42d30m00s.
    # 0.0375 deg = 9.0 s of time; -0.5 deg = -00d30m00s.
    # 359.99999 deg = 23h59m59.9976s, truncated to 59.9 s.
    assert nvss_names([187.5, 0.0375, 359.99999], [42.5, -0.5, 41.99999]) == [
        "NVSS J123000.0+423000",
        "NVSS J000009.0-003000",
        "NVSS J235959.9+415959",
    ]


def test_catalog_names_are_unique_and_match_positions():
    catalog = make_catalog(np.random.default_rng(5), 3000)
    assert len(set(catalog.names)) == 3000
    for name, ra, dec in zip(catalog.names[:50], catalog.ra_deg[:50], catalog.dec_deg[:50], strict=True):
        hh, mm, ss = int(name[6:8]), int(name[8:10]), float(name[10:14])
        parsed_ra = (hh + mm / 60 + ss / 3600) * 15
        assert 0 <= ra - parsed_ra < 0.1 / 3600 * 15 + 1e-9
        sign = -1 if name[14] == "-" else 1
        parsed_dec = sign * (int(name[15:17]) + int(name[17:19]) / 60 + int(name[19:21]) / 3600)
        assert 0 <= abs(dec) - abs(parsed_dec) < 1 / 3600 + 1e-9
    assert np.all(np.diff(catalog.ra_deg) >= 0)
    assert catalog.calibrators.size >= 1


def test_flux_counts_are_euclidean():
    flux = euclidean_fluxes(np.random.default_rng(7), 200_000)
    # N(>S) ~ S^-1.5: the fraction above 10 x S_min is 10^-1.5 = 3.16 %.
    assert np.mean(flux > 0.1) == pytest.approx(10**-1.5, rel=0.05)
    assert flux.min() >= 0.010


def test_airy_beam_by_hand():
    # FWHM = 1.029 lambda / D with lambda = c / 1.4 GHz = 0.21414 m, D = 4.7 m: 2.686 deg.
    half_width = math.degrees(1.029 * 299_792_458.0 / 1.4e9 / 4.7) / 2
    assert airy_primary_beam([0.0])[0] == 1.0
    assert airy_primary_beam([half_width])[0] == pytest.approx(0.5, abs=0.005)
    # First null at 1.2197 lambda / D.
    assert airy_primary_beam([math.degrees(1.2197 * 0.2141361 / 4.7)])[0] == pytest.approx(0.0, abs=1e-4)


def test_lst_agrees_with_astropy_sidereal_time():
    mjd = np.array([60990.0, 60990.5, 61000.123])
    with iers.conf.set_temp("auto_download", False), iers.conf.set_temp("iers_degraded_accuracy", "ignore"):
        times = Time(mjd, format="mjd", scale="utc")
        times.delta_ut1_utc = 0.0
        expected = times.sidereal_time("apparent", longitude=OVRO_LON_DEG).deg
    diff = (local_sidereal_deg(mjd) - expected + 180) % 360 - 180
    assert np.abs(diff).max() * 3600 < 0.01  # arcsec


def test_ese_model_by_hand():
    ese = InjectedVariability(0, "ese", {"t0_mjd": 100.0, "fwhm_days": 10.0, "depth": 0.3, "caustic": 0.0})
    f = ese.factor(np.array([100.0, 105.0, 160.0]))
    assert f[0] == pytest.approx(0.7)
    assert f[1] == pytest.approx(1 - 0.3 * 0.5)  # half depth at half the FWHM
    assert f[2] == pytest.approx(1.0)
    flare = InjectedVariability(
        1, "flare", {"t_peak_mjd": 10.0, "amplitude": 1.5, "rise_days": 0.3, "decay_days": 2.0}
    )
    assert flare.factor(np.array([10.0]))[0] == pytest.approx(2.5)
    assert flare.factor(np.array([12.0]))[0] == pytest.approx(1 + 1.5 * math.exp(-1))
