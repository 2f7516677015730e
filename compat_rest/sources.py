"""Sources: search, detail, variability, light curve, detections, postage stamps.

External catalogs (SIMBAD, NED, Gaia) near a source: ``compat_rest.source_catalogs``.

The per-source paths are also served under ``/ese/candidates/{source_id}/...`` (the ESE
section calls :func:`source_subroutes` with that prefix): the legacy API keyed both by
the source name.
"""

from __future__ import annotations

from typing import Any, Final

from compat_rest import table_order
from compat_rest.convert import after_offset, compact, iso_from_mjd, mjy
from compat_rest.errors import validation_error
from compat_rest.paging import LEGACY_MAX_LIMIT
from compat_rest.params import Args, Float, Int, Obj, Param, PathStr, Str
from compat_rest.routing import RestRoute, graphql_route, multi_query_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, null, obj
from compat_rest.source_catalogs import external_catalogs_route
from dsa110.auth.identity import Role
from dsa110.settings import Settings

TAG = "sources"
SOURCE_ID = PathStr("source_id", "Catalog name, e.g. `NVSS J123456.7+420312`", max_length=128)

# Legacy sort names -> the graph's SourceOrderField.
SORT_FIELDS = {
    "source_id": "SOURCE_ID",
    "ra_deg": "RA",
    "dec_deg": "DEC",
    "nvss_flux_mjy": "CATALOG_FLUX",
    "mean_flux_mjy": "MEAN_FLUX",
    "eta": "ETA",
    "v": "V",
    "chi2_nu": "CHI2_NU",
    "sigma_deviation": "SIGMA_DEVIATION",
    "n_obs": "N_EPOCHS",
    "last_measured_at": "LAST_MJD",
    "max_snr": "MAX_SNR",
}
VARIABLE_CHI2_NU = 3.0  # the legacy rule `is_variable = chi_sq_nu > 3`, on a correct chi2

SOURCE_FIELDS = """
  sourceId raDeg decDeg catalogFluxJy nEpochs meanFluxJy minFluxJy maxFluxJy
  v eta chi2Nu sigmaDeviation vsAbsSignificantMax mAbsSignificantMax firstMjd lastMjd
"""

SEARCH = f"""
query RestSourceSearch(
  $filter: SourceFilter, $orderBy: SourceOrderField!, $direction: OrderDirection!,
  $first: Int!, $after: String, $withPoints: Boolean!
) {{
  sources(filter: $filter, orderBy: $orderBy, direction: $direction, first: $first, after: $after) {{
    totalCount
    pageInfo {{ hasNextPage endCursor }}
    nodes {{
      {SOURCE_FIELDS}
      lightCurve @include(if: $withPoints) {{ points {{ mjd time fluxJy fluxErrJy image {{ path }} }} }}
    }}
  }}
}}
"""

DETAIL = f"""
query RestSource($sourceId: String!) {{
  source(sourceId: $sourceId) {{
    {SOURCE_FIELDS}
    maxSnr newSource newHighSigma eseHeuristicScore
    forced: measurements(first: 0, filter: {{forced: true}}) {{ totalCount }}
  }}
}}
"""

VARIABILITY = (
    f"query RestVariability($sourceId: String!) {{ source(sourceId: $sourceId) {{ {SOURCE_FIELDS} }} }}"
)

LIGHTCURVE = """
query RestLightCurve($sourceId: String!) {
  source(sourceId: $sourceId) {
    sourceId raDeg decDeg
    lightCurve {
      nReferences
      points { mjd time fluxJy fluxErrJy normFluxJy normFluxErrJy corrected imageId image { path } }
    }
  }
}
"""

DETECTIONS = """
query RestDetections(
  $sourceId: String!, $first: Int!, $after: String,
  $orderBy: MeasurementOrderField, $direction: OrderDirection!, $filter: MeasurementFilter
) {
  source(sourceId: $sourceId) {
    sourceId
    measurements(first: $first, after: $after, orderBy: $orderBy, direction: $direction, filter: $filter) {
      totalCount pageInfo { hasNextPage endCursor }
      nodes {
        mjd time raDeg decDeg peakFluxJy peakFluxErrJy intFluxJy intFluxErrJy snr forced
        image { imageId path freqGhz }
      }
    }
  }
}
"""

STAMPS = """
query RestStamps($sourceId: String!, $size: Float!, $limit: Int!) {
  source(sourceId: $sourceId) {
    sourceId raDeg decDeg
    postageStamps(sizeArcsec: $size, limit: $limit) { imageId mjd fitsUrl pngUrl image { path } }
  }
}
"""

# --- shapes ----------------------------------------------------------------------------

VARIABILITY_METRICS = obj(
    v=null(NUM),
    eta=null(NUM),
    vs_mean=null(NUM),
    m_mean=null(NUM),
    n_epochs=INT,
    chi2_nu=null(NUM),
    sigma_deviation=null(NUM),
    vs_abs_significant_max=null(NUM),
    m_abs_significant_max=null(NUM),
)
FLUX_POINT = obj(
    mjd=NUM, time=TIME, flux_jy=NUM, flux_err_jy=null(NUM), image_id=null(STR), image_path=null(STR)
)
SEARCH_ITEM = obj(
    source_id=STR,
    ra_deg=NUM,
    dec_deg=NUM,
    catalog=STR,
    nvss_flux_mjy=null(NUM),
    mean_flux_mjy=null(NUM),
    mean_flux_jy=null(NUM),
    std_flux_jy=null(NUM),
    n_obs=INT,
    chi2_nu=null(NUM),
    chi_sq_nu=null(NUM),
    sigma_deviation=null(NUM),
    eta=null(NUM),
    v=null(NUM),
    is_variable=BOOL,
    last_measured_at=null(TIME),
    flux_points=arr(FLUX_POINT),
)


def variability_metrics(node: dict[str, Any]) -> dict[str, Any]:
    """The legacy metric names, with ours alongside.

    The legacy ``vs_mean`` and ``m_mean`` were signed means over consecutive pairs, which
    tend to zero (legacy-pipeline-facts §3.2); we serve the VAST two-epoch maxima over
    significant pairs under both the legacy and the explicit names.
    """
    return {
        "v": node["v"],
        "eta": node["eta"],
        "vs_mean": node["vsAbsSignificantMax"],
        "m_mean": node["mAbsSignificantMax"],
        "n_epochs": node["nEpochs"],
        "chi2_nu": node["chi2Nu"],
        "sigma_deviation": node["sigmaDeviation"],
        "vs_abs_significant_max": node["vsAbsSignificantMax"],
        "m_abs_significant_max": node["mAbsSignificantMax"],
    }


def _std(node: dict[str, Any]) -> float | None:
    v, mean = node["v"], node["meanFluxJy"]
    return v * mean if v is not None and mean is not None else None


def _is_variable(node: dict[str, Any]) -> bool:
    return node["chi2Nu"] is not None and node["chi2Nu"] > VARIABLE_CHI2_NU


def flux_point(point: dict[str, Any], flux: str = "fluxJy", err: str = "fluxErrJy") -> dict[str, Any]:
    # Legacy `image_id` held the image path; both spellings are served.
    path = point["image"]["path"]
    return {
        "mjd": point["mjd"],
        "time": point["time"],
        "flux_jy": point[flux],
        "flux_err_jy": point[err],
        "image_id": path,
        "image_path": path,
    }


def search_item(node: dict[str, Any]) -> dict[str, Any]:
    points = (node.get("lightCurve") or {}).get("points") or []
    return {
        "source_id": node["sourceId"],
        "ra_deg": node["raDeg"],
        "dec_deg": node["decDeg"],
        "catalog": "NVSS",
        "nvss_flux_mjy": mjy(node["catalogFluxJy"]),
        "mean_flux_mjy": mjy(node["meanFluxJy"]),
        "mean_flux_jy": node["meanFluxJy"],
        "std_flux_jy": _std(node),
        "n_obs": node["nEpochs"],
        "chi2_nu": node["chi2Nu"],
        "chi_sq_nu": node["chi2Nu"],
        "sigma_deviation": node["sigmaDeviation"],
        "eta": node["eta"],
        "v": node["v"],
        "is_variable": _is_variable(node),
        "last_measured_at": iso_from_mjd(node["lastMjd"]),
        "flux_points": [flux_point(p) for p in points],
    }


def search_variables(args: Args) -> dict[str, Any]:
    filters = args["filters"] or {}
    # `source_id` names one source (the frontend reads its series); `query` is what a user
    # typed: a name or its start (the document's example is `NVSS J123456`).
    names = [args["source_id"]] if args["source_id"] else []
    cone = None
    if args["ra_deg"] is not None or args["dec_deg"] is not None:
        if args["ra_deg"] is None or args["dec_deg"] is None:
            raise validation_error("ra_deg and dec_deg go together", location="body")
        cone = {
            "raDeg": args["ra_deg"],
            "decDeg": args["dec_deg"],
            "radiusArcsec": args["radius_arcmin"] * 60.0,
        }
    flux_min = filters.get("flux_min_mjy")
    sort = args["sort"] or {}
    return {
        "filter": compact(
            {
                "sourceIds": names or None,
                "sourceIdPrefix": args["query"] or None,
                "cone": cone,
                "sigmaMin": filters.get("variability_min"),
                "decMinDeg": filters.get("dec_min"),
                "decMaxDeg": filters.get("dec_max"),
                "fluxMinJy": flux_min / 1000.0 if flux_min is not None else None,
            }
        ),
        "orderBy": SORT_FIELDS[sort.get("field") or "source_id"],
        "direction": (sort.get("order") or "asc").upper(),
        "first": args["limit"],
        "after": after_offset(args["offset"]),
        # The frontend asks for one source by name and reads its series.
        "withPoints": args["source_id"] is not None,
    }


def shape_search(data: dict[str, Any], args: Args) -> dict[str, Any]:
    connection = data["sources"]
    return {
        "sources": [search_item(node) for node in connection["nodes"]],
        "total": connection["totalCount"],
        "limit": args["limit"],
        "offset": args["offset"],
    }


def shape_detail(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    node = data["source"]
    n_forced = node["forced"]["totalCount"]
    return {
        "id": node["sourceId"],
        "name": node["sourceId"],
        "source_id": node["sourceId"],
        "ra_deg": node["raDeg"],
        "dec_deg": node["decDeg"],
        "catalog": "NVSS",
        "nvss_flux_jy": node["catalogFluxJy"],
        "n_meas": node["nEpochs"],
        "n_meas_forced": n_forced,
        "mean_flux_jy": node["meanFluxJy"],
        "std_flux_jy": _std(node),
        "min_flux_jy": node["minFluxJy"],
        "max_flux_jy": node["maxFluxJy"],
        "max_snr": node["maxSnr"],
        "is_variable": _is_variable(node),
        # The legacy key for the legacy heuristic (a score, not a probability: see
        # dsa110.science.ese_heuristic); served under its own name alongside.
        "ese_probability": node["eseHeuristicScore"],
        "ese_heuristic_score": node["eseHeuristicScore"],
        "new_source": node["newSource"],
        "new_high_sigma": node["newHighSigma"],
        "first_measured_at": iso_from_mjd(node["firstMjd"]),
        "last_measured_at": iso_from_mjd(node["lastMjd"]),
        "variability_metrics": variability_metrics(node),
    }


def shape_variability(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    node = data["source"]
    return {"source_id": node["sourceId"], **variability_metrics(node)}


def shape_lightcurve(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    node = data["source"]
    curve = node["lightCurve"]
    return {
        "source_id": node["sourceId"],
        "ra_deg": node["raDeg"],
        "dec_deg": node["decDeg"],
        "n_references": curve["nReferences"],
        "flux_points": [flux_point(p) for p in curve["points"]],
        "normalized_flux_points": [
            {**flux_point(p, "normFluxJy", "normFluxErrJy"), "corrected": p["corrected"]}
            for p in curve["points"]
        ],
    }


def detection(node: dict[str, Any], source_id: str) -> dict[str, Any]:
    image = node["image"]
    freq = image["freqGhz"]
    return {
        "id": None,
        "name": source_id,
        "source_id": source_id,
        "image_id": image["imageId"],
        "image_path": image["path"],
        "ra": node["raDeg"],
        "dec": node["decDeg"],
        # Documented in mJy; the Jy values are served alongside under explicit names.
        "flux_peak": mjy(node["peakFluxJy"]),
        "flux_peak_err": mjy(node["peakFluxErrJy"]),
        "flux_int": mjy(node["intFluxJy"]),
        "flux_int_err": mjy(node["intFluxErrJy"]),
        "flux_peak_jy": node["peakFluxJy"],
        "flux_peak_err_jy": node["peakFluxErrJy"],
        "flux_int_jy": node["intFluxJy"],
        "snr": node["snr"],
        "forced": node["forced"],
        "frequency": freq * 1000.0 if freq is not None else None,
        "mjd": node["mjd"],
        "measured_at": node["time"],
    }


DETECTION_TABLE: Final = table_order.DetailTable(
    DETECTIONS,
    "source",
    lambda args: {"sourceId": args["source_id"]},
    lambda source, node: detection(node, source["sourceId"]),
    table_order.orders_for(
        *("ra", "dec", "flux_peak", "flux_peak_err", "flux_int", "flux_int_err", "flux_peak_jy"),
        *("flux_peak_err_jy", "flux_int_jy", "snr", "mjd", "measured_at"),
    ),
)
"""A source's measurements, paged; the graph sorts by the keys of ``detection`` rows listed;
the search (image paths, times, the source's name) is arranged here."""


def shape_stamps(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    node = data["source"]
    stamps = [
        {
            "image_id": s["imageId"],
            "image_path": s["image"]["path"],
            "mjd": s["mjd"],
            # The legacy field was a server-local path nobody could fetch; ours is a URL.
            "cutout_path": s["fitsUrl"],
            "fits_url": s["fitsUrl"],
            "png_url": s["pngUrl"],
            "error": None,
        }
        for s in node["postageStamps"]
    ]
    return {
        "source_id": node["sourceId"],
        "ra_deg": node["raDeg"],
        "dec_deg": node["decDeg"],
        "stamps": stamps,
        "total": len(stamps),
    }


# --- routes ----------------------------------------------------------------------------

LIGHTCURVE_SCHEMA = obj(
    source_id=STR,
    ra_deg=NUM,
    dec_deg=NUM,
    n_references=INT,
    flux_points=arr(FLUX_POINT),
    normalized_flux_points=arr(ANY),
)
VARIABILITY_SCHEMA = {
    **VARIABILITY_METRICS,
    "properties": {"source_id": STR, **VARIABILITY_METRICS["properties"]},
    "required": ["source_id", *VARIABILITY_METRICS["required"]],
}
STAMPS_SCHEMA = obj(
    source_id=STR,
    ra_deg=NUM,
    dec_deg=NUM,
    stamps=arr(
        obj(
            image_id=INT,
            image_path=STR,
            mjd=NUM,
            cutout_path=STR,
            fits_url=STR,
            png_url=STR,
            error=null(STR),
        )
    ),
    total=INT,
)


def source_subroutes(prefix: str, tag: str) -> list[RestRoute]:
    """Light curve, postage stamps, variability and external catalogs under ``prefix``."""
    base = f"{prefix}/{{source_id}}"
    return [
        graphql_route(
            "GET",
            f"{base}/variability",
            VARIABILITY,
            shape_variability,
            variables=lambda args: {"sourceId": args["source_id"]},
            params=[SOURCE_ID],
            response=VARIABILITY_SCHEMA,
            tag=tag,
            summary="Variability metrics (V, eta, chi2, sigma deviation, two-epoch maxima)",
        ),
        graphql_route(
            "GET",
            f"{base}/lightcurve",
            LIGHTCURVE,
            shape_lightcurve,
            variables=lambda args: {"sourceId": args["source_id"]},
            params=[SOURCE_ID],
            response=LIGHTCURVE_SCHEMA,
            tag=tag,
            summary="Raw and normalised light curve",
        ),
        graphql_route(
            "GET",
            f"{base}/postage_stamps",
            STAMPS,
            shape_stamps,
            variables=lambda args: {
                "sourceId": args["source_id"],
                "size": args["size_arcsec"],
                "limit": args["max_stamps"],
            },
            params=[
                SOURCE_ID,
                Float("size_arcsec", 60.0, ge=1.0, le=3600.0, description="Cut-out size, arcsec"),
                Int("max_stamps", 20, ge=1, le=50, description="Most recent images to cut"),
            ],
            response=STAMPS_SCHEMA,
            tag=tag,
            summary="Postage stamps (cut-outs served as FITS and PNG URLs)",
        ),
        external_catalogs_route(base, SOURCE_ID, tag),
    ]


def routes(settings: Settings) -> list[RestRoute]:
    return [
        graphql_route(
            "POST",
            "/sources/search",
            SEARCH,
            shape_search,
            variables=search_variables,
            body=[
                Str("query", max_length=128, description="A source name or its start, e.g. `NVSS J1234`"),
                Str("source_id", max_length=128, description="Exact source name (frontend form)"),
                Float("ra_deg", ge=0.0, le=360.0),
                Float("dec_deg", ge=-90.0, le=90.0),
                Param("radius_arcmin", "number", default=1.0, exclusive_minimum=0.0, maximum=600.0),
                Obj(
                    "filters",
                    Float("variability_min", description="Lowest sigma deviation"),
                    Float("dec_min", ge=-90.0, le=90.0),
                    Float("dec_max", ge=-90.0, le=90.0),
                    Float("flux_min_mjy", ge=0.0),
                ),
                Obj(
                    "sort",
                    Str("field", "source_id", enum=tuple(SORT_FIELDS)),
                    Str("order", "asc", enum=("asc", "desc")),
                ),
                # The sources page asks for 1000 with its advanced filters open; pages of
                # the graph's size are fetched and merged.
                Int("limit", 100, ge=1, le=LEGACY_MAX_LIMIT),
                Int("offset", 0, ge=0, le=10_000_000),
            ],
            paged=lambda data: data["sources"],
            response=obj(sources=arr(SEARCH_ITEM), total=INT, limit=INT, offset=INT),
            tag=TAG,
            summary="Search sources by name, cone, flux and variability",
            role=Role.VIEWER,  # a read sent as POST
        ),
        graphql_route(
            "GET",
            "/sources/{source_id}",
            DETAIL,
            shape_detail,
            variables=lambda args: {"sourceId": args["source_id"]},
            params=[SOURCE_ID],
            response=obj(
                id=STR,
                name=STR,
                ra_deg=NUM,
                dec_deg=NUM,
                catalog=STR,
                n_meas=INT,
                n_meas_forced=INT,
                mean_flux_jy=null(NUM),
                std_flux_jy=null(NUM),
                max_snr=null(NUM),
                is_variable=BOOL,
                ese_probability=null(NUM),
                ese_heuristic_score=null(NUM),
                new_source=BOOL,
                new_high_sigma=null(NUM),
                variability_metrics=VARIABILITY_METRICS,
            ),
            tag=TAG,
            summary="Source detail",
        ),
        multi_query_route(
            "GET",
            "/sources/{source_id}/detections",
            [DETECTIONS],
            DETECTION_TABLE.fetch,
            DETECTION_TABLE.shape,
            params=[
                SOURCE_ID,
                Int("page", 1, ge=1, le=1_000_000),
                Int("page_size", 25, ge=1, le=100),
                *table_order.PARAMS,
            ],
            response=obj(
                items=arr(
                    obj(
                        image_id=INT,
                        image_path=STR,
                        ra=NUM,
                        dec=NUM,
                        flux_peak=NUM,
                        flux_peak_err=NUM,
                        flux_int=null(NUM),
                        flux_int_err=null(NUM),
                        snr=null(NUM),
                        forced=BOOL,
                        mjd=NUM,
                        measured_at=TIME,
                    )
                ),
                total=INT,
                page=INT,
                page_size=INT,
            ),
            tag=TAG,
            summary="Measurements of a source, paged",
        ),
        *source_subroutes("/sources", TAG),
    ]
