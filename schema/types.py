"""The graph's node types and their links, each link resolved through a DataLoader: sources,
measurements, images, observation groups and mosaics. Jobs and data products are
``schema.job_types``.

Scalar fields are plain attributes read from the row (see ``base.row_factory``); links
return loader futures. Units are in field names; times are UTC; epochs are MJD.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.scalars import JSON

from dsa110.science.ese_heuristic import ese_heuristic_score
from dsa110.times import mjd_to_datetime
from loaders import entities as ent
from resolvers import catalog_validation as validation_resolvers
from resolvers import images as image_resolvers
from resolvers import links
from resolvers import qa as qa_resolvers
from resolvers import science as science_resolvers
from schema import ese, science, urls, validation
from schema.base import After, Before, Connection, First, GraphInfo, Last, Loaded, Node, link_page, page_args
from schema.columns import reads
from schema.files import CalTable, MeasurementSet, UvhFile
from schema.inputs import (
    GroupState,
    MeasurementFilter,
    MeasurementOrderField,
    MosaicStatus,
    OrderDirection,
)
from schema.positions import LocalRmsRange, SkyPositionForms, position_forms
from schema.qa import QaArtifact

if TYPE_CHECKING:
    from schema.job_types import Job

JobRef = Annotated["Job", strawberry.lazy("schema.job_types")]
MEASUREMENT_ORDER = Annotated[
    MeasurementOrderField | None,
    strawberry.argument(
        description="Sort by this column (missing values last); ties keep the default order."
    ),
]
MEASUREMENT_DIRECTION = Annotated[
    OrderDirection,
    strawberry.argument(description="Sort direction (without `orderBy`: the default order, reversed)."),
]


@strawberry.type(description="A radio source monitored by the pipeline (NVSS-named).")
class Source(Node):
    source_id: str = strawberry.field(description="Catalog name, e.g. `NVSS J123456.7+420312`.")
    ra_deg: float
    dec_deg: float
    catalog_flux_jy: float | None = strawberry.field(description="Catalog (NVSS 1.4 GHz) flux density, Jy.")
    n_epochs: int = strawberry.field(description="Number of measurements.")
    mean_flux_jy: float | None = strawberry.field(description="Mean measured peak flux, Jy/beam.")
    min_flux_jy: float | None
    max_flux_jy: float | None
    v: float | None = strawberry.field(description="Coefficient of variation std/mean (VAST V).")
    eta: float | None = strawberry.field(description="Weighted reduced variance (VAST eta, w = 1/sigma^2).")
    chi2_nu: float | None = strawberry.field(description="Reduced chi-square about the weighted mean.")
    sigma_deviation: float | None = strawberry.field(
        description="max |F - mean| / std (legacy ESE statistic)."
    )
    vs_abs_max: float | None = strawberry.field(
        name="vsAbsSignificantMax", description="Largest two-epoch |Vs| among pairs with |Vs| >= 4.3 (VAST)."
    )
    m_abs_max: float | None = strawberry.field(
        name="mAbsSignificantMax", description="Largest two-epoch |m| among pairs with |Vs| >= 4.3 (VAST)."
    )
    first_mjd: float | None
    last_mjd: float | None
    max_snr: float | None = strawberry.field(
        description="Highest signal-to-noise of the measurements: max(peak flux / its error)."
    )
    new_source: bool = strawberry.field(
        description=(
            "New source (VAST definition on forced photometry): first detected (S/N >= 5) only after"
            " earlier epochs where it would have been, i.e. `newHighSigma` > 5. Never null."
        )
    )
    new_high_sigma: float | None = strawberry.field(
        description=(
            "First detection's peak flux over the smallest error of the earlier epochs (VAST"
            " new_high_sigma); null if never detected or detected at its first epoch."
        )
    )

    @strawberry.field(
        description=(
            "Heuristic ESE score 0-0.9, not a probability: the legacy dashboard's `ese_probability`"
            " without its defects: 0.4 if V > 0.2 (else 0.2 if > 0.1), 0.3 if chi2Nu > 3 (else 0.15"
            " if > 2), 0.2 if an ESE candidate not rejected by a person spans 14-180 d. The"
            " detector's evidence is `eseCandidates`. Null without measurements."
        )
    )
    async def ese_heuristic_score(self, info: GraphInfo) -> float | None:
        if self.n_epochs == 0:
            return None
        candidates = await links.all_of(info.context, ent.SOURCE_CANDIDATES, self.pk)
        windows = ((c.status, c.start_mjd, c.end_mjd) for c in candidates)
        return ese_heuristic_score(self.v, self.chi2_nu, windows, self.n_epochs)

    @strawberry.field(description="This source's measurements, by epoch unless `orderBy` says otherwise.")
    async def measurements(
        self,
        info: GraphInfo,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: MeasurementFilter | None = None,
        order_by: MEASUREMENT_ORDER = None,
        direction: MEASUREMENT_DIRECTION = OrderDirection.ASC,
    ) -> Connection[Measurement]:
        relation = ent.SOURCE_MEASUREMENTS.reordered(
            order_by.value if order_by else None, direction is OrderDirection.DESC
        )
        return await link_page(info, relation, self.pk, first, after, last, before, filter)

    @strawberry.field(description="Images this source was measured on, ordered by epoch.")
    async def images(
        self,
        info: GraphInfo,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Image]:
        return await link_page(info, ent.SOURCE_IMAGES, self.pk, first, after, last, before)

    @strawberry.field(
        description="Every measurement in time order, raw and normalised by differential photometry."
    )
    async def light_curve(self, info: GraphInfo) -> science.LightCurve:
        return science.light_curve_from(await science_resolvers.light_curve(info.context, self.pk))

    @strawberry.field(description="The light curve (raw, normalised, ESE windows) as a table to download.")
    def light_curve_export_url(self, format: urls.TableFormat = urls.TableFormat.VOTABLE) -> str:
        return urls.light_curve_export_url(self.source_id, format)

    @strawberry.field(
        description="A plot of the light curve: error bars, ESE candidate windows shaded, baselines drawn."
    )
    def light_curve_plot_url(
        self, format: urls.PlotFormat = urls.PlotFormat.PNG, normalised: bool = True
    ) -> str:
        return urls.light_curve_plot_url(self.source_id, format, normalised)

    @strawberry.field(description="ESE candidates flagged on this source.")
    async def ese_candidates(self, info: GraphInfo) -> list[ese.EseCandidate]:
        return await links.all_of(info.context, ent.SOURCE_CANDIDATES, self.pk)

    @strawberry.field(description="Alerts about this source, oldest first.")
    async def alerts(self, info: GraphInfo) -> list[ese.Alert]:
        return await links.all_of(info.context, ent.SOURCE_ALERTS, self.pk)

    @strawberry.field(description="Catalog entries cross-matched to this source, nearest first.")
    async def cross_matches(self, info: GraphInfo) -> list[science.CrossMatch]:
        return await links.all_of(info.context, ent.SOURCE_CROSS_MATCHES, self.pk)

    @strawberry.field(
        description="Cut-outs around this source on its most recent images (FITS and PNG URLs)."
    )
    async def postage_stamps(
        self, info: GraphInfo, size_arcsec: float = 600.0, limit: int = 20
    ) -> list[science.PostageStamp]:
        page = await links.page_of(info.context, ent.SOURCE_IMAGES, self.pk, page_args(None, None, 500, None))
        stamps = []
        for image in science_resolvers.stamp_images(page.items, limit):
            fits_url, png_url = science.cutout_urls(image.pk, self.ra_deg, self.dec_deg, size_arcsec)
            stamps.append(
                science.PostageStamp(image_id=image.pk, mjd=image.mid_mjd, fits_url=fits_url, png_url=png_url)
            )
        return stamps

    @strawberry.field(
        description="SIMBAD / NED / Gaia objects near this source (UNAVAILABLE when offline and uncached)."
    )
    async def external_catalogs(
        self, info: GraphInfo, service: science.ExternalService, radius_arcsec: float = 30.0
    ) -> science.ExternalCatalogResult:
        result = await science_resolvers.external_catalog(
            info.context, service.value, self.ra_deg, self.dec_deg, radius_arcsec
        )
        return science.external_result(result)


@strawberry.type(description="One flux measurement of a source on an image.")
class Measurement(Node):
    source_pk: strawberry.Private[int]
    image_pk: strawberry.Private[int]
    mjd: float = strawberry.field(description="Epoch of the image (mid-exposure), MJD (UTC).")
    ra_deg: float
    dec_deg: float
    peak_flux_jy: float = strawberry.field(description="Peak flux density, Jy/beam.")
    peak_flux_err_jy: float
    int_flux_jy: float | None = strawberry.field(description="Integrated flux density, Jy.")
    int_flux_err_jy: float | None
    local_rms_jy: float | None = strawberry.field(description="Local noise around the source, Jy/beam.")
    snr: float | None
    forced: bool = strawberry.field(description="Forced photometry at the catalog position.")

    @strawberry.field(description="The epoch as a UTC timestamp.")
    def time(self) -> datetime:
        return mjd_to_datetime(self.mjd)

    @strawberry.field
    def source(self, info: GraphInfo) -> Loaded[Source]:
        return links.one(info.context, ent.SOURCE, self.source_pk)

    @strawberry.field
    def image(self, info: GraphInfo) -> Loaded[Image]:
        return links.one(info.context, ent.IMAGE, self.image_pk)


@strawberry.type(description="A 5-minute (or other) image made by the pipeline.")
class Image(Node):
    group_pk: strawberry.Private[int | None]
    ms_pk: strawberry.Private[int | None]
    path: str
    type: str = strawberry.field(description="Image kind, e.g. `5min`.")
    created_at: datetime
    mid_mjd: float = strawberry.field(description="Mid-exposure epoch, MJD.")
    beam_major_arcsec: float | None
    beam_minor_arcsec: float | None
    beam_pa_deg: float | None
    noise_jy: float | None = strawberry.field(description="Robust image noise, Jy/beam.")
    dynamic_range: float | None
    center_ra_deg: float | None
    center_dec_deg: float | None
    imsize_x: int | None
    imsize_y: int | None
    cellsize_arcsec: float | None
    freq_ghz: float | None
    bandwidth_mhz: float | None
    integration_sec: float | None
    pbcor: bool
    n_measurements: int

    @strawberry.field(description="Integer key of the image (REST `/images/{id}`).", metadata=reads("pk"))
    def image_id(self) -> int:
        return self.pk

    @strawberry.field(
        description="Start of the exposure (FITS `DATE-OBS`): mid-epoch minus half the integration.",
        metadata=reads("mid_mjd", "integration_sec"),
    )
    def observation_start(self) -> datetime:
        return mjd_to_datetime(self.mid_mjd - (self.integration_sec or 0.0) / 2.0 / 86400.0)

    @strawberry.field(
        description="The image centre as sexagesimal text and Galactic l, b.",
        metadata=reads("center_ra_deg", "center_dec_deg"),
    )
    def center_forms(self) -> SkyPositionForms | None:
        if self.center_ra_deg is None or self.center_dec_deg is None:
            return None
        return position_forms(self.center_ra_deg, self.center_dec_deg)

    @strawberry.field(description="Lowest and highest local RMS of this image's measurements.")
    async def local_rms_range(self, info: GraphInfo) -> LocalRmsRange | None:
        found = await image_resolvers.local_rms_range(info.context, self.pk)
        return (
            None
            if found is None
            else LocalRmsRange(min_jy=found[0], max_jy=found[1], n_measurements=found[2])
        )

    @strawberry.field(metadata=reads("group_pk"))
    def group(self, info: GraphInfo) -> Loaded[Group | None]:
        return links.follow(info.context, self, ent.IMAGE_GROUP)

    @strawberry.field(metadata=reads("ms_pk"))
    def measurement_set(self, info: GraphInfo) -> Loaded[MeasurementSet | None]:
        return links.follow(info.context, self, ent.IMAGE_MS)

    @strawberry.field(
        description="Measurements made on this image, in catalog order unless `orderBy` says otherwise."
    )
    async def measurements(
        self,
        info: GraphInfo,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: MeasurementFilter | None = None,
        order_by: MEASUREMENT_ORDER = None,
        direction: MEASUREMENT_DIRECTION = OrderDirection.ASC,
    ) -> Connection[Measurement]:
        relation = ent.IMAGE_MEASUREMENTS.reordered(
            order_by.value if order_by else None, direction is OrderDirection.DESC
        )
        return await link_page(info, relation, self.pk, first, after, last, before, filter)

    @strawberry.field(description="This image's measurements as a table to download.")
    def measurements_export_url(self, format: urls.TableFormat = urls.TableFormat.VOTABLE) -> str:
        return urls.measurements_export_url(self.pk, format)

    @strawberry.field(description="Mosaics that include this image.")
    async def mosaics(self, info: GraphInfo) -> list[Mosaic]:
        return await links.all_of(info.context, ent.IMAGE_MOSAICS, self.pk)

    @strawberry.field(description="Where to download the FITS file.")
    def fits_url(self) -> str:
        return f"/files/images/{self.pk}.fits"

    @strawberry.field(description="A PNG thumbnail (1-99.5 percentile stretch), made on demand and cached.")
    def thumbnail_url(self, size: int = 512) -> str:
        return qa_resolvers.thumbnail_url(self.path, size)

    @strawberry.field(description="QA artefacts about this image.")
    async def qa_artifacts(self, info: GraphInfo) -> list[QaArtifact]:
        return await links.all_of(info.context, ent.IMAGE_QA_ARTIFACTS, self.pk)

    @strawberry.field(description="A cut-out of this image around a position (FITS and PNG URLs).")
    def cutout(self, ra_deg: float, dec_deg: float, size_arcsec: float = 600.0) -> science.PostageStamp:
        fits_url, png_url = science.cutout_urls(self.pk, ra_deg, dec_deg, size_arcsec)
        return science.PostageStamp(image_id=self.pk, mjd=self.mid_mjd, fits_url=fits_url, png_url=png_url)

    @strawberry.field(
        description="Fit a 2-D Gaussian or Moffat around a position (box) or inside a region of this image."
    )
    async def fit(
        self,
        info: GraphInfo,
        model: science.FitModel = science.FitModel.GAUSSIAN,
        ra_deg: float | None = None,
        dec_deg: float | None = None,
        box_arcsec: float | None = None,
        region_id: int | None = None,
        fit_background: bool = True,
    ) -> science.SourceFit:
        ctx = info.context
        shape = (
            await science_resolvers.region_shape_on_image(ctx, region_id, self.pk)
            if region_id is not None
            else None
        )
        fit = await science_resolvers.fit_source(
            ctx, self.path, ra_deg, dec_deg, box_arcsec, shape, fit_background, model.value
        )
        return science.source_fit(fit)

    @strawberry.field(
        description="Pixel values along a line or polyline, or in annuli around a point; the points "
        "are given on the sky (`points`) or in 0-based pixels (`pixels`), exactly one of the two."
    )
    async def profile(
        self,
        info: GraphInfo,
        kind: science.ProfileKind,
        points: list[science.SkyPoint] | None = None,
        pixels: list[science.PixelPoint] | None = None,
        width_arcsec: float = 0.0,
        radius_arcsec: float | None = None,
        n_annuli: int = 20,
    ) -> science.Profile:
        positions = science.profile_positions(points, pixels)
        result = await science_resolvers.profile(
            info.context, self.path, kind.value, positions, width_arcsec, radius_arcsec, n_annuli
        )
        return science.profile_of(result)

    @strawberry.field(
        name="slice",
        description="One row (axis X) or column (axis Y) of this image's pixels, as stored; "
        "`position` is the other pixel coordinate (0-based), the image centre by default.",
    )
    async def axis_slice(
        self, info: GraphInfo, axis: science.ImageAxis = science.ImageAxis.X, position: int | None = None
    ) -> science.Profile:
        result = await science_resolvers.axis_slice(info.context, self.path, axis.value, position)
        return science.profile_of(result)

    @strawberry.field(description="Regions drawn on this image.")
    async def regions(self, info: GraphInfo) -> list[science.Region]:
        return await links.all_of(info.context, ent.IMAGE_REGIONS, self.pk)

    @strawberry.field(
        description="Catalog entries that fall on this image, with pixel positions, brightest first."
    )
    async def catalog_overlay(
        self, info: GraphInfo, catalog: str | None = None, min_flux_jy: float | None = None, limit: int = 1000
    ) -> list[science.CatalogOverlayEntry]:
        entries = await science_resolvers.catalog_overlay(
            info.context, self.path, catalog, min_flux_jy, limit
        )
        return [science.CatalogOverlayEntry(entry=science.catalog_source(e), x=x, y=y) for e, x, y in entries]

    @strawberry.field(
        description="This image checked against a catalog: astrometry (Gaussian fits of the brightest "
        "matched sources), flux scale (measured peak / catalog flux at the image frequency, "
        "alpha -0.7) and completeness (catalog sources detected at `minSnr`)."
    )
    async def catalog_validation(
        self,
        info: GraphInfo,
        catalog: str = "nvss",
        search_radius_arcsec: float = 10.0,
        min_snr: float = 5.0,
    ) -> validation.CatalogValidation:
        found = await validation_resolvers.catalog_validation(
            info.context, self, catalog, search_radius_arcsec, min_snr
        )
        return validation.validation_of(found)


@strawberry.type(description="A file of one subband of an observation group.")
class Subband:
    subband_idx: int
    path: str


@strawberry.type(description="An observation group: 16 subbands -> one Measurement Set -> one image.")
class Group(Node):
    group_id: str = strawberry.field(description="Observation timestamp `YYYY-MM-DDTHH:MM:SS` (UTC).")
    state: GroupState
    received_at: datetime
    updated_at: datetime
    mid_mjd: float
    expected_subbands: int
    retry_count: int
    error: str | None
    has_calibrator: bool | None
    calibrators: JSON | None = strawberry.field(
        description="Calibrators in the beam: name, position, separation, flux."
    )

    @strawberry.field(description="Subband files received so far.")
    async def subbands(self, info: GraphInfo) -> list[Subband]:
        return await links.all_of(info.context, ent.GROUP_SUBBANDS, self.pk, limit=64)

    @strawberry.field(description="How many of the expected subbands have arrived.")
    def present_subbands(self, info: GraphInfo) -> Loaded[int]:
        # A group read with its count (``pipelineStatus``) carries it; others count per batch.
        known: int | None = self.__dict__.get("subbands_present")
        if known is not None:
            return known
        return links.counter(info.context, ent.GROUP_SUBBANDS, self.pk)()

    @strawberry.field
    async def images(self, info: GraphInfo) -> list[Image]:
        return await links.all_of(info.context, ent.GROUP_IMAGES, self.pk)

    @strawberry.field
    async def jobs(self, info: GraphInfo) -> list[JobRef]:
        return await links.all_of(info.context, ent.GROUP_JOBS, self.pk)

    @strawberry.field
    async def measurement_sets(self, info: GraphInfo) -> list[MeasurementSet]:
        return await links.all_of(info.context, ent.GROUP_MEASUREMENT_SETS, self.pk)

    @strawberry.field(description="The raw UVH5 subband files, with their headers.")
    async def uvh_files(self, info: GraphInfo) -> list[UvhFile]:
        rows = await links.all_of(info.context, ent.GROUP_SUBBANDS, self.pk, limit=64)
        return [UvhFile(path=r.path, subband_idx=r.subband_idx, group_pk=self.pk) for r in rows]

    @strawberry.field(description="QA plots, notebooks and reports about this group.")
    async def qa_artifacts(self, info: GraphInfo) -> list[QaArtifact]:
        return await links.all_of(info.context, ent.GROUP_QA_ARTIFACTS, self.pk)


@strawberry.type(description="A mosaic combining images over a time window.")
class Mosaic(Node):
    name: str
    path: str
    status: MosaicStatus
    created_at: datetime
    start_mjd: float
    end_mjd: float
    noise_jy: float | None
    beam_major_arcsec: float | None
    beam_minor_arcsec: float | None
    beam_pa_deg: float | None
    center_ra_deg: float | None
    center_dec_deg: float | None
    n_images: int
    n_sources: int | None

    @strawberry.field(description="Integer key of the mosaic (REST `/mosaics/{id}`).")
    def mosaic_id(self) -> int:
        return self.pk

    @strawberry.field(description="Where to download the FITS file.")
    def fits_url(self) -> str:
        return f"/files/mosaics/{self.pk}.fits"

    @strawberry.field(description="Member images, ordered by epoch.")
    async def images(
        self,
        info: GraphInfo,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[Image]:
        return await link_page(info, ent.MOSAIC_IMAGES, self.pk, first, after, last, before)


__all__ = [
    "CalTable",
    "Group",
    "Image",
    "Measurement",
    "MeasurementSet",
    "Mosaic",
    "Source",
    "Subband",
]
