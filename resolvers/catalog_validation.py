"""Catalog validation of one image: astrometry, flux scale and completeness against a catalog.

The legacy QA (``qa/catalog_validation``) ran a threshold source finder on the FITS file
for every check. Here the pipeline's own products are used: the catalog entries that fall
on the image (``dsa110.science.catalogs.catalog_overlay``, through the image's WCS), the
image's measurements (its photometry at the monitored positions), and, for astrometry,
2-D Gaussian fits on the pixels around the brightest matched entries (the measurements
sit at the catalog positions by construction, so they cannot say where the sources are).

Thresholds follow the legacy module: a match within 10 arcsec; at least ``min_snr`` = 5;
astrometric offsets over 5 arcsec are an issue (a mean over half that, a warning); a flux
scale off by more than 20 % an issue, scatter (MAD) over 0.3 a warning; catalog fluxes
are scaled to the image frequency with alpha = -0.7. Completeness is judged on the catalog
sources the image should detect (at least twice the detection threshold), not on the whole
catalog down to 1 mJy (which made every legacy image fail).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord, match_coordinates_sky
from numpy.typing import NDArray
from sqlalchemy import select

from dsa110.db import tables as t
from dsa110.science.catalogs import CatalogEntry
from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import MAD_TO_SIGMA, SkyImage
from dsa110.science.fitting import fit_source_2d
from dsa110.science.threads import in_science_thread
from resolvers import science
from resolvers.context import GraphContext

if TYPE_CHECKING:
    from schema.types import Image

KINDS = ("astrometry", "flux_scale", "source_counts")
CATALOG_FREQ_GHZ = {"nvss": 1.4, "first": 1.4, "vla": 1.4, "vlass": 3.0, "rax": 0.888}
SPECTRAL_INDEX = -0.7
MAX_OFFSET_ARCSEC = 5.0
MAX_FLUX_RATIO_ERROR = 0.2
MAX_RATIO_SCATTER = 0.3
FLUX_RANGE_JY = (0.01, 10.0)
COUNTS_RANGE_JY = (0.001, 10.0)
COMPLETENESS_THRESHOLD = 0.95
COMPLETENESS_BINS = 10
MAX_FITS = 30  # astrometric fits per image (the brightest matches): a fit is ~10 ms
MAX_RADIUS_ARCSEC = 600.0
MAX_MIN_SNR = 1000.0


@dataclass
class ValidationResult:
    """One check; the metric fields that do not apply to its kind stay ``None``."""

    validation_type: str
    image_path: str
    catalog_used: str
    n_matched: int = 0
    n_catalog: int = 0
    n_detected: int = 0
    mean_offset_arcsec: float | None = None
    rms_offset_arcsec: float | None = None
    max_offset_arcsec: float | None = None
    offset_ra_arcsec: float | None = None
    offset_dec_arcsec: float | None = None
    mean_flux_ratio: float | None = None
    median_flux_ratio: float | None = None
    rms_flux_ratio: float | None = None
    flux_scale_error: float | None = None
    completeness: float | None = None
    completeness_limit_jy: float | None = None
    completeness_bins_jy: list[float] | None = None
    completeness_per_bin: list[float] | None = None
    catalog_counts_per_bin: list[int] | None = None
    detected_counts_per_bin: list[int] | None = None
    issues: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    matched_pairs: list[tuple[tuple[float, float], tuple[float, float], float]] = field(default_factory=list)
    matched_fluxes: list[tuple[float, float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class CatalogValidation:
    catalog: str
    search_radius_arcsec: float
    min_snr: float
    astrometry: ValidationResult
    flux_scale: ValidationResult
    source_counts: ValidationResult


@dataclass(frozen=True)
class _Inputs:
    """Catalog entries on the image, the image's measurements, and how they pair up."""

    path: str
    catalog: str
    entries: list[CatalogEntry]
    scaled_flux: NDArray[np.float64]  # catalog flux at the image frequency, Jy (nan if none)
    meas_ra: NDArray[np.float64]
    meas_dec: NDArray[np.float64]
    meas_peak: NDArray[np.float64]
    meas_snr: NDArray[np.float64]
    match: NDArray[np.intp]  # per entry: index of its nearest measurement within the radius, or -1
    noise_jy: float | None


def check_arguments(catalog: str, search_radius_arcsec: float, min_snr: float) -> None:
    if not catalog or len(catalog) > 32:
        raise ScienceInputError("BAD_CATALOG", "catalog must be a catalog name of 1 to 32 characters")
    if not math.isfinite(search_radius_arcsec) or not 0.0 < search_radius_arcsec <= MAX_RADIUS_ARCSEC:
        raise ScienceInputError("BAD_SIZE", f"searchRadiusArcsec must be in (0, {MAX_RADIUS_ARCSEC:g}]")
    if not math.isfinite(min_snr) or not 0.0 < min_snr <= MAX_MIN_SNR:
        raise ScienceInputError("BAD_SIZE", f"minSnr must be in (0, {MAX_MIN_SNR:g}]")


async def catalog_validation(
    ctx: GraphContext, image: Image, catalog: str, search_radius_arcsec: float, min_snr: float
) -> CatalogValidation:
    """All three checks of ``image`` against ``catalog`` (one file open, one measurement read)."""
    check_arguments(catalog, search_radius_arcsec, min_snr)
    catalog = catalog.lower()
    sky = await science.sky_image(ctx, image.path)
    on_image = await science.catalog_overlay(ctx, image.path, catalog, None, 100_000)
    async with ctx.engine.connect() as conn:
        m = t.measurements.c
        rows = (
            await conn.execute(
                select(m.ra_deg, m.dec_deg, m.peak_flux_jy, m.snr).where(m.image_pk == image.pk)
            )
        ).all()
    return await in_science_thread(
        _validate, sky, image, catalog, [e for e, _x, _y in on_image], rows, search_radius_arcsec, min_snr
    )


def _validate(
    sky: SkyImage,
    image: Image,
    catalog: str,
    entries: list[CatalogEntry],
    rows: list[Any],
    radius_arcsec: float,
    min_snr: float,
) -> CatalogValidation:
    inputs = _pair(sky, image, catalog, entries, rows, radius_arcsec)
    return CatalogValidation(
        catalog=catalog,
        search_radius_arcsec=radius_arcsec,
        min_snr=min_snr,
        astrometry=_astrometry(sky, inputs, min_snr, radius_arcsec),
        flux_scale=_flux_scale(inputs, min_snr),
        source_counts=_source_counts(inputs, min_snr),
    )


def _pair(
    sky: SkyImage, image: Image, catalog: str, entries: list[CatalogEntry], rows: list[Any], radius: float
) -> _Inputs:
    columns = np.array(
        [[r.ra_deg, r.dec_deg, r.peak_flux_jy, np.nan if r.snr is None else r.snr] for r in rows]
    )
    columns = columns.reshape(-1, 4).astype(np.float64)
    flux = np.array([np.nan if e.flux_jy is None else e.flux_jy for e in entries], dtype=np.float64)
    ref_ghz = CATALOG_FREQ_GHZ.get(catalog)
    if image.freq_ghz and ref_ghz:
        flux = flux * (image.freq_ghz / ref_ghz) ** SPECTRAL_INDEX
    match = np.full(len(entries), -1, dtype=np.intp)
    if entries and len(columns):
        cat = SkyCoord([e.ra_deg for e in entries] * u.deg, [e.dec_deg for e in entries] * u.deg)
        meas = SkyCoord(columns[:, 0] * u.deg, columns[:, 1] * u.deg)
        nearest, sep, _ = match_coordinates_sky(cat, meas)
        close = sep.arcsec <= radius
        match[close] = np.asarray(nearest)[close]
    noise = image.noise_jy if image.noise_jy and image.noise_jy > 0 else sky.noise_estimate()
    return _Inputs(
        path=image.path,
        catalog=catalog,
        entries=entries,
        scaled_flux=flux,
        meas_ra=columns[:, 0],
        meas_dec=columns[:, 1],
        meas_peak=columns[:, 2],
        meas_snr=columns[:, 3],
        match=match,
        noise_jy=float(noise) if noise is not None and math.isfinite(noise) and noise > 0 else None,
    )


def _detected(inputs: _Inputs, min_snr: float) -> NDArray[np.bool_]:
    """Per catalog entry: a measurement of this image within the radius at ``min_snr`` or more."""
    found = inputs.match >= 0
    if not found.any():
        return found
    snr = np.where(found, inputs.meas_snr[np.where(found, inputs.match, 0)], np.nan)
    with np.errstate(invalid="ignore"):
        return found & (snr >= min_snr)


def _result(kind: str, inputs: _Inputs) -> ValidationResult:
    return ValidationResult(validation_type=kind, image_path=inputs.path, catalog_used=inputs.catalog)


def _astrometry(sky: SkyImage, inputs: _Inputs, min_snr: float, radius: float) -> ValidationResult:
    result = _result("astrometry", inputs)
    detected = np.nonzero(_detected(inputs, min_snr))[0]
    result.n_catalog, result.n_detected = len(inputs.entries), len(detected)
    if len(detected) == 0:
        result.issues.append(f"No catalog source detected at {min_snr:g} sigma or more on this image")
        return result
    brightest = sorted(detected.tolist(), key=lambda i: -np.nan_to_num(inputs.scaled_flux[i]))[:MAX_FITS]
    beam = sky.beam.major_arcsec if sky.beam is not None else None
    box = max(4.0 * (beam or 0.0), 8.0 * max(sky.pixel_scales_arcsec()))
    d_ra: list[float] = []
    d_dec: list[float] = []
    for i in brightest:
        entry = inputs.entries[i]
        try:
            fit = fit_source_2d(sky, entry.ra_deg, entry.dec_deg, box_arcsec=box)
        except ScienceInputError:
            continue
        dra = (fit.ra_deg - entry.ra_deg + 540.0) % 360.0 - 180.0
        dra_arcsec = dra * 3600.0 * math.cos(math.radians(entry.dec_deg))
        ddec_arcsec = (fit.dec_deg - entry.dec_deg) * 3600.0
        sep = math.hypot(dra_arcsec, ddec_arcsec)
        if sep > radius:
            continue
        d_ra.append(dra_arcsec)
        d_dec.append(ddec_arcsec)
        result.matched_pairs.append(((fit.ra_deg, fit.dec_deg), (entry.ra_deg, entry.dec_deg), sep))
    result.n_matched = len(result.matched_pairs)
    if not result.matched_pairs:
        result.issues.append(f"No source position could be fitted within {radius:g} arcsec of the catalog")
        return result
    seps = np.array([p[2] for p in result.matched_pairs])
    result.mean_offset_arcsec = float(seps.mean())
    result.rms_offset_arcsec = float(np.sqrt(np.mean(seps**2)))
    result.max_offset_arcsec = float(seps.max())
    result.offset_ra_arcsec = float(np.mean(d_ra))
    result.offset_dec_arcsec = float(np.mean(d_dec))
    if result.max_offset_arcsec > MAX_OFFSET_ARCSEC:
        result.issues.append(
            f"Maximum astrometric offset ({result.max_offset_arcsec:.2f} arcsec) "
            f"exceeds {MAX_OFFSET_ARCSEC:g} arcsec"
        )
    if result.mean_offset_arcsec > MAX_OFFSET_ARCSEC / 2.0:
        result.warnings.append(
            f"Mean astrometric offset ({result.mean_offset_arcsec:.2f} arcsec) is significant"
        )
    if result.n_matched < 3:
        result.warnings.append(f"Only {result.n_matched} source positions fitted (at least 3 recommended)")
    return result


def _flux_scale(inputs: _Inputs, min_snr: float) -> ValidationResult:
    result = _result("flux_scale", inputs)
    lo, hi = FLUX_RANGE_JY
    with np.errstate(invalid="ignore"):
        usable = _detected(inputs, min_snr) & (inputs.scaled_flux >= lo) & (inputs.scaled_flux <= hi)
    result.n_catalog, result.n_detected = len(inputs.entries), int(usable.sum())
    for i in np.nonzero(usable)[0]:
        measured, expected = float(inputs.meas_peak[inputs.match[i]]), float(inputs.scaled_flux[i])
        result.matched_fluxes.append((measured, expected, measured / expected))
    result.n_matched = len(result.matched_fluxes)
    if not result.matched_fluxes:
        result.issues.append(f"No catalog source between {lo:g} and {hi:g} Jy detected at {min_snr:g} sigma")
        return result
    ratios = np.array([f[2] for f in result.matched_fluxes])
    median = float(np.median(ratios))
    result.mean_flux_ratio = float(ratios.mean())
    result.median_flux_ratio = median
    result.rms_flux_ratio = float(MAD_TO_SIGMA * np.median(np.abs(ratios - median)))
    result.flux_scale_error = abs(median - 1.0)
    if result.flux_scale_error > MAX_FLUX_RATIO_ERROR:
        result.issues.append(
            f"Flux scale error ({100 * result.flux_scale_error:.1f}%) "
            f"exceeds {100 * MAX_FLUX_RATIO_ERROR:.0f}%"
        )
    if result.rms_flux_ratio > MAX_RATIO_SCATTER:
        result.warnings.append(f"High scatter in flux ratios (RMS={result.rms_flux_ratio:.2f})")
    if result.n_matched < 3:
        result.warnings.append(f"Low number of flux comparisons: {result.n_matched} (at least 3 recommended)")
    return result


def _source_counts(inputs: _Inputs, min_snr: float) -> ValidationResult:
    result = _result("source_counts", inputs)
    lo, hi = COUNTS_RANGE_JY
    flux = inputs.scaled_flux
    with np.errstate(invalid="ignore"):
        counted = (flux >= lo) & (flux <= hi)
        result.n_detected = int(np.sum(inputs.meas_snr >= min_snr))
    detected = _detected(inputs, min_snr) & counted
    result.n_catalog, result.n_matched = int(counted.sum()), int(detected.sum())
    if result.n_catalog == 0:
        result.completeness = 0.0
        result.issues.append(f"No catalog sources between {lo:g} and {hi:g} Jy on this image")
        return result
    result.completeness = result.n_matched / result.n_catalog
    _bin_counts(result, flux[counted], detected[counted])
    if inputs.noise_jy is not None:
        bright = counted & (flux >= 2.0 * min_snr * inputs.noise_jy)
        if bright.any():
            share = float(detected[bright].sum() / bright.sum())
            if share < COMPLETENESS_THRESHOLD:
                result.issues.append(
                    f"Only {100 * share:.1f}% of the catalog sources above {2 * min_snr:g} sigma "
                    f"({2e3 * min_snr * inputs.noise_jy:.1f} mJy) are detected"
                )
    if result.completeness_limit_jy is None:
        result.warnings.append("Could not determine a completeness limit (no flux bin is 95% complete)")
    if result.n_matched < 3:
        result.warnings.append(f"Low number of detected catalog sources ({result.n_matched})")
    return result


def _bin_counts(result: ValidationResult, flux: NDArray[np.float64], detected: NDArray[np.bool_]) -> None:
    """Completeness in logarithmic flux bins; the limit is the faintest bin centre from which
    every brighter bin holding sources is at least 95 % complete."""
    low, high = float(flux.min()), float(flux.max())
    edges = np.logspace(np.log10(low), np.log10(high if high > low else low * 1.001), COMPLETENESS_BINS + 1)
    which = np.clip(np.searchsorted(edges, flux, side="right") - 1, 0, COMPLETENESS_BINS - 1)
    total = np.bincount(which, minlength=COMPLETENESS_BINS)
    found = np.bincount(which, weights=detected.astype(float), minlength=COMPLETENESS_BINS).astype(int)
    per_bin = np.divide(found, total, out=np.zeros(COMPLETENESS_BINS), where=total > 0)
    centres = np.sqrt(edges[:-1] * edges[1:])
    result.completeness_bins_jy = centres.tolist()
    result.completeness_per_bin = per_bin.tolist()
    result.catalog_counts_per_bin = total.tolist()
    result.detected_counts_per_bin = found.tolist()
    limit: float | None = None
    for b in range(COMPLETENESS_BINS - 1, -1, -1):
        if total[b] == 0:
            continue
        if per_bin[b] < COMPLETENESS_THRESHOLD:
            break
        limit = float(centres[b])
    result.completeness_limit_jy = limit
