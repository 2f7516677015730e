"""Writing an image's catalog-validation report (``generateValidationReport``) and recording it.

The checks are ``Image.catalogValidation``'s (``resolvers.catalog_validation``); the page
and the rules for where it may go are ``dsa110.ops.files.reports``. The target is checked
before the checks run, so a refused path computes nothing and writes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsa110.ops.files import reports
from dsa110.ops.qa_artifacts import register_artifact
from resolvers import catalog_validation as cv
from resolvers.context import GraphContext
from resolvers.errors import BadUserInput

if TYPE_CHECKING:
    from schema.types import Image

REPORT_MEDIA = "text/html"


def check_kinds(kinds: list[str] | None) -> tuple[str, ...]:
    """The checks asked for, in the page's order (all three when none are named)."""
    if kinds is None:
        return cv.KINDS
    if not kinds or any(k not in cv.KINDS for k in kinds):
        raise BadUserInput(
            f"validationTypes must be a non-empty list of {', '.join(cv.KINDS)}", field="validationTypes"
        )
    return tuple(k for k in cv.KINDS if k in kinds)


async def generate(
    ctx: GraphContext,
    image: Image,
    catalog: str,
    kinds: list[str] | None,
    search_radius_arcsec: float,
    min_snr: float,
    output_path: str | None,
) -> tuple[Path, dict[str, Any], str, tuple[str, ...]]:
    """Check ``image``, write the page, record it: (path, artefact row, page, checks)."""
    chosen = check_kinds(kinds)
    cv.check_arguments(catalog, search_radius_arcsec, min_snr)
    reports_dir = ctx.settings.reports_dir
    target = await asyncio.to_thread(
        reports.report_target, reports_dir, image.path, output_path, "outputPath"
    )
    found = await cv.catalog_validation(ctx, image, catalog, search_radius_arcsec, min_snr)
    page = reports.validation_report_html(
        image.path,
        found.catalog,
        [dataclasses.asdict(getattr(found, kind)) for kind in chosen],
        search_radius_arcsec=search_radius_arcsec,
        min_snr=min_snr,
        generated_at=datetime.now(UTC),
    )
    written = await asyncio.to_thread(reports.write_report, target, reports_dir, page, "outputPath")
    row = await register_artifact(
        ctx.engine,
        written,
        kind="report",
        media_type=REPORT_MEDIA,
        size_bytes=len(page.encode("utf-8")),
        image_pk=image.pk,
    )
    return written, row, page, chosen
