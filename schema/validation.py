"""Catalog validation of an image (astrometry, flux scale, completeness) as graph types.

The numbers come from ``resolvers.catalog_validation``; these types only carry them.
"""

from __future__ import annotations

import strawberry

from resolvers import catalog_validation as cv


@strawberry.type(description="A fitted source position and the catalog position it was matched to.")
class PositionPair:
    measured_ra_deg: float
    measured_dec_deg: float
    catalog_ra_deg: float
    catalog_dec_deg: float
    separation_arcsec: float


@strawberry.type(description="A measured peak flux and the catalog flux at the image frequency.")
class FluxPair:
    measured_jy: float
    catalog_jy: float
    ratio: float


@strawberry.type(
    description="One check of an image against a catalog. Metrics of another kind of check are null."
)
class CatalogValidationResult:
    validation_type: str = strawberry.field(description="`astrometry`, `flux_scale` or `source_counts`.")
    n_matched: int
    n_catalog: int = strawberry.field(description="Catalog entries on the image (in range, for counts).")
    n_detected: int
    mean_offset_arcsec: float | None
    rms_offset_arcsec: float | None
    max_offset_arcsec: float | None
    offset_ra_arcsec: float | None = strawberry.field(
        description="Mean measured - catalog, along RA on the sky."
    )
    offset_dec_arcsec: float | None
    mean_flux_ratio: float | None = strawberry.field(description="Measured / catalog peak flux, mean.")
    median_flux_ratio: float | None
    rms_flux_ratio: float | None = strawberry.field(description="1.4826 x MAD of the flux ratios.")
    flux_scale_error: float | None = strawberry.field(description="|median ratio - 1|.")
    completeness: float | None = strawberry.field(description="Detected / catalog sources in range.")
    completeness_limit_jy: float | None
    completeness_bins_jy: list[float] | None
    completeness_per_bin: list[float] | None
    catalog_counts_per_bin: list[int] | None
    detected_counts_per_bin: list[int] | None
    issues: list[str]
    warnings: list[str]
    positions: list[PositionPair]
    fluxes: list[FluxPair]

    @strawberry.field
    def has_issues(self) -> bool:
        return bool(self.issues)

    @strawberry.field
    def has_warnings(self) -> bool:
        return bool(self.warnings)


@strawberry.type(description="An image checked against a reference catalog.")
class CatalogValidation:
    catalog: str
    search_radius_arcsec: float
    min_snr: float
    astrometry: CatalogValidationResult
    flux_scale: CatalogValidationResult
    source_counts: CatalogValidationResult


def result_of(r: cv.ValidationResult) -> CatalogValidationResult:
    return CatalogValidationResult(
        validation_type=r.validation_type,
        n_matched=r.n_matched,
        n_catalog=r.n_catalog,
        n_detected=r.n_detected,
        mean_offset_arcsec=r.mean_offset_arcsec,
        rms_offset_arcsec=r.rms_offset_arcsec,
        max_offset_arcsec=r.max_offset_arcsec,
        offset_ra_arcsec=r.offset_ra_arcsec,
        offset_dec_arcsec=r.offset_dec_arcsec,
        mean_flux_ratio=r.mean_flux_ratio,
        median_flux_ratio=r.median_flux_ratio,
        rms_flux_ratio=r.rms_flux_ratio,
        flux_scale_error=r.flux_scale_error,
        completeness=r.completeness,
        completeness_limit_jy=r.completeness_limit_jy,
        completeness_bins_jy=r.completeness_bins_jy,
        completeness_per_bin=r.completeness_per_bin,
        catalog_counts_per_bin=r.catalog_counts_per_bin,
        detected_counts_per_bin=r.detected_counts_per_bin,
        issues=r.issues,
        warnings=r.warnings,
        positions=[
            PositionPair(
                measured_ra_deg=m[0],
                measured_dec_deg=m[1],
                catalog_ra_deg=c[0],
                catalog_dec_deg=c[1],
                separation_arcsec=sep,
            )
            for m, c, sep in r.matched_pairs
        ],
        fluxes=[FluxPair(measured_jy=a, catalog_jy=b, ratio=q) for a, b, q in r.matched_fluxes],
    )


def validation_of(v: cv.CatalogValidation) -> CatalogValidation:
    return CatalogValidation(
        catalog=v.catalog,
        search_radius_arcsec=v.search_radius_arcsec,
        min_snr=v.min_snr,
        astrometry=result_of(v.astrometry),
        flux_scale=result_of(v.flux_scale),
        source_counts=result_of(v.source_counts),
    )
