"""An NVSS-like catalog of the drift-scan strip.

Positions are uniform on the sphere inside the strip (RA uniform, sin(Dec) uniform).
Flux densities follow Euclidean source counts, ``N(>S) = N0 (S / S_min)^-1.5``
(a static Euclidean universe; observed 1.4 GHz counts are close to it above a few mJy,
Condon 1984, ApJ 287, 461), drawn by inverting the cumulative distribution:
``S = S_min * u^(-1/1.5)`` for ``u`` uniform in (0, 1], truncated at ``S_MAX_JY``. With
2,000 sources above 10 mJy about two are brighter than 1 Jy: the bright tail that gives
the strip its calibrators.

Names follow the NVSS convention ``NVSS JHHMMSS.s+DDMMSS``: RA in hours, minutes and
seconds of time to 0.1 s, Dec in degrees, arcminutes and arcseconds, every field
truncated (not rounded), as IAU designations are (IAU Specifications for Nomenclature).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dsa110.demo.instrument import STRIP_DEC_DEG, STRIP_HALF_WIDTH_DEG
from dsa110.science.healpix import healpix_index

S_MIN_JY = 0.010
S_MAX_JY = 30.0
COUNT_SLOPE = 1.5
CALIBRATOR_MIN_JY = 1.0
MAX_CALIBRATORS = 3
# If the random strip holds no source above CALIBRATOR_MIN_JY, its brightest source is
# raised to this: a real strip is chosen to contain a calibrator.
PROMOTED_CALIBRATOR_JY = 2.5


@dataclass(frozen=True)
class Catalog:
    """Arrays of one entry per source, sorted by RA; ``true_flux_jy`` is what the sky holds
    today (NVSS was measured decades ago), ``flux_jy`` what the catalog says."""

    names: list[str]
    ra_deg: NDArray[np.float64]
    dec_deg: NDArray[np.float64]
    flux_jy: NDArray[np.float64]
    flux_err_jy: NDArray[np.float64]
    true_flux_jy: NDArray[np.float64]
    healpix: NDArray[np.int64]
    calibrators: NDArray[np.intp]

    def __len__(self) -> int:
        return len(self.names)


def nvss_names(ra_deg: ArrayLike, dec_deg: ArrayLike) -> list[str]:
    """``NVSS JHHMMSS.s+DDMMSS`` for each position (fields truncated)."""
    ra = np.mod(np.asarray(ra_deg, dtype=float), 360.0)
    dec = np.asarray(dec_deg, dtype=float)
    # Tenths of a second of time; 360 deg = 24 h = 864,000 tenths. Small epsilon keeps
    # exact boundaries (e.g. 15.0 deg = 1h exactly) from falling one tenth short.
    tenths = np.floor(ra / 15.0 * 36000.0 + 1e-7).astype(np.int64) % 864_000
    hh, rem = np.divmod(tenths, 36_000)
    mm, ss_tenths = np.divmod(rem, 600)
    arcsec = np.floor(np.abs(dec) * 3600.0 + 1e-7).astype(np.int64)
    dd, rem_d = np.divmod(arcsec, 3600)
    dm, ds = np.divmod(rem_d, 60)
    names = []
    for h, m, st, sign, d, am, asec in zip(
        hh.tolist(),
        mm.tolist(),
        ss_tenths.tolist(),
        (dec < 0).tolist(),
        dd.tolist(),
        dm.tolist(),
        ds.tolist(),
        strict=True,
    ):
        names.append(
            f"NVSS J{h:02d}{m:02d}{st // 10:02d}.{st % 10:d}{'-' if sign else '+'}{d:02d}{am:02d}{asec:02d}"
        )
    return names


def euclidean_fluxes(rng: np.random.Generator, n: int, s_min_jy: float = S_MIN_JY) -> NDArray[np.float64]:
    """``n`` flux densities with ``N(>S) ~ S^-1.5`` above ``s_min_jy``, truncated at ``S_MAX_JY``."""
    u_max = 1.0
    u_min = (S_MAX_JY / s_min_jy) ** -COUNT_SLOPE
    u = rng.uniform(u_min, u_max, n)
    return np.asarray(s_min_jy * u ** (-1.0 / COUNT_SLOPE), dtype=np.float64)


def _strip_positions(rng: np.random.Generator, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    lo = np.sin(np.radians(STRIP_DEC_DEG - STRIP_HALF_WIDTH_DEG))
    hi = np.sin(np.radians(STRIP_DEC_DEG + STRIP_HALF_WIDTH_DEG))
    return rng.uniform(0.0, 360.0, n), np.degrees(np.arcsin(rng.uniform(lo, hi, n)))


def make_catalog(rng: np.random.Generator, n_sources: int) -> Catalog:
    """Draw ``n_sources`` sources in the strip with unique NVSS names, sorted by RA."""
    if n_sources < 1:
        raise ValueError("the catalog needs at least one source")
    ra, dec = _strip_positions(rng, n_sources)
    # Two sources within 0.1 s of RA and 1 arcsec of Dec would share a name: redraw them.
    for _ in range(100):
        names = nvss_names(ra, dec)
        _, first = np.unique(np.asarray(names), return_index=True)
        duplicate = np.ones(n_sources, dtype=bool)
        duplicate[first] = False
        if not duplicate.any():
            break
        ra[duplicate], dec[duplicate] = _strip_positions(rng, int(duplicate.sum()))
    else:  # pragma: no cover - needs ~10^9 sources in the strip
        raise RuntimeError("could not give every source a unique name")
    flux = euclidean_fluxes(rng, n_sources)
    # NVSS errors: 0.45 mJy of noise and 3 % of flux-scale uncertainty (Condon et al. 1998).
    flux_err = np.hypot(0.00045, 0.03 * flux)
    true_flux = flux * rng.lognormal(0.0, 0.05, n_sources)
    order = np.argsort(ra, kind="stable")
    ra, dec, flux, flux_err, true_flux = ra[order], dec[order], flux[order], flux_err[order], true_flux[order]
    names = [names[i] for i in order.tolist()]
    bright = np.flatnonzero(flux >= CALIBRATOR_MIN_JY)
    if bright.size == 0:
        brightest = int(np.argmax(flux))
        flux[brightest] = true_flux[brightest] = PROMOTED_CALIBRATOR_JY
        flux_err[brightest] = np.hypot(0.00045, 0.03 * PROMOTED_CALIBRATOR_JY)
        bright = np.array([brightest])
    calibrators = bright[np.argsort(-flux[bright], kind="stable")][:MAX_CALIBRATORS]
    return Catalog(
        names=names,
        ra_deg=ra,
        dec_deg=dec,
        flux_jy=flux,
        flux_err_jy=flux_err,
        true_flux_jy=true_flux,
        healpix=healpix_index(ra, dec),
        calibrators=np.asarray(calibrators, dtype=np.intp),
    )
