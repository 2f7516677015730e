"""Images: list with the documented filters, detail, FITS download, measurements, profile, fit."""

from __future__ import annotations

import json
import math
from typing import Any

from compat_rest.convert import after_offset, compact, mjy, page_window
from compat_rest.errors import validation_error
from compat_rest.files import data_file
from compat_rest.graph import GraphCall
from compat_rest.paging import LEGACY_MAX_LIMIT
from compat_rest.params import Args, Bool, Float, Int, PathInt, Str, Time
from compat_rest.routing import RestRoute, graphql_route, multi_query_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, null, obj
from dsa110.auth.identity import Role
from dsa110.settings import Settings

TAG = "images"
IMAGE_ID = PathInt("image_id", "Integer image id")

IMAGE_FIELDS = """
  imageId path type createdAt midMjd beamMajorArcsec beamMinorArcsec beamPaDeg noiseJy
  centerRaDeg centerDecDeg imsizeX imsizeY cellsizeArcsec freqGhz bandwidthMhz pbcor
  measurementSet { path }
"""

LIST = f"""
query RestImages($first: Int!, $after: String, $filter: ImageFilter) {{
  images(first: $first, after: $after, filter: $filter) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {IMAGE_FIELDS} }}
  }}
}}
"""

DETAIL = f"""
query RestImage($imageId: Int!) {{
  image(imageId: $imageId) {{
    {IMAGE_FIELDS} nMeasurements dynamicRange integrationSec group {{ groupId }} observationStart
    centerForms {{ raHms decDms lDeg bDeg }} localRmsRange {{ minJy maxJy }}
  }}
}}
"""

PATH = "query RestImagePath($imageId: Int!) { image(imageId: $imageId) { imageId path } }"

MEASUREMENTS = """
query RestImageMeasurements($imageId: Int!, $first: Int!, $after: String) {
  image(imageId: $imageId) {
    freqGhz
    measurements(first: $first, after: $after) {
      totalCount
      nodes {
        raDeg decDeg peakFluxJy peakFluxErrJy intFluxJy intFluxErrJy localRmsJy snr forced mjd
        source { sourceId }
      }
    }
  }
}
"""

# One document for both forms: the route passes `points` (sky) or `pixels`, the other null.
PROFILE = """
query RestProfile(
  $imageId: Int!, $kind: ProfileKind!, $points: [SkyPoint!], $pixels: [PixelPoint!], $width: Float!,
  $radius: Float, $withFit: Boolean!, $fitModel: FitModel!
) {
  image(imageId: $imageId) {
    profile(
      kind: $kind, points: $points, pixels: $pixels, widthArcsec: $width, radiusArcsec: $radius
    ) {
      kind unit points { distanceArcsec raDeg decDeg x y value error nSamples }
      fit(model: $fitModel) @include(if: $withFit) {
        model amplitude amplitudeErr centerArcsec centerErrArcsec fwhmArcsec fwhmErrArcsec
        sigmaArcsec sigmaErrArcsec alphaArcsec alphaErrArcsec beta betaErr background backgroundErr
        chi2 reducedChi2 rSquared nPoints modelValues
      }
    }
  }
}
"""

SLICE = """
query RestSlice($imageId: Int!, $axis: ImageAxis!, $position: Int) {
  image(imageId: $imageId) { slice(axis: $axis, position: $position) { points { value } } }
}
"""

FIT = """
query RestFit(
  $imageId: Int!, $model: FitModel!, $ra: Float, $dec: Float, $box: Float, $regionId: Int,
  $background: Boolean!
) {
  image(imageId: $imageId) {
    cellsizeArcsec
    fit(
      model: $model, raDeg: $ra, decDeg: $dec, boxArcsec: $box, regionId: $regionId,
      fitBackground: $background
    ) {
      model peak peakErr raDeg decDeg raErrArcsec decErrArcsec fwhmMajorArcsec fwhmMajorErrArcsec
      fwhmMinorArcsec fwhmMinorErrArcsec paDeg paErrDeg background backgroundErr
      integratedFluxJy integratedFluxErrJy unit nPixels reducedChi2 residualRms beta betaErr
    }
  }
}
"""


def _image_size_deg(node: dict[str, Any]) -> float | None:
    nx, ny, cell = node["imsizeX"], node["imsizeY"], node["cellsizeArcsec"]
    if nx is None or ny is None or cell is None:
        return None
    return float(max(nx, ny) * cell / 3600.0)


def image_item(node: dict[str, Any]) -> dict[str, Any]:
    ms = node["measurementSet"]
    return {
        "id": node["imageId"],
        "path": node["path"],
        "ms_path": ms["path"] if ms else None,
        "created_at": node["createdAt"],
        "type": node["type"],
        "mid_mjd": node["midMjd"],
        "beam_major_arcsec": node["beamMajorArcsec"],
        "beam_minor_arcsec": node["beamMinorArcsec"],
        "beam_pa_deg": node["beamPaDeg"],
        "noise_jy": node["noiseJy"],
        # TODO(graph): Image.peakFluxJy is not in the graph yet.
        "peak_flux_jy": None,
        "pbcor": node["pbcor"],
        "center_ra_deg": node["centerRaDeg"],
        "center_dec_deg": node["centerDecDeg"],
        "image_size_deg": _image_size_deg(node),
        "pixel_size_arcsec": node["cellsizeArcsec"],
    }


def list_variables(args: Args) -> dict[str, Any]:
    image_type = args["image_type"]
    return {
        "first": args["limit"],
        "after": after_offset(args["offset"]),
        "filter": compact(
            {
                "types": [image_type] if image_type else None,
                "pbcor": args["pbcor"],
                "createdAfter": args["start_date"],
                "createdBefore": args["end_date"],
                "noiseMaxJy": args["noise_max"],
                "decMinDeg": args["dec_min"],
                "decMaxDeg": args["dec_max"],
                "msPathContains": args["ms_path"],
                "hasCalibrator": args["has_calibrator"],
            }
        ),
    }


def shape_detail(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    node = data["image"]
    freq, bandwidth = node["freqGhz"], node["bandwidthMhz"]
    beam = (node["beamMajorArcsec"], node["beamMinorArcsec"])
    group = node["group"]
    forms, rms = node["centerForms"], node["localRmsRange"]
    return {
        **image_item(node),
        "name": node["path"].rsplit("/", 1)[-1],
        "group_id": group["groupId"] if group else None,
        "n_measurements": node["nMeasurements"],
        "n_meas": node["nMeasurements"],
        "n_runs": 0,
        "frequency_hz": freq * 1e9 if freq is not None else None,
        "bandwidth_hz": bandwidth * 1e6 if bandwidth is not None else None,
        # The real server's ImageDetail names: degrees for the beam, MHz, mJy.
        "ra": node["centerRaDeg"],
        "dec": node["centerDecDeg"],
        "beam_bmaj": beam[0] / 3600.0 if beam[0] is not None else None,
        "beam_bmin": beam[1] / 3600.0 if beam[1] is not None else None,
        "beam_bpa": node["beamPaDeg"],
        "ra_hms": forms["raHms"] if forms else None,
        "dec_dms": forms["decDms"] if forms else None,
        "l": forms["lDeg"] if forms else None,
        "b": forms["bDeg"] if forms else None,
        "rms_median": mjy(node["noiseJy"]),
        "rms_min": mjy(rms["minJy"]) if rms else None,
        "rms_max": mjy(rms["maxJy"]) if rms else None,
        "frequency": freq * 1000.0 if freq is not None else None,
        "bandwidth": bandwidth,
        # The legacy value is the observation start (FITS DATE-OBS), not the row's creation.
        "datetime": node["observationStart"],
        "dynamic_range": node["dynamicRange"],
        "integration_sec": node["integrationSec"],
    }


def measurement(node: dict[str, Any], freq_ghz: float | None) -> dict[str, Any]:
    source_id = node["source"]["sourceId"]
    peak, integrated = node["peakFluxJy"], node["intFluxJy"]
    return {
        "id": None,
        "name": source_id,
        "source_id": source_id,
        "ra": node["raDeg"],
        "dec": node["decDeg"],
        "ra_deg": node["raDeg"],
        "dec_deg": node["decDeg"],
        "flux_peak": mjy(peak),
        "flux_peak_err": mjy(node["peakFluxErrJy"]),
        "flux_int": mjy(integrated),
        "flux_int_err": mjy(node["intFluxErrJy"]),
        "flux_peak_jy": peak,
        "flux_peak_err_jy": node["peakFluxErrJy"],
        "flux_int_jy": integrated,
        "local_rms_jy": node["localRmsJy"],
        "snr": node["snr"],
        "forced": node["forced"],
        "mjd": node["mjd"],
        "frequency": freq_ghz * 1000.0 if freq_ghz is not None else None,
        "compactness": integrated / peak if integrated is not None and peak else None,
        "has_siblings": False,
    }


def shape_measurements(data: dict[str, Any], args: Args) -> dict[str, Any]:
    image = data["image"]
    connection = image["measurements"]
    return {
        "items": [measurement(n, image["freqGhz"]) for n in connection["nodes"]],
        "total": connection["totalCount"],
        "page": args["page"],
        "page_size": args["page_size"],
    }


PROFILE_KINDS = {"line": ("LINE", 2, 2), "polyline": ("POLYLINE", 2, 100), "point": ("RADIAL", 1, 1)}


async def fetch_profile(call: GraphCall, args: Args) -> Any:
    """The documented axis/position slice without ``profile_type``, else the profile it names."""
    if args["profile_type"] is None:
        if args["coordinates"] is not None:
            raise validation_error("`coordinates` needs a `profile_type`", parameter="profile_type")
        axis = args["axis"].upper()
        return await call(SLICE, {"imageId": args["image_id"], "axis": axis, "position": args["position"]})
    return await call(PROFILE, profile_variables(args))


def profile_variables(args: Args) -> dict[str, Any]:
    graph_kind, fewest, most = PROFILE_KINDS[args["profile_type"]]
    pixels = args["coordinate_system"] == "pixel"
    pairs = _coordinates(args["coordinates"], fewest, most, pixels)
    fit_model = args["fit_model"]
    return {
        "imageId": args["image_id"],
        "kind": graph_kind,
        "points": None if pixels else [{"raDeg": ra, "decDeg": dec} for ra, dec in pairs],
        "pixels": [{"x": x, "y": y} for x, y in pairs] if pixels else None,
        "width": args["width"],
        "radius": args["radius"] if graph_kind == "RADIAL" else None,
        "withFit": fit_model != "none",
        "fitModel": "MOFFAT" if fit_model == "moffat" else "GAUSSIAN",
    }


def _coordinates(text: str | None, fewest: int, most: int, pixels: bool) -> list[tuple[float, float]]:
    what = "[x, y] pixel" if pixels else "[ra, dec]"
    if text is None:
        raise validation_error("query parameter `coordinates` is required", parameter="coordinates")
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise validation_error(
            f"`coordinates` must be a JSON array of {what} pairs", parameter="coordinates"
        ) from None
    pairs = value if isinstance(value, list) else None
    if pairs is None or not fewest <= len(pairs) <= most:
        raise validation_error(
            f"`coordinates` needs {fewest} to {most} {what} pairs", parameter="coordinates"
        )
    out = []
    for pair in pairs:
        ok = isinstance(pair, list) and len(pair) == 2
        ok = ok and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in pair
        )
        if ok and not pixels:
            ok = 0 <= pair[0] <= 360 and -90 <= pair[1] <= 90
        if not ok:
            where = "pixel position (0-based)" if pixels else "position on the sky in degrees"
            raise validation_error(f"each coordinate must be a {what} {where}", parameter="coordinates")
        out.append((float(pair[0]), float(pair[1])))
    return out


def shape_profile(data: dict[str, Any], args: Args) -> Any:
    if args["profile_type"] is None:  # the documented axis slice: the pixel values alone
        return [p["value"] for p in data["image"]["slice"]["points"]]
    profile = data["image"]["profile"]
    points = profile["points"]
    pixels = args["coordinate_system"] == "pixel"
    return {
        "profile_type": args["profile_type"],
        "distance": [p["distanceArcsec"] for p in points],
        "flux": [p["value"] for p in points],
        "error": [p["error"] for p in points],
        "n_samples": [p["nSamples"] for p in points],
        "coordinates": [[p["x"], p["y"]] if pixels else [p["raDeg"], p["decDeg"]] for p in points],
        "coordinate_system": "pixel" if pixels else "wcs",
        "units": {"distance": "arcsec", "flux": profile["unit"]},
        "fit": _profile_fit(profile.get("fit"), profile["unit"]),
    }


def _profile_fit(fit: dict[str, Any] | None, unit: str) -> dict[str, Any] | None:
    """The legacy fit names (legacy-pipeline-facts §3.6): centre and widths in arcsec here."""
    if fit is None:
        return None
    if fit["model"] == "MOFFAT":
        width = {"alpha": fit["alphaArcsec"], "beta": fit["beta"]}
        width_err = {"alpha": fit["alphaErrArcsec"], "beta": fit["betaErr"]}
    else:
        width, width_err = {"sigma": fit["sigmaArcsec"]}, {"sigma": fit["sigmaErrArcsec"]}
    return {
        "model": fit["model"].lower(),
        "parameters": {
            "amplitude": fit["amplitude"],
            "center": fit["centerArcsec"],
            **width,
            "background": fit["background"],
            "fwhm": fit["fwhmArcsec"],
        },
        "parameter_errors": {
            "amplitude": fit["amplitudeErr"],
            "center": fit["centerErrArcsec"],
            **width_err,
            "background": fit["backgroundErr"],
            "fwhm": fit["fwhmErrArcsec"],
        },
        "chi_squared": fit["chi2"],
        "reduced_chi_squared": fit["reducedChi2"],
        "r_squared": fit["rSquared"],
        "n_points": fit["nPoints"],
        "fitted_flux": fit["modelValues"],
        "units": {"center": "arcsec", "fwhm": "arcsec", "amplitude": unit},
    }


def fit_variables(args: Args) -> dict[str, Any]:
    ra, dec = args["ra_deg"], args["dec_deg"]
    if (ra is None) != (dec is None):
        raise validation_error("ra_deg and dec_deg go together", location="body")
    radius = args["radius_arcsec"]
    return {
        "imageId": args["image_id"],
        "model": args["model"].upper(),
        "ra": ra,
        "dec": dec,
        "box": 2.0 * radius if radius is not None else None,
        "regionId": args["region_id"],
        "background": args["fit_background"],
    }


def shape_fit(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    cell = data["image"]["cellsizeArcsec"]
    fit = data["image"]["fit"]
    model = fit["model"].lower()

    def pixels(arcsec: float) -> float | None:
        return arcsec / cell if cell else None

    # astropy's Moffat2D, which the legacy server fitted, calls the power index `alpha`.
    moffat = {"beta": fit["beta"], "alpha": fit["beta"]} if model == "moffat" else {}
    return {
        # The documented form...
        "fitted": True,
        "peak_flux_jy": fit["peak"],
        "peak_ra_deg": fit["raDeg"],
        "peak_dec_deg": fit["decDeg"],
        "fwhm_major_arcsec": fit["fwhmMajorArcsec"],
        "fwhm_minor_arcsec": fit["fwhmMinorArcsec"],
        "pa_deg": fit["paDeg"],
        # ...the real server's form (axes are FWHM in pixels there)...
        "model": model,
        "parameters": {
            "amplitude": fit["peak"],
            "center": {"x": None, "y": None, "ra": fit["raDeg"], "dec": fit["decDeg"]},
            "major_axis": pixels(fit["fwhmMajorArcsec"]),
            "minor_axis": pixels(fit["fwhmMinorArcsec"]),
            "pa": fit["paDeg"],
            "background": fit["background"],
            **moffat,
        },
        "statistics": {"chi_squared": None, "reduced_chi_squared": fit["reducedChi2"], "r_squared": None},
        "residuals": {"mean": None, "std": fit["residualRms"], "max": None},
        "center_wcs": {"ra": fit["raDeg"], "dec": fit["decDeg"]},
        # ...and the uncertainties neither had.
        "uncertainties": {
            "peak": fit["peakErr"],
            "ra_arcsec": fit["raErrArcsec"],
            "dec_arcsec": fit["decErrArcsec"],
            "fwhm_major_arcsec": fit["fwhmMajorErrArcsec"],
            "fwhm_minor_arcsec": fit["fwhmMinorErrArcsec"],
            "pa_deg": fit["paErrDeg"],
            "background": fit["backgroundErr"],
            "beta": fit["betaErr"],
        },
        "integrated_flux_jy": fit["integratedFluxJy"],
        "integrated_flux_err_jy": fit["integratedFluxErrJy"],
        "unit": fit["unit"],
        "n_pixels": fit["nPixels"],
    }


IMAGE_ITEM = obj(
    id=INT,
    path=STR,
    ms_path=null(STR),
    created_at=TIME,
    type=STR,
    beam_major_arcsec=null(NUM),
    beam_minor_arcsec=null(NUM),
    beam_pa_deg=null(NUM),
    noise_jy=null(NUM),
    pbcor=BOOL,
    center_ra_deg=null(NUM),
    center_dec_deg=null(NUM),
)
IMAGE_DETAIL = {
    **IMAGE_ITEM,
    "properties": {
        **IMAGE_ITEM["properties"],
        "n_measurements": INT,
        "frequency_hz": null(NUM),
        "bandwidth_hz": null(NUM),
        "ra_hms": null(STR),
        "dec_dms": null(STR),
        "l": null(NUM),
        "b": null(NUM),
        "rms_median": null(NUM),
        "rms_min": null(NUM),
        "rms_max": null(NUM),
        "datetime": TIME,
    },
    "required": [
        *IMAGE_ITEM["required"],
        *("n_measurements", "frequency_hz", "bandwidth_hz", "ra_hms", "dec_dms", "l", "b"),
        *("rms_median", "rms_min", "rms_max", "datetime"),
    ],
}
MEASUREMENT_ITEM = obj(
    source_id=STR,
    ra_deg=NUM,
    dec_deg=NUM,
    flux_peak_jy=NUM,
    flux_peak_err_jy=NUM,
    flux_int_jy=null(NUM),
    snr=null(NUM),
)
PROFILE_SCHEMA = {
    "anyOf": [
        arr(null(NUM)),  # the axis slice: the pixel values, null where blank
        obj(
            distance=arr(NUM),
            flux=arr(null(NUM)),
            error=arr(null(NUM)),
            coordinates=arr(arr(NUM)),
            units=obj(distance=STR, flux=STR),
            fit=null(ANY),
        ),
    ]
}
FIT_SCHEMA = obj(
    fitted=BOOL,
    peak_flux_jy=NUM,
    peak_ra_deg=NUM,
    peak_dec_deg=NUM,
    fwhm_major_arcsec=NUM,
    fwhm_minor_arcsec=NUM,
    pa_deg=NUM,
    model=STR,
    parameters=ANY,
    statistics=ANY,
)


def routes(settings: Settings) -> list[RestRoute]:
    def fits(data: dict[str, Any], _args: Args) -> Any:
        image = data["image"]
        return data_file(
            image["path"],
            settings.file_roots,
            media_type="application/fits",
            filename=f"image-{image['imageId']}.fits",
        )

    return [
        graphql_route(
            "GET",
            "/images",
            LIST,
            lambda data, _args: {
                "items": [image_item(n) for n in data["images"]["nodes"]],
                "total": data["images"]["totalCount"],
            },
            variables=list_variables,
            params=[
                Int("limit", 100, ge=1, le=LEGACY_MAX_LIMIT),
                Int("offset", 0, ge=0, le=10_000_000),
                Str("ms_path", max_length=1024, description="Only images whose MS path contains this text"),
                Str("image_type", max_length=32),
                Bool("pbcor"),
                Time("start_date", description="Created at or after (ISO 8601)"),
                Time("end_date", description="Created before (ISO 8601)"),
                Float("noise_max", ge=0.0, description="Highest noise, Jy/beam"),
                Float("dec_min", ge=-90.0, le=90.0),
                Float("dec_max", ge=-90.0, le=90.0),
                Bool("has_calibrator", description="Only images of groups with (or without) a calibrator"),
            ],
            paged=lambda data: data["images"],
            response=obj(items=arr(IMAGE_ITEM), total=INT),
            errors=(400, 422),
            tag=TAG,
            summary="Images, newest first, with the documented filters",
        ),
        graphql_route(
            "GET",
            "/images/{image_id}",
            DETAIL,
            shape_detail,
            variables=lambda args: {"imageId": args["image_id"]},
            params=[IMAGE_ID],
            response=IMAGE_DETAIL,
            tag=TAG,
            summary="Image detail",
        ),
        graphql_route(
            "GET",
            "/images/{image_id}/fits",
            PATH,
            fits,
            variables=lambda args: {"imageId": args["image_id"]},
            params=[IMAGE_ID],
            response=None,
            media_type="application/fits",
            tag=TAG,
            summary="Download the image FITS file",
        ),
        graphql_route(
            "GET",
            "/images/{image_id}/measurements",
            MEASUREMENTS,
            shape_measurements,
            variables=lambda args: {
                "imageId": args["image_id"],
                **page_window(args["page"], args["page_size"]),
            },
            params=[IMAGE_ID, Int("page", 1, ge=1, le=1_000_000), Int("page_size", 25, ge=1, le=100)],
            response=obj(items=arr(MEASUREMENT_ITEM), total=INT, page=INT, page_size=INT),
            tag=TAG,
            summary="Photometry on an image, paged",
        ),
        multi_query_route(
            "GET",
            "/images/{image_id}/profile",
            [PROFILE, SLICE],
            fetch_profile,
            shape_profile,
            params=[
                IMAGE_ID,
                Str("profile_type", enum=tuple(PROFILE_KINDS), description="Without it: the axis slice"),
                Str(
                    "coordinates",
                    max_length=8192,
                    description="JSON array of [ra_deg, dec_deg] (wcs) or [x, y] (pixel, 0-based) pairs",
                ),
                Str("coordinate_system", "wcs", enum=("wcs", "pixel")),
                Float("width", 0.0, ge=0.0, le=3600.0, description="Strip width, arcsec"),
                Float("radius", 10.0, ge=0.1, le=36000.0, description="Radial profile radius, arcsec"),
                Str("fit_model", "none", enum=("gaussian", "moffat", "none")),
                Str("axis", "x", enum=("x", "y"), description="Slice along a row (x) or a column (y)"),
                Int(
                    "position",
                    ge=0,
                    description="The slice's row (axis x) or column (axis y), 0-based; default the centre",
                ),
            ],
            response=PROFILE_SCHEMA,
            errors=(400, 404, 422),
            tag=TAG,
            summary="Pixel values along a row or column; or a profile along a line, polyline or in "
            "annuli (sky or pixel coordinates), optionally fitted",
        ),
        graphql_route(
            "POST",
            "/images/{image_id}/fit",
            FIT,
            shape_fit,
            variables=fit_variables,
            params=[IMAGE_ID],
            body=[
                Float("ra_deg", ge=0.0, le=360.0),
                Float("dec_deg", ge=-90.0, le=90.0),
                Float("radius_arcsec", ge=1.0, le=3600.0),
                Str("model", "gaussian", enum=("gaussian", "moffat")),
                Int("region_id", ge=0),
                Bool("fit_background", True),
            ],
            response=FIT_SCHEMA,
            errors=(400, 404, 422),
            tag=TAG,
            summary="Fit a 2-D Gaussian or Moffat at a position or in a region",
            role=Role.VIEWER,  # a read (a computation), sent as POST for its body
        ),
    ]
