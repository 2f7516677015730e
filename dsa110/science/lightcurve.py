"""Normalised light curves by differential (ensemble) photometry.

Each image carries a calibration error shared by every source in it (2-5 % for DSA-110
5-minute images). Dividing a source's flux by the image's *ensemble correction* - how
bright stable reference sources look in that image relative to their usual level -
removes that shared part (legacy-pipeline-facts section 3.3, from the pipeline's
``photometry/normalize.py`` and ``photometry_normalization.md``):

1. Baseline of each reference ``b_r``: the median of its flux over its epochs (the legacy
   used the first 10 epochs because it streamed; given the whole history, the median of
   every epoch is the lower-variance choice and is what ``reference_baselines`` returns by
   default; ``first_n`` restores the legacy rule).
2. In image i, ratios R_r = F_ri / b_r for every reference measured there (finite, > 0).
3. With at least ``MIN_REFERENCES`` (3) ratios: C = median(R), sigma_C = 1.4826 MAD(R);
   references with |R - C| >= 3 sigma_C are clipped and C, sigma_C recomputed if at least
   3 remain.
4. F_norm = F / C and sigma_norm = sqrt((sigma / C)**2 + (F sigma_C / C**2)**2).

An image with fewer than 3 usable references gets no correction (C = 1, sigma_C = 0) and is
marked ``corrected=False``, rather than a silently wrong one. (The legacy API skipped the
baseline step, so every reference was dropped and its normalised curves were zeros.)

``refine_references`` adds the legacy's reference-stability rule in a robust form: a
reference whose own normalised curve scatters much more than the ensemble's typical
reference (intrinsic variability) is dropped and the corrections recomputed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

MIN_REFERENCES = 3
CLIP_NSIGMA = 3.0
MAD_TO_SIGMA = 1.4826


class NormalisationError(ValueError):
    """Inputs that cannot be normalised (shape mismatch, non-positive correction...)."""


@dataclass(frozen=True)
class Correction:
    """One image's ensemble correction: F_norm = F / factor."""

    factor: float
    sigma: float
    n_references: int
    corrected: bool = True


NO_CORRECTION = Correction(factor=1.0, sigma=0.0, n_references=0, corrected=False)


@dataclass(frozen=True)
class PhotometryRow:
    image_pk: int
    source_pk: int
    flux_jy: float
    err_jy: float


def normalise(
    flux: ArrayLike, err: ArrayLike, factor: ArrayLike, factor_sigma: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """F / C and sqrt((sigma / C)**2 + (F sigma_C / C**2)**2), elementwise."""
    f, s, c, sc = (np.asarray(x, dtype=np.float64) for x in (flux, err, factor, factor_sigma))
    try:
        f, s, c, sc = np.broadcast_arrays(f, s, c, sc)
    except ValueError:
        raise NormalisationError("flux, err, factor and factor_sigma must have matching shapes") from None
    if np.any(~np.isfinite(c)) or np.any(c <= 0):
        raise NormalisationError("correction factors must be finite and > 0")
    return f / c, np.hypot(s / c, f * sc / c**2)


def ensemble_correction(ratios: ArrayLike) -> Correction:
    """Median of the reference ratios with one 3 x MAD clipping pass (steps 3 of the recipe)."""
    r = np.asarray(ratios, dtype=np.float64).ravel()
    r = r[np.isfinite(r) & (r > 0)]
    if r.size < MIN_REFERENCES:
        return NO_CORRECTION
    c = float(np.median(r))
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(r - c)))
    if sigma > 0:
        kept = r[np.abs(r - c) < CLIP_NSIGMA * sigma]
        if kept.size >= MIN_REFERENCES and kept.size < r.size:
            r = kept
            c = float(np.median(r))
            sigma = MAD_TO_SIGMA * float(np.median(np.abs(r - c)))
    return Correction(factor=c, sigma=sigma, n_references=int(r.size))


def reference_baselines(
    rows: Iterable[PhotometryRow],
    reference_pks: Collection[int],
    first_n: int | None = None,
    mjd_of_image: Mapping[int, float] | None = None,
) -> dict[int, float]:
    """Median flux of each reference (over its first ``first_n`` epochs if given).

    ``first_n`` needs ``mjd_of_image`` to know which epochs come first. References with
    fewer than 3 finite positive points get no baseline and so never vote.
    """
    if first_n is not None and mjd_of_image is None:
        raise NormalisationError("first_n needs mjd_of_image")
    wanted = set(reference_pks)
    series: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        if row.source_pk in wanted and np.isfinite(row.flux_jy) and row.flux_jy > 0:
            when = mjd_of_image[row.image_pk] if mjd_of_image is not None else 0.0
            series[row.source_pk].append((when, row.flux_jy))
    baselines: dict[int, float] = {}
    for pk, points in series.items():
        used = sorted(points)[:first_n] if first_n is not None else points
        if len(used) >= MIN_REFERENCES:
            baselines[pk] = float(np.median([f for _, f in used]))
    return baselines


def image_corrections(
    rows: Iterable[PhotometryRow],
    baselines: Mapping[int, float],
) -> dict[int, Correction]:
    """Per-image ensemble corrections from the references' rows (those with a baseline)."""
    ratios: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        base = baselines.get(row.source_pk)
        if base is not None and base > 0:
            ratios[row.image_pk].append(row.flux_jy / base)
    return {image_pk: ensemble_correction(values) for image_pk, values in ratios.items()}


def refine_references(
    rows: Collection[PhotometryRow],
    baselines: Mapping[int, float],
    max_excess: float = 3.0,
) -> tuple[dict[int, float], dict[int, Correction]]:
    """Drop references that vary intrinsically, then recompute the corrections.

    A reference's scatter is 1.4826 MAD of F / (C b) - 1 over its epochs; references
    scattering more than ``max_excess`` times the median reference scatter are dropped
    (the legacy dropped chi2_nu > 2 over 30 days; a relative rule needs no error model).
    """
    first = image_corrections(rows, baselines)
    residuals: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        base = baselines.get(row.source_pk)
        corr = first.get(row.image_pk)
        if base is not None and corr is not None and corr.corrected:
            residuals[row.source_pk].append(row.flux_jy / (corr.factor * base) - 1.0)
    scatter = {
        pk: MAD_TO_SIGMA * float(np.median(np.abs(np.asarray(v) - np.median(v))))
        for pk, v in residuals.items()
        if len(v) >= MIN_REFERENCES
    }
    if len(scatter) < MIN_REFERENCES:
        return dict(baselines), first
    typical = float(np.median(list(scatter.values())))
    kept = {pk: b for pk, b in baselines.items() if scatter.get(pk, 0.0) <= max_excess * typical}
    return kept, image_corrections(rows, kept)


def normalised_points(
    image_pks: ArrayLike,
    flux: ArrayLike,
    err: ArrayLike,
    corrections: Mapping[int, Correction],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Normalise one source's points; images without a correction pass through unchanged.

    Returns (flux_norm, err_norm, corrected) aligned with the inputs.
    """
    pks = np.asarray(image_pks).ravel()
    f = np.asarray(flux, dtype=np.float64).ravel()
    s = np.asarray(err, dtype=np.float64).ravel()
    if not (pks.size == f.size == s.size):
        raise NormalisationError("image_pks, flux and err must have the same length")
    chosen = [corrections.get(int(pk), NO_CORRECTION) for pk in pks.tolist()]
    factor = np.array([c.factor for c in chosen], dtype=np.float64)
    sigma = np.array([c.sigma for c in chosen], dtype=np.float64)
    corrected = np.array([c.corrected for c in chosen], dtype=bool)
    f_norm, s_norm = normalise(f, s, factor, sigma)
    return f_norm, s_norm, corrected
