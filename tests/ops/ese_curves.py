"""Light curves in the database for the ESE detection tests: sources, images, measurements."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import images, measurements, sources
from dsa110.science.healpix import healpix_index

FWHM_PER_SIGMA = 2.3548200450309493


def dip_curve(seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mjd, flux, error): 200 daily epochs, a 40 % Gaussian dip (FWHM 30 d) at MJD 60100 in
    2 % white noise. The detector finds it as a confirmed two-sided dip."""
    rng = np.random.default_rng(seed)
    t = 60000.0 + np.arange(200) * 1.0
    flux = (
        1
        - 0.4 * np.exp(-0.5 * ((t - 60100) * FWHM_PER_SIGMA / 30.0) ** 2)
        + 0.02 * rng.standard_normal(t.size)
    )
    return t, flux, np.full(t.size, 0.02)


def ingress_model(t: np.ndarray) -> np.ndarray:
    """A 60 %-deep lens ingress (Gaussian, FWHM 14 d) whose minimum is at MJD 60070."""
    return np.asarray(1 - 0.6 * np.exp(-0.5 * ((t - 60070) * FWHM_PER_SIGMA / 14.0) ** 2))


def ingress_curve(seed: int = 6) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mjd, flux, error): 70 daily epochs up to the day before :func:`ingress_model`'s
    minimum, in 2 % white noise. The detector finds an ongoing dip at its end."""
    rng = np.random.default_rng(seed)
    t = 60000.0 + np.arange(70) * 1.0
    return t, ingress_model(t) + 0.02 * rng.standard_normal(t.size), np.full(t.size, 0.02)


async def seed_curves(
    engine: AsyncEngine, curves: list[tuple[np.ndarray, np.ndarray]], t: np.ndarray
) -> list[int]:
    """One source (``T0``, ``T1``...) per (flux, error) curve, measured on one image per epoch
    of ``t``; returns the sources' pks."""
    async with engine.begin() as conn:
        src = []
        for i in range(len(curves)):
            ra, dec = 150.0 + 0.01 * i, 40.0
            r = await conn.execute(
                insert(sources)
                .values(
                    source_id=f"T{i}", ra_deg=ra, dec_deg=dec, healpix=int(healpix_index(ra, dec)), n_epochs=0,
                    sum_w=0.0, sum_wf=0.0, sum_wf2=0.0, sum_f=0.0, sum_f2=0.0,
                )
                .returning(sources.c.id)
            )  # fmt: skip
            src.append(int(r.scalar_one()))
    await add_epochs(engine, src, curves, t)
    return src


async def add_epochs(
    engine: AsyncEngine, src: list[int], curves: list[tuple[np.ndarray, np.ndarray]], t: np.ndarray
) -> None:
    """Images at ``t`` (one per epoch) and every source's measurement on each (``curves``
    in ``src`` order): a first batch, or points that arrive later."""
    async with engine.begin() as conn:
        img = []
        for m in t:
            r = await conn.execute(
                insert(images)
                .values(path=f"/i{m:.4f}.fits", type="image", created_at=datetime.now(UTC), mid_mjd=float(m))
                .returning(images.c.id)
            )
            img.append(int(r.scalar_one()))
        rows = [
            {"source_pk": src[i], "image_pk": img[j], "mjd": float(t[j]), "ra_deg": 150.0, "dec_deg": 40.0,
             "peak_flux_jy": float(f[j]), "peak_flux_err_jy": float(e[j]), "forced": True}
            for i, (f, e) in enumerate(curves)
            for j in range(t.size)
        ]  # fmt: skip
        await conn.execute(insert(measurements), rows)
