"""QA in the graph: recorded artefacts, the file browser (restricted to the data roots),
FITS and CASA-table inspection, thumbnails, and QA notebooks for an observation group."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast
from urllib.parse import quote

import strawberry
from strawberry.scalars import JSON

from dsa110.auth.identity import Role
from dsa110.db.enums import OrderDirection
from dsa110.db.file_filters import QaArtifactFilter, QaArtifactOrderField
from dsa110.ops.files import casatable, fitsinfo
from loaders.entities import CALTABLE, GROUP, IMAGE, MS, QA_ARTIFACT
from resolvers import links, notebooks, qa, reports
from resolvers import science as science_resolvers
from schema import science
from schema.base import GraphInfo, Loaded, Node
from schema.inputs import _enum, _input
from schema.lists import list_root
from schema.permissions import requires

if TYPE_CHECKING:
    from schema.files import CalTable, MeasurementSet
    from schema.types import Group, Image

GroupRef = Annotated["Group", strawberry.lazy("schema.types")]
ImageRef = Annotated["Image", strawberry.lazy("schema.types")]
MsRef = Annotated["MeasurementSet", strawberry.lazy("schema.files")]
CalTableRef = Annotated["CalTable", strawberry.lazy("schema.files")]

_enum(QaArtifactOrderField, "QaArtifactOrderField", "Columns QA artefacts can be sorted by.")
_input(QaArtifactFilter, "QaArtifactFilter")


def file_url(path: str) -> str:
    return f"/api/qa/download?path={quote(path)}"


@strawberry.type(description="A QA file on record: a plot, thumbnail, notebook or report.")
class QaArtifact(Node):
    group_pk: strawberry.Private[int | None]
    ms_pk: strawberry.Private[int | None]
    image_pk: strawberry.Private[int | None]
    caltable_pk: strawberry.Private[int | None]
    kind: str = strawberry.field(description="plot, thumbnail, notebook or report.")
    name: str
    path: str
    media_type: str
    size_bytes: float | None
    created_at: datetime

    @strawberry.field(description="Where to download it.")
    def url(self) -> str:
        return file_url(self.path)

    @strawberry.field
    def group(self, info: GraphInfo) -> Loaded[GroupRef | None]:
        return links.one(info.context, GROUP, self.group_pk)

    @strawberry.field
    def measurement_set(self, info: GraphInfo) -> Loaded[MsRef | None]:
        return links.one(info.context, MS, self.ms_pk)

    @strawberry.field
    def image(self, info: GraphInfo) -> Loaded[ImageRef | None]:
        return links.one(info.context, IMAGE, self.image_pk)

    @strawberry.field
    def cal_table(self, info: GraphInfo) -> Loaded[CalTableRef | None]:
        return links.one(info.context, CALTABLE, self.caltable_pk)


@strawberry.type(description="An entry of a directory listing.")
class FileEntry:
    name: str
    path: str
    kind: str = strawberry.field(
        description="directory, ms, caltable, casatable, fits, image, uvh5, notebook, report or file."
    )
    is_dir: bool
    size_bytes: float | None
    modified: datetime


@strawberry.type(description="One page of a directory under the data roots.")
class DirectoryListing:
    path: str
    entries: list[FileEntry]
    total: int = strawberry.field(description="Entries in the directory (after the kind filter).")
    counts: JSON = strawberry.field(description="How many entries of each kind the directory holds.")


@strawberry.type(description="One HDU of a FITS file.")
class FitsHdu:
    index: int
    name: str
    kind: str
    shape: list[int]


ImageStatistics = fitsinfo.ImageStats
strawberry.type(
    ImageStatistics,
    name="ImageStatistics",
    description="Statistics of the finite pixels (sampled on a stride for huge images); "
    "madRms is 1.4826 x the median absolute deviation.",
)


@strawberry.type(description="Stored pixel values of a box of an image (null where blank).")
class PixelBox:
    x0: int
    y0: int
    width: int
    height: int
    values: list[list[float | None]] = strawberry.field(
        description="Rows: values[j][i] is pixel (x0+i, y0+j)."
    )
    unit: str
    ra_deg: float = strawberry.field(description="Sky position of pixel (x0, y0).")
    dec_deg: float


@strawberry.type(description="A FITS file: HDUs, the chosen HDU's header, WCS and statistics.")
class FitsFile:
    path: str
    size_bytes: float
    hdus: list[FitsHdu]
    hdu: int
    header: JSON
    data_shape: list[int]
    wcs: JSON | None
    statistics: ImageStatistics | None

    @strawberry.field(description="A PNG thumbnail (made on demand, cached).")
    def thumbnail_url(self, size: int = 512) -> str:
        return qa.thumbnail_url(self.path, size)

    # Analysis of the file's image plane (its first image HDU), as on a registered image:
    # the JS9 analysis panel works on any FITS file under the data roots.

    @strawberry.field(
        description="Statistics of the finite pixels inside a sky region of the image plane; "
        "`shape` as `Region.shape` ({type: circle, ra_deg, dec_deg, radius_arcsec}, ...)."
    )
    async def region_statistics(self, info: GraphInfo, shape: JSON) -> science.RegionStatistics:
        stats = await science_resolvers.region_statistics(info.context, self.path, shape)
        return science.RegionStatistics(**vars(stats))

    @strawberry.field(
        description="Fit a 2-D Gaussian or Moffat inside a sky region (`shape` as `Region.shape`) "
        "or in a box around a position of the image plane."
    )
    async def fit(
        self,
        info: GraphInfo,
        model: science.FitModel = science.FitModel.GAUSSIAN,
        shape: JSON | None = None,
        ra_deg: float | None = None,
        dec_deg: float | None = None,
        box_arcsec: float | None = None,
        fit_background: bool = True,
    ) -> science.SourceFit:
        fit = await science_resolvers.fit_source(
            info.context, self.path, ra_deg, dec_deg, box_arcsec, shape, fit_background, model.value
        )
        return science.source_fit(fit)

    @strawberry.field(
        description="The stored values of a box of pixels (0-based, x along NAXIS1), clipped to the "
        "image, at most 128 x 128 (the CASA imval task on a box)."
    )
    async def pixel_values(self, info: GraphInfo, x0: int, y0: int, width: int, height: int) -> PixelBox:
        found = await science_resolvers.pixel_box(info.context, self.path, x0, y0, width, height)
        return PixelBox(**vars(found))


CasaColumn = casatable.ColumnInfo
strawberry.type(CasaColumn, name="CasaColumn", description="A column of a CASA table.")


@strawberry.type(description="A CASA table: schema, keywords, subtables and some rows.")
class CasaTable:
    path: str
    n_rows: int
    table_type: str | None = strawberry.field(description="Calibration type (K, BP...) or MS, when known.")
    info_type: str
    info_subtype: str
    columns: list[CasaColumn]
    keywords: JSON
    subtables: list[str]
    rows: JSON = strawberry.field(description="Rows from `offset`, large array cells summarised.")
    offset: int


@strawberry.type(description="A notebook written for a group.")
class QaNotebook:
    path: str
    artifact: QaArtifact | None
    notebook_type: str
    cells: int


@strawberry.type(description="A catalog-validation report written for an image (a self-contained HTML page).")
class ValidationReport:
    path: str = strawberry.field(description="Where it was written, in the reports directory.")
    image_path: str
    catalog: str
    validation_types: list[str] = strawberry.field(description="The checks it holds, in page order.")
    html: str = strawberry.field(description="The page as written.")
    artifact: QaArtifact | None


def _entry(e: Any) -> FileEntry:
    return FileEntry(
        name=e.name,
        path=str(e.path),
        kind=e.kind,
        is_dir=e.is_dir,
        size_bytes=None if e.size_bytes is None else float(e.size_bytes),
        modified=e.modified,
    )


def _listing(found: Any) -> DirectoryListing:
    return DirectoryListing(
        path=str(found.path),
        entries=[_entry(e) for e in found.entries],
        total=found.total,
        counts=cast(JSON, found.counts),
    )


@strawberry.type
class QaQuery:
    qa_artifacts = list_root(
        QA_ARTIFACT,
        QaArtifact,
        QaArtifactFilter,
        QaArtifactOrderField,
        QaArtifactOrderField.CREATED_AT,
        OrderDirection.DESC,
        "QA artefacts on record, newest first.",
    )

    @strawberry.field(description="A directory under the data roots (default: the QA directory), paged.")
    async def qa_directory(
        self,
        info: GraphInfo,
        path: str | None = None,
        offset: int = 0,
        limit: int = 200,
        kinds: list[str] | None = None,
    ) -> DirectoryListing:
        return _listing(await qa.listing(info.context, path, offset, limit, kinds))

    @strawberry.field(description="A regular file under the data roots (what a download serves).")
    async def qa_file(self, info: GraphInfo, path: str) -> FileEntry:
        return _entry(await qa.file_entry(info.context, path))

    @strawberry.field(description="A PNG thumbnail of a FITS image or picture under the data roots (cached).")
    async def thumbnail(self, info: GraphInfo, path: str, size: int = 512) -> FileEntry:
        return _entry(await qa.thumbnail_entry(info.context, path, size))

    @strawberry.field(description="A FITS file under the data roots: header, WCS, statistics.")
    async def fits_file(self, info: GraphInfo, path: str, hdu: int = 0) -> FitsFile:
        found = await qa.fits_info(info.context, path, hdu)
        stats = found.stats
        return FitsFile(
            path=str(found.path),
            size_bytes=float(found.size_bytes),
            hdus=[FitsHdu(index=h.index, name=h.name, kind=h.kind, shape=h.shape) for h in found.hdus],
            hdu=found.hdu,
            header=cast(JSON, found.header),
            data_shape=found.data_shape,
            wcs=cast(JSON | None, found.wcs),
            statistics=stats,
        )

    @strawberry.field(description="A CASA table under the data roots: schema and rows from `offset`.")
    async def casa_table(self, info: GraphInfo, path: str, offset: int = 0, rows: int = 10) -> CasaTable:
        found = await qa.casa_table(info.context, path, offset, rows)
        return CasaTable(
            path=str(found.path),
            n_rows=found.n_rows,
            table_type=found.table_type,
            info_type=found.info_type,
            info_subtype=found.info_subtype,
            columns=found.columns,
            keywords=cast(JSON, found.keywords),
            subtables=found.subtables,
            rows=cast(JSON, found.rows),
            offset=found.offset,
        )


@strawberry.type
class QaMutation:
    @strawberry.mutation(
        description="Write a QA notebook for a group (its MS, calibration tables and image) and record it; "
        "`outputPath` must be under the data roots (default: `<qa>/notebooks/<group>_<type>.ipynb`).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def generate_qa_notebook(
        self,
        info: GraphInfo,
        group_id: str,
        notebook_type: str = "full",
        output_path: str | None = None,
    ) -> QaNotebook:
        path, row, cells = await notebooks.generate(info.context, group_id, notebook_type, output_path)
        artifact = await info.context.loaders.by_key(QA_ARTIFACT).load(row["id"]) if row else None
        return QaNotebook(path=str(path), artifact=artifact, notebook_type=notebook_type, cells=cells)

    @strawberry.mutation(
        description="Check an image against a catalog (as `Image.catalogValidation`), write the "
        "results as an HTML page and record it. `outputPath` must name an `.html` file inside the "
        "reports directory (relative to it, or absolute within it; default: "
        "`<qa>/reports/<image_stem>_validation_report.html`); anything else is refused "
        "(`OUTPUT_PATH_OUTSIDE_REPORTS`, `BAD_OUTPUT_PATH`) before anything runs.",
        extensions=[requires(Role.OPERATOR)],
    )
    async def generate_validation_report(
        self,
        info: GraphInfo,
        image_id: int | None = None,
        path: str | None = None,
        catalog: str = "nvss",
        validation_types: list[str] | None = None,
        search_radius_arcsec: float = 10.0,
        min_snr: float = 5.0,
        output_path: str | None = None,
    ) -> ValidationReport:
        image = await science_resolvers.image_by_id_or_path(info.context, image_id, path)
        written, row, page, kinds = await reports.generate(
            info.context, image, catalog, validation_types, search_radius_arcsec, min_snr, output_path
        )
        return ValidationReport(
            path=str(written),
            image_path=image.path,
            catalog=catalog.lower(),
            validation_types=list(kinds),
            html=page,
            artifact=await info.context.loaders.by_key(QA_ARTIFACT).load(row["id"]),
        )

    @strawberry.mutation(
        description="Draw the calibration plots of an MS (bandpass per antenna, SPW overview); record them.",
        extensions=[requires(Role.OPERATOR)],
    )
    async def generate_calibration_plots(self, info: GraphInfo, ms_path: str) -> list[QaArtifact]:
        rows = await notebooks.record_calibration_plots(info.context, ms_path)
        found = await info.context.loaders.by_key(QA_ARTIFACT).load_many([r["id"] for r in rows])
        return [f for f in found if f is not None]
