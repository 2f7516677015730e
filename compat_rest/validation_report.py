"""``/api/qa/images/{id}/validation-report.html`` and ``.../validation-report/generate``.

The legacy QA's HTML report of an image's catalog checks (``qa/html_reports``): the page
shows the same figures as ``/catalog-validation`` (the graph's ``Image.catalogValidation``),
drawn by ``dsa110.ops.files.reports``. Reading the page is open to readers; writing it
(``save_to_file=true``, or ``/generate``) is the graph's ``generateValidationReport``
mutation, run as the caller: it needs an operator (401 ``UNAUTHENTICATED`` / 403
``FORBIDDEN``, as every REST write), is audited, checks ``output_path`` against the reports
directory before anything runs (400 ``OUTPUT_PATH_OUTSIDE_REPORTS`` or ``BAD_OUTPUT_PATH``)
and records the page as a QA artefact.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import HTMLResponse

from compat_rest import catalog_validation as cv
from compat_rest.graph import GraphCall
from compat_rest.params import Args, Bool, Json, Str
from compat_rest.routing import RestRoute, multi_query_route
from compat_rest.shapes import STR, arr, obj
from dsa110.auth.identity import Role
from dsa110.ops.files import reports
from dsa110.ops.files.paths import MAX_PATH_CHARS
from dsa110.settings import Settings

GENERATE = """
mutation RestValidationReport(
  $imageId: Int, $path: String, $catalog: String!, $kinds: [String!], $radius: Float!, $minSnr: Float!,
  $output: String
) {
  generateValidationReport(
    imageId: $imageId, path: $path, catalog: $catalog, validationTypes: $kinds,
    searchRadiusArcsec: $radius, minSnr: $minSnr, outputPath: $output
  ) { path imagePath catalog validationTypes html }
}
"""


def _report_variables(args: Args) -> dict[str, Any]:
    return {
        **cv.variables(args),
        "kinds": list(cv.kinds(args)),
        "output": args.get("output_path"),
    }


async def fetch_page(call: GraphCall, args: Args) -> str:
    """The page: drawn from the checks, or, with ``save_to_file``, as the mutation wrote it."""
    if args["save_to_file"]:
        return str((await call(GENERATE, _report_variables(args)))["generateValidationReport"]["html"])
    data = await call(cv.VALIDATION, cv.variables(args))
    image = data["image"]
    found = cv.shape(data, args)
    return reports.validation_report_html(
        image["path"],
        args["catalog"],
        list(found.values()),
        search_radius_arcsec=args["search_radius_arcsec"],
        min_snr=args["min_snr"],
        generated_at=datetime.now(UTC),
    )


async def fetch_generate(call: GraphCall, args: Args) -> dict[str, Any]:
    return dict((await call(GENERATE, _report_variables(args)))["generateValidationReport"])


def generated(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    return {
        "status": "success",
        "report_path": data["path"],
        "image_path": data["imagePath"],
        "catalog": data["catalog"],
        "validation_types": data["validationTypes"],
    }


def routes(settings: Settings) -> list[RestRoute]:
    catalog = Str("catalog", "nvss", enum=cv.CATALOGS)
    output = Str(
        "output_path",
        max_length=MAX_PATH_CHARS,
        description="An .html file inside the reports directory (relative to it, or absolute within it)",
    )
    return [
        # Before `/qa/{ms_path:path}` (the QA section), which would take them for MS paths.
        multi_query_route(
            "POST",
            "/qa/images/{image_ref:path}/validation-report/generate",
            [GENERATE],
            fetch_generate,
            generated,
            params=[cv.IMAGE_REF],
            body=[
                catalog,
                Json("validation_types", description="Checks to put in it (default: all three)"),
                *cv.TUNING,
                output,
            ],
            response=obj(status=STR, report_path=STR, image_path=STR, catalog=STR, validation_types=arr(STR)),
            errors=(400, 404, 422),
            tag=cv.TAG,
            summary="Write an image's catalog-validation report (HTML) to the reports directory",
            role=Role.OPERATOR,  # writes a file and records it
        ),
        multi_query_route(
            "GET",
            "/qa/images/{image_ref:path}/validation-report.html",
            [cv.VALIDATION, GENERATE],
            fetch_page,
            lambda page, _args: HTMLResponse(page),
            params=[
                cv.IMAGE_REF,
                catalog,
                Str("validation_type", "all", enum=("all", *cv.KINDS)),
                *cv.TUNING,
                Bool(
                    "save_to_file",
                    False,
                    description="Also write it as <qa>/reports/<image_stem>_validation_report.html "
                    "(a write: operators only)",
                ),
            ],
            response=None,
            media_type="text/html",
            errors=(400, 401, 403, 404, 422),
            tag=cv.TAG,
            summary="An image's catalog-validation report as a self-contained HTML page",
        ),
    ]
