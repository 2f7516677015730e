"""Turning the sky into measurements: tiles rendered and measured (the normal demo), or
measurements synthesised analytically (the ``--large`` benchmark set).

Normal mode renders every tile (:mod:`dsa110.demo.images`), in a process pool when there
are many, and keeps the forced-photometry numbers of the pixels. ``--large`` skips pixels:
a measurement is what forced photometry on a pbcor tile would return on average,
``S = S_true f_var(t) g + sigma_loc N(0, 1)`` with ``sigma_loc = sigma_tile / P(r)`` (the
pbcor noise at the source), and ``sigma_loc`` itself known to ~5 % as an annulus estimate
is. That is what 10^7 rows need to be made in seconds.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dsa110.demo.catalog import Catalog
from dsa110.demo.images import TileResult, TileSpec, make_tiles
from dsa110.demo.instrument import STRIP_DEC_DEG, airy_primary_beam
from dsa110.demo.plan import TilePlan
from dsa110.demo.variability import InjectedVariability, flux_factors
from dsa110.science.healpix import angular_separation_deg

# Below this many tiles a pool costs more (interpreter start, imports) than it saves.
POOL_MIN_TILES = 300


@dataclass(frozen=True)
class Measured:
    """Successful measurements, one entry each; ``image`` indexes the plan's images."""

    image: NDArray[np.intp]
    source: NDArray[np.intp]
    peak_jy: NDArray[np.float64]
    rms_jy: NDArray[np.float64]
    snr: NDArray[np.float64]
    image_noise_jy: NDArray[np.float64]
    image_peak_jy: NDArray[np.float64]


def pair_fluxes(
    plan: TilePlan, catalog: Catalog, image_mjd: NDArray[np.float64], injected: list[InjectedVariability]
) -> NDArray[np.float64]:
    """True flux x variability x per-image gain for every (image, source) pair of the plan."""
    pair_image = plan.pair_image
    factors = flux_factors(injected, plan.pair_src, image_mjd[pair_image])
    return np.asarray(catalog.true_flux_jy[plan.pair_src] * factors * plan.gain[pair_image], dtype=np.float64)


def tile_specs(
    plan: TilePlan,
    *,
    catalog: Catalog,
    centre_ra: NDArray[np.float64],
    image_mjd: NDArray[np.float64],
    group_ids: list[str],
    date_obs: list[str],
    paths: list[str | None],
    fluxes: NDArray[np.float64],
    seed: int,
) -> list[TileSpec]:
    specs = []
    for i in range(plan.n_images):
        a, b = int(plan.offsets[i]), int(plan.offsets[i + 1])
        src = plan.pair_src[a:b]
        specs.append(
            TileSpec(
                index=i,
                group_id=group_ids[i],
                path=paths[i],
                centre_ra_deg=float(centre_ra[i]),
                centre_dec_deg=STRIP_DEC_DEG,
                mid_mjd=float(image_mjd[i]),
                date_obs=date_obs[i],
                noise_jy=float(plan.noise_jy[i]),
                beam_major_arcsec=float(plan.beam_major_arcsec[i]),
                beam_minor_arcsec=float(plan.beam_minor_arcsec[i]),
                beam_pa_deg=float(plan.beam_pa_deg[i]),
                seed=(seed, i),
                src_ra_deg=catalog.ra_deg[src],
                src_dec_deg=catalog.dec_deg[src],
                src_flux_jy=fluxes[a:b],
                measure=plan.pair_measure[a:b],
            )
        )
    return specs


def run_tiles(
    specs: list[TileSpec], write: bool, workers: int, on_done: Callable[[int], None] | None = None
) -> list[TileResult]:
    """Make every tile; with ``workers > 1`` in a process pool (results are identical)."""
    if workers <= 1 or len(specs) < POOL_MIN_TILES:
        results = []
        step = 50
        for start in range(0, len(specs), step):
            results.extend(make_tiles(specs[start : start + step], write))
            if on_done is not None:
                on_done(len(specs[start : start + step]))
        return results
    chunk = max(20, math.ceil(len(specs) / (workers * 12)))
    # fork (where available) starts in milliseconds and re-imports nothing; the caller
    # runs this before opening any database connection, so no driver thread is copied.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    out: list[TileResult] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            pool.submit(make_tiles, specs[s : s + chunk], write): len(specs[s : s + chunk])
            for s in range(0, len(specs), chunk)
        }
        for future in as_completed(futures):
            out.extend(future.result())
            if on_done is not None:
                on_done(futures[future])
    out.sort(key=lambda r: r.index)
    return out


def collect(plan: TilePlan, results: list[TileResult]) -> Measured:
    """Successful photometry of every tile, flattened in (image, source) order."""
    images, sources, peaks, rmss, snrs = [], [], [], [], []
    for r in results:
        a, b = int(plan.offsets[r.index]), int(plan.offsets[r.index + 1])
        src = plan.pair_src[a:b][plan.pair_measure[a:b]]
        ok = r.phot_ok
        images.append(np.full(int(ok.sum()), r.index, dtype=np.intp))
        sources.append(src[ok])
        peaks.append(r.phot_peak_jy[ok])
        rmss.append(r.phot_rms_jy[ok])
        snrs.append(r.phot_snr[ok])
    return Measured(
        image=np.concatenate(images) if images else np.zeros(0, np.intp),
        source=np.concatenate(sources) if sources else np.zeros(0, np.intp),
        peak_jy=np.concatenate(peaks) if peaks else np.zeros(0),
        rms_jy=np.concatenate(rmss) if rmss else np.zeros(0),
        snr=np.concatenate(snrs) if snrs else np.zeros(0),
        image_noise_jy=np.asarray([r.noise_jy for r in results]),
        image_peak_jy=np.asarray([r.peak_jy for r in results]),
    )


def synthesise(
    rng: np.random.Generator,
    plan: TilePlan,
    catalog: Catalog,
    centre_ra: NDArray[np.float64],
    fluxes: NDArray[np.float64],
) -> Measured:
    """Analytic forced photometry for every measured pair of the plan (no pixels)."""
    pair_image = plan.pair_image
    src = plan.pair_src
    sep = angular_separation_deg(
        catalog.ra_deg[src], catalog.dec_deg[src], centre_ra[pair_image], STRIP_DEC_DEG
    )
    sigma = plan.noise_jy[pair_image] / airy_primary_beam(sep)
    peak = fluxes + sigma * rng.standard_normal(src.shape[0])
    rms = sigma * (1.0 + 0.05 * rng.standard_normal(src.shape[0]))
    peak_per_image = np.full(plan.n_images, -np.inf)
    np.maximum.at(peak_per_image, pair_image, peak)
    return Measured(
        image=pair_image,
        source=src,
        peak_jy=peak,
        rms_jy=rms,
        snr=peak / rms,
        image_noise_jy=plan.noise_jy * (1.0 + 0.02 * rng.standard_normal(plan.n_images)),
        image_peak_jy=np.where(np.isfinite(peak_per_image), peak_per_image, 0.0),
    )
