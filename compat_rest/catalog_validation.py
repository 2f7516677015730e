"""``/api/qa/images/{id}/catalog-validation`` (+ ``/run``): an image checked against a catalog.

The Sky page's validation panel (legacy-pipeline-facts §6, ``CatalogValidationResults``)
asks for ``{astrometry?, flux_scale?, source_counts?}``, each a result in the legacy
``CatalogValidationResult`` fields. It formats a metric with ``.toFixed`` whenever the
key is not ``undefined``, so a metric that does not apply (or could not be measured) is
left out rather than sent as ``null`` (which crashes the panel). The numbers are the
graph's ``Image.catalogValidation`` (see ``resolvers/catalog_validation.py``); the legacy
server's 24 h cache is not kept: the check is computed on request.
"""

from __future__ import annotations

from typing import Any

from compat_rest.catalog import image_reference
from compat_rest.errors import validation_error
from compat_rest.params import Args, Float, Json, PathStr, Str
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import BOOL, INT, NUM, STR, arr, obj
from dsa110.auth.identity import Role
from dsa110.settings import Settings

TAG = "qa"
KINDS = ("astrometry", "flux_scale", "source_counts")
CATALOGS = ("nvss", "vlass", "first", "rax")
IMAGE_REF = PathStr("image_ref", "Image id, or the image's path", max_length=4096)

RESULT_FIELDS = """
  validationType nMatched nCatalog nDetected meanOffsetArcsec rmsOffsetArcsec maxOffsetArcsec
  offsetRaArcsec offsetDecArcsec meanFluxRatio medianFluxRatio rmsFluxRatio fluxScaleError
  completeness completenessLimitJy completenessBinsJy completenessPerBin catalogCountsPerBin
  detectedCountsPerBin issues warnings hasIssues hasWarnings
  positions { measuredRaDeg measuredDecDeg catalogRaDeg catalogDecDeg separationArcsec }
  fluxes { measuredJy catalogJy ratio }
"""
VALIDATION = f"""
query RestCatalogValidation(
  $imageId: Int, $path: String, $catalog: String!, $radius: Float!, $minSnr: Float!
) {{
  image(imageId: $imageId, path: $path) {{
    path
    catalogValidation(catalog: $catalog, searchRadiusArcsec: $radius, minSnr: $minSnr) {{
      astrometry {{ {RESULT_FIELDS} }}
      fluxScale {{ {RESULT_FIELDS} }}
      sourceCounts {{ {RESULT_FIELDS} }}
    }}
  }}
}}
"""
_GRAPH_KEY = {"astrometry": "astrometry", "flux_scale": "fluxScale", "source_counts": "sourceCounts"}
# legacy key -> graph key, for the metrics that are left out when null
_METRICS = {
    "mean_offset_arcsec": "meanOffsetArcsec",
    "rms_offset_arcsec": "rmsOffsetArcsec",
    "max_offset_arcsec": "maxOffsetArcsec",
    "offset_ra_arcsec": "offsetRaArcsec",
    "offset_dec_arcsec": "offsetDecArcsec",
    "mean_flux_ratio": "meanFluxRatio",
    "median_flux_ratio": "medianFluxRatio",
    "rms_flux_ratio": "rmsFluxRatio",
    "flux_scale_error": "fluxScaleError",
    "completeness": "completeness",
    "completeness_limit_jy": "completenessLimitJy",
    "completeness_bins_jy": "completenessBinsJy",
    "completeness_per_bin": "completenessPerBin",
    "catalog_counts_per_bin": "catalogCountsPerBin",
    "detected_counts_per_bin": "detectedCountsPerBin",
}


def result(node: dict[str, Any], image_path: str, catalog: str) -> dict[str, Any]:
    """One legacy ``CatalogValidationResult``; metrics that are null are omitted."""
    shaped: dict[str, Any] = {
        "validation_type": node["validationType"],
        "image_path": image_path,
        "catalog_used": catalog,
        "n_matched": node["nMatched"],
        "n_catalog": node["nCatalog"],
        "n_detected": node["nDetected"],
    }
    shaped.update({key: node[g] for key, g in _METRICS.items() if node[g] is not None})
    shaped.update(
        has_issues=node["hasIssues"],
        has_warnings=node["hasWarnings"],
        issues=node["issues"],
        warnings=node["warnings"],
        # The legacy tuples: ((ra, dec) measured, (ra, dec) catalog, separation) and
        # (measured flux, catalog flux, ratio).
        matched_pairs=[
            [
                [p["measuredRaDeg"], p["measuredDecDeg"]],
                [p["catalogRaDeg"], p["catalogDecDeg"]],
                p["separationArcsec"],
            ]
            for p in node["positions"]
        ],
        matched_fluxes=[[f["measuredJy"], f["catalogJy"], f["ratio"]] for f in node["fluxes"]],
    )
    return shaped


def kinds(args: Args) -> tuple[str, ...]:
    if args.get("validation_types") is not None:
        asked = args["validation_types"]
        if not isinstance(asked, list) or not asked or any(k not in KINDS for k in asked):
            raise validation_error(
                f"`validation_types` must be a non-empty list of {', '.join(KINDS)}", location="body"
            )
        return tuple(k for k in KINDS if k in asked)
    kind = args.get("validation_type") or "all"
    return KINDS if kind == "all" else (kind,)


def variables(args: Args) -> dict[str, Any]:
    kinds(args)  # refuse a bad list before the graph opens the image
    return {
        **image_reference(args["image_ref"]),
        "catalog": args["catalog"],
        "radius": args["search_radius_arcsec"],
        "minSnr": args["min_snr"],
    }


def shape(data: dict[str, Any], args: Args) -> dict[str, Any]:
    image = data["image"]
    found = image["catalogValidation"]
    return {kind: result(found[_GRAPH_KEY[kind]], image["path"], args["catalog"]) for kind in kinds(args)}


RESULT = obj(
    validation_type=STR,
    image_path=STR,
    catalog_used=STR,
    n_matched=INT,
    n_catalog=INT,
    n_detected=INT,
    has_issues=BOOL,
    has_warnings=BOOL,
    issues=arr(STR),
    warnings=arr(STR),
    matched_pairs=arr({"type": "array"}),
    matched_fluxes=arr(arr(NUM)),
)
RESULTS = {
    "type": "object",
    "properties": {kind: RESULT for kind in KINDS},
    "description": "The checks asked for; a metric that does not apply is omitted",
}
TUNING = [
    Float("search_radius_arcsec", 10.0, ge=0.1, le=600.0, description="Match radius, arcsec"),
    Float("min_snr", 5.0, ge=0.1, le=1000.0, description="Detection threshold, sigma"),
]


def routes(settings: Settings) -> list[RestRoute]:
    catalog = Str("catalog", "nvss", enum=CATALOGS)
    return [
        # Before `/qa/{ms_path:path}` (the QA section), which would take them for MS paths.
        graphql_route(
            "POST",
            "/qa/images/{image_ref:path}/catalog-validation/run",
            VALIDATION,
            shape,
            variables=variables,
            params=[IMAGE_REF],
            body=[
                catalog,
                Json("validation_types", description="Checks to run (default: all three)"),
                *TUNING,
            ],
            response=RESULTS,
            errors=(400, 404, 422),
            tag=TAG,
            summary="Run the catalog checks of an image now (not stored)",
            role=Role.VIEWER,  # a read sent as POST: nothing is written
        ),
        graphql_route(
            "GET",
            "/qa/images/{image_ref:path}/catalog-validation",
            VALIDATION,
            shape,
            variables=variables,
            params=[IMAGE_REF, catalog, Str("validation_type", "all", enum=("all", *KINDS)), *TUNING],
            response=RESULTS,
            errors=(400, 404, 422),
            tag=TAG,
            summary="An image checked against a catalog: astrometry, flux scale, completeness",
        ),
    ]
