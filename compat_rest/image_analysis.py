"""Image analysis on the REST surface: ``GET /images/{image_id}/profile`` (an axis slice, or a
profile along a line, polyline or in annuli, optionally fitted) and ``POST
/images/{image_id}/fit`` (a 2-D Gaussian or Moffat). The other image paths are
``compat_rest.images``, which mounts these after its own.
"""

from __future__ import annotations

import math
from typing import Any

from compat_rest.errors import ApiError, not_found, validation_error
from compat_rest.graph import GraphCall
from compat_rest.params import Args, Bool, Float, Int, Param, Str
from compat_rest.query_json import json_parameter
from compat_rest.routing import RestRoute, multi_query_route
from compat_rest.shapes import ANY, BOOL, NUM, STR, arr, null, obj
from dsa110.auth.identity import Role

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


MAX_COORDINATES_CHARS = 8192
"""Longest ``coordinates`` JSON: 100 pairs of 17-digit numbers fit well within it."""
MAX_URL_CHARS = 65_536
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
    value = json_parameter("coordinates", text, MAX_COORDINATES_CHARS, 2)  # [[x, y], ...]
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


BRIGHTEST = """
query RestBrightest($imageId: Int!, $snrMin: Float) {
  image(imageId: $imageId) {
    measurements(first: 500, filter: {snrMin: $snrMin}) {
      pageInfo { hasNextPage } nodes { raDeg decDeg peakFluxJy peakFluxErrJy snr }
    }
  }
}
"""
BRIGHTEST_ROUNDS = 8
"""Pages asked for the most significant detection: each raises ``snrMin`` to the best seen."""


def _snr(node: dict[str, Any]) -> float:
    if node["snr"] is not None:
        return float(node["snr"])
    err = node["peakFluxErrJy"]
    return float(node["peakFluxJy"]) / err if err else 0.0


async def most_significant_source(call: GraphCall, image_id: int) -> dict[str, Any]:
    """The image's highest signal-to-noise measurement, without reading every one."""
    best: dict[str, Any] | None = None
    snr_min: float | None = None
    for _ in range(BRIGHTEST_ROUNDS):
        image = (await call(BRIGHTEST, {"imageId": image_id, "snrMin": snr_min}))["image"]
        if image is None:
            raise not_found(f"no image {image_id}", image_id=image_id)
        page = image["measurements"]
        if page["nodes"]:
            best = max([*page["nodes"], *([best] if best else [])], key=_snr)
        if best is None or not page["pageInfo"]["hasNextPage"]:
            break
        if snr_min is not None and _snr(best) <= snr_min:
            break  # a page of equal S/N: any of them will do
        snr_min = _snr(best)
    if best is None:
        raise ApiError(
            422,
            "NO_SOURCE",
            "no source is detected on this image to fit: give a position (ra_deg, dec_deg) or a region_id",
            {"image_id": image_id},
        )
    return best


async def fetch_fit(call: GraphCall, args: Args) -> Any:
    """The fit at the given position or in the region; with neither, at the most significant source.

    The SkyView fitting tool's default is "None (Fit entire image)" (frontend
    ``ImageFittingTool.tsx``; ``queries.ts`` useImageFitting posts ``{model, fit_background}``
    without ``region_id``). The legacy server fitted the whole image seeded at its peak pixel,
    which converges on the brightest source; here the fit is that source's, in the usual box.
    """
    variables = fit_variables(args)
    if variables["ra"] is None and variables["regionId"] is None:
        source = await most_significant_source(call, args["image_id"])
        variables = {**variables, "ra": source["raDeg"], "dec": source["decDeg"]}
    return await call(FIT, variables)


def shape_fit(data: dict[str, Any], args: Args) -> dict[str, Any]:
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
        # Set aside, said so: the legacy seed has no counterpart (the fit seeds itself).
        "ignored_params": ["initial_guess"] if args.get("initial_guess") else [],
    }


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


def analysis_routes(image_id: Param, tag: str) -> list[RestRoute]:
    """The profile and fit paths; ``image_id`` is the images section's path parameter."""
    return [
        multi_query_route(
            "GET",
            "/images/{image_id}/profile",
            [PROFILE, SLICE],
            fetch_profile,
            shape_profile,
            params=[
                image_id,
                Str("profile_type", enum=tuple(PROFILE_KINDS), description="Without it: the axis slice"),
                Str(
                    "coordinates",
                    # The JSON's own limit (400 PARAMETER_TOO_LONG, compat_rest.query_json) is
                    # MAX_COORDINATES_CHARS; this one only keeps the parameter to a URL's length.
                    max_length=MAX_URL_CHARS,
                    description="JSON array of [ra_deg, dec_deg] (wcs) or [x, y] (pixel, 0-based) "
                    f"pairs, at most {MAX_COORDINATES_CHARS} characters",
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
            tag=tag,
            summary="Pixel values along a row or column; or a profile along a line, polyline or in "
            "annuli (sky or pixel coordinates), optionally fitted",
        ),
        multi_query_route(
            "POST",
            "/images/{image_id}/fit",
            [BRIGHTEST, FIT],
            fetch_fit,
            shape_fit,
            params=[image_id],
            body=[
                Float("ra_deg", ge=0.0, le=360.0),
                Float("dec_deg", ge=-90.0, le=90.0),
                Float("radius_arcsec", ge=1.0, le=3600.0),
                Str("model", "gaussian", enum=("gaussian", "moffat")),
                Int("region_id", ge=0),
                Bool("fit_background", True),
                Str(
                    "initial_guess",
                    max_length=4096,
                    description="Ignored (the legacy seed, a JSON string): the fit seeds at the "
                    "brightest pixel of its box or region",
                ),
            ],
            response=FIT_SCHEMA,
            errors=(400, 404, 422),
            tag=tag,
            summary="Fit a 2-D Gaussian or Moffat at a position or in a region (neither: the most "
            "significant source)",
            role=Role.VIEWER,  # a read (a computation), sent as POST for its body
        ),
    ]
