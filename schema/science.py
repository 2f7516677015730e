"""Science in the graph: ESE candidates and alerts, light curves, image analysis, catalogs."""

from __future__ import annotations

import math
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

import strawberry
from strawberry.scalars import JSON

from dsa110.auth.identity import Role
from dsa110.db.enums import OrderDirection
from dsa110.db.filters import RegionFilter, RegionOrderField
from dsa110.ops import ingest
from dsa110.ops import regions as region_store
from dsa110.science import fitting, profile_fit, profiles
from dsa110.science.errors import ScienceInputError
from dsa110.times import mjd_to_datetime
from loaders.entities import CATALOG_SOURCE, IMAGE, REGION
from resolvers import links, lists, science
from resolvers.errors import BadUserInput
from schema.base import GraphInfo, Loaded, Node
from schema.ese import EseMutation, EseQuery
from schema.inputs import _enum, _input
from schema.lists import list_root
from schema.permissions import requires

if TYPE_CHECKING:
    from schema.types import Image, Source

SourceRef = Annotated["Source", strawberry.lazy("schema.types")]
ImageRef = Annotated["Image", strawberry.lazy("schema.types")]

_input(RegionFilter, "RegionFilter")
_enum(RegionOrderField, "RegionOrderField", "Columns regions can be sorted by.")


# --- light curves --------------------------------------------------------------------------


@strawberry.type(description="One epoch of a light curve: raw and differentially normalised flux.")
class LightCurvePoint:
    mjd: float
    flux_jy: float = strawberry.field(description="Measured peak flux, Jy/beam.")
    flux_err_jy: float
    norm_flux_jy: float = strawberry.field(
        description="Flux divided by the image's ensemble correction C: the median, over steady reference "
        "sources measured on that image, of their flux over their usual level (differential photometry)."
    )
    norm_flux_err_jy: float = strawberry.field(
        description="Error with the correction's uncertainty propagated."
    )
    corrected: bool = strawberry.field(description="False when the image had too few references to correct.")
    image_id: int

    @strawberry.field
    def time(self) -> datetime:
        return mjd_to_datetime(self.mjd)

    @strawberry.field
    def image(self, info: GraphInfo) -> Loaded[ImageRef]:
        return links.one(info.context, IMAGE, self.image_id)


@strawberry.type(description="A source's light curve, in time order.")
class LightCurve:
    n_references: int = strawberry.field(description="Reference sources used for normalisation.")
    points: list[LightCurvePoint]


def light_curve_from(curve: ingest.NormalisedLightCurve | None) -> LightCurve:
    if curve is None:
        return LightCurve(n_references=0, points=[])
    points = [
        LightCurvePoint(
            mjd=mjd, flux_jy=f, flux_err_jy=e, norm_flux_jy=nf, norm_flux_err_jy=ne, corrected=c, image_id=img
        )
        for mjd, f, e, nf, ne, c, img in zip(
            curve.mjd,
            curve.flux_jy,
            curve.flux_err_jy,
            curve.norm_flux_jy,
            curve.norm_flux_err_jy,
            curve.corrected,
            curve.image_pks,
            strict=True,
        )
    ]
    return LightCurve(n_references=curve.n_references, points=points)


# --- image analysis -----------------------------------------------------------------------


@strawberry.type(description="A postage stamp of a source on one image, served over HTTP.")
class PostageStamp:
    image_id: int
    mjd: float
    fits_url: str = strawberry.field(description="Cut-out as FITS (WCS and beam kept).")
    png_url: str = strawberry.field(description="Cut-out as PNG (asinh stretch).")

    @strawberry.field
    def image(self, info: GraphInfo) -> Loaded[ImageRef]:
        return links.one(info.context, IMAGE, self.image_id)


def cutout_urls(image_id: int, ra_deg: float, dec_deg: float, size_arcsec: float) -> tuple[str, str]:
    """The stamp's URLs; a size or position the route would refuse is refused here instead,
    so no field hands out a URL that cannot work (a tiny size is widened by the route)."""
    if not (math.isfinite(size_arcsec) and size_arcsec > 0):
        raise ScienceInputError("BAD_SIZE", "sizeArcsec must be a positive number of arcsec")
    if not (math.isfinite(ra_deg) and math.isfinite(dec_deg) and -90.0 <= dec_deg <= 90.0):
        raise ScienceInputError("BAD_POSITION", "raDeg and decDeg must be a position on the sky")
    query = urlencode({"ra": f"{ra_deg:.7f}", "dec": f"{dec_deg:.7f}", "size": f"{size_arcsec:g}"})
    return f"/cutouts/images/{image_id}.fits?{query}", f"/cutouts/images/{image_id}.png?{query}"


@strawberry.enum(
    description="A source model: Gaussian, or Moffat (a Gaussian-like core with power-law wings)."
)
class FitModel(Enum):
    GAUSSIAN = "gaussian"
    MOFFAT = "moffat"


@strawberry.type(
    description="A 2-D source model (Gaussian or Moffat) fitted to image pixels; *_err are 1-sigma."
)
class SourceFit:
    model: FitModel
    peak: float = strawberry.field(description="Peak in the image unit (see `unit`).")
    peak_err: float
    ra_deg: float
    dec_deg: float
    ra_err_arcsec: float
    dec_err_arcsec: float
    fwhm_major_arcsec: float
    fwhm_major_err_arcsec: float
    fwhm_minor_arcsec: float
    fwhm_minor_err_arcsec: float
    pa_deg: float = strawberry.field(description="Major axis, degrees east of north, [0, 180).")
    pa_err_deg: float
    background: float | None
    background_err: float | None
    integrated_flux_jy: float | None
    integrated_flux_err_jy: float | None
    unit: str
    n_pixels: int
    reduced_chi2: float
    residual_rms: float
    beta: float | None = strawberry.field(description="The Moffat's power index; null for a Gaussian.")
    beta_err: float | None


@strawberry.enum(description="Shape of an image profile.")
class ProfileKind(Enum):
    LINE = "line"
    POLYLINE = "polyline"
    RADIAL = "radial"


@strawberry.enum(description="A pixel axis: X runs along a row (NAXIS1), Y along a column (NAXIS2).")
class ImageAxis(Enum):
    X = "x"
    Y = "y"


@strawberry.input(description="A position on the sky, degrees.")
class SkyPoint:
    ra_deg: float
    dec_deg: float


@strawberry.input(description="A pixel position, 0-based with pixel centres on integers (x along NAXIS1).")
class PixelPoint:
    x: float
    y: float


def profile_positions(
    points: list[SkyPoint] | None, pixels: list[PixelPoint] | None
) -> list[profiles.Position]:
    """A profile's positions from exactly one of its two forms: on the sky or in pixels."""
    if (points is None) == (pixels is None):
        raise BadUserInput("give exactly one of `points` (sky) and `pixels`", field="points")
    if pixels is not None:
        return [profiles.Pixel(p.x, p.y) for p in pixels]
    return [(p.ra_deg, p.dec_deg) for p in points or ()]


@strawberry.type(description="A sample of an image profile.")
class ProfilePoint:
    distance_arcsec: float
    ra_deg: float
    dec_deg: float
    x: float = strawberry.field(description="Pixel position of the sample (0-based; the centre for radial).")
    y: float
    value: float | None = strawberry.field(description="Mean pixel value; null where no valid pixel lies.")
    error: float | None
    n_samples: int


@strawberry.type(
    description="A Gaussian or Moffat fitted to a profile's values against `distanceArcsec`; "
    "*_err are 1-sigma."
)
class ProfileFit:
    model: FitModel
    amplitude: float = strawberry.field(description="Peak above the background, in the profile's unit.")
    amplitude_err: float | None
    center_arcsec: float = strawberry.field(description="Where the peak lies, as a `distanceArcsec`.")
    center_err_arcsec: float | None
    fwhm_arcsec: float
    fwhm_err_arcsec: float | None
    sigma_arcsec: float | None = strawberry.field(description="The Gaussian's standard deviation.")
    sigma_err_arcsec: float | None
    alpha_arcsec: float | None = strawberry.field(description="The Moffat's core width.")
    alpha_err_arcsec: float | None
    beta: float | None = strawberry.field(description="The Moffat's power index.")
    beta_err: float | None
    background: float
    background_err: float | None
    chi2: float
    reduced_chi2: float
    r_squared: float | None
    n_points: int = strawberry.field(description="Points fitted (those with a value).")
    weighted: bool = strawberry.field(description="True when the points were weighted by 1/error^2.")
    model_values: list[float] = strawberry.field(description="The fitted curve at every point, for plotting.")


@strawberry.type(description="Pixel values along a line, a polyline, a row or column, or in annuli.")
class Profile:
    result: strawberry.Private[profiles.Profile]
    kind: str
    unit: str
    points: list[ProfilePoint]

    @strawberry.field(description="Fit a Gaussian or a Moffat on a constant background to this profile.")
    async def fit(self, model: FitModel = FitModel.GAUSSIAN) -> ProfileFit:
        return profile_fit_of(await science.fit_profile(self.result, model.value))


@strawberry.type(description="Statistics of the finite pixels inside a region, in the image unit.")
class RegionStatistics:
    mean: float
    rms: float = strawberry.field(description="Root mean square sqrt(sum x^2 / n).")
    std: float = strawberry.field(description="Sample standard deviation.")
    min: float
    max: float
    sum: float
    n_pixels: int
    unit: str


@strawberry.type(description="A region drawn on an image (circle, ellipse, rotated rectangle, polygon).")
class Region(Node):
    image_pk: strawberry.Private[int]
    name: str
    type: str
    shape: JSON = strawberry.field(
        description="The shape in sky coordinates, e.g. {type: circle, ra_deg, ...}."
    )
    created_at: datetime
    created_by: str | None
    updated_at: datetime | None

    @strawberry.field(description="Integer key of the region.")
    def region_id(self) -> int:
        return self.pk

    @strawberry.field
    def image(self, info: GraphInfo) -> Loaded[ImageRef]:
        return links.one(info.context, IMAGE, self.image_pk)

    @strawberry.field(description="Pixel statistics inside the region.")
    async def statistics(self, info: GraphInfo) -> RegionStatistics:
        image = await science.image_by_pk(info.context, self.image_pk)
        stats = await science.region_statistics(info.context, image.path, self.shape)
        return RegionStatistics(**vars(stats))


# --- catalogs -----------------------------------------------------------------------------


@strawberry.type(description="A catalog entry (NVSS, FIRST, VLASS...).")
class CatalogSource:
    catalog: str
    name: str
    ra_deg: float
    dec_deg: float
    flux_jy: float | None
    flux_err_jy: float | None
    major_arcsec: float | None
    minor_arcsec: float | None
    pa_deg: float | None


@strawberry.type(description="A catalog entry and its distance from the query position.")
class CatalogMatch:
    entry: CatalogSource
    separation_arcsec: float


@strawberry.type(description="A catalog entry on an image, with its pixel position (0-based).")
class CatalogOverlayEntry:
    entry: CatalogSource
    x: float
    y: float


@strawberry.type(description="A source's cross-match to a catalog entry.")
class CrossMatch:
    catalog_pk: strawberry.Private[int]
    separation_arcsec: float

    @strawberry.field
    async def entry(self, info: GraphInfo) -> CatalogSource:
        row = await info.context.loaders.by_key(CATALOG_SOURCE).load(self.catalog_pk)
        return catalog_source(row)


def catalog_source(row: Any) -> CatalogSource:
    """From a catalog row (dict) or a ``CatalogEntry``."""
    get: Any = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    return CatalogSource(
        catalog=get("catalog"),
        name=get("name"),
        ra_deg=get("ra_deg"),
        dec_deg=get("dec_deg"),
        flux_jy=get("flux_jy"),
        flux_err_jy=get("flux_err_jy"),
        major_arcsec=get("major_arcsec"),
        minor_arcsec=get("minor_arcsec"),
        pa_deg=get("pa_deg"),
    )


def catalog_matches(entries: list[Any]) -> list[CatalogMatch]:
    return [CatalogMatch(entry=catalog_source(e), separation_arcsec=e.separation_arcsec) for e in entries]


@strawberry.enum(description="External services queried live (cached in the database).")
class ExternalService(Enum):
    SIMBAD = "simbad"
    NED = "ned"
    GAIA = "gaia"


@strawberry.type(description="An object from an external service.")
class ExternalObject:
    name: str
    ra_deg: float
    dec_deg: float
    separation_arcsec: float
    object_type: str | None
    extra: JSON


@strawberry.type(description="What an external service returned (possibly from the cache).")
class ExternalCatalogResult:
    service: str
    fetched_at: datetime
    cached: bool
    stale: bool
    objects: list[ExternalObject]


def external_result(result: Any) -> ExternalCatalogResult:
    return ExternalCatalogResult(
        service=result.service,
        fetched_at=result.fetched_at,
        cached=result.cached,
        stale=result.stale,
        objects=[ExternalObject(**vars(o)) for o in result.objects],
    )


# --- roots ---------------------------------------------------------------------------------


@strawberry.type
class ScienceQuery(EseQuery):
    regions = list_root(
        REGION,
        Region,
        RegionFilter,
        RegionOrderField,
        RegionOrderField.CREATED,
        OrderDirection.ASC,
        "Regions drawn on images.",
    )

    @strawberry.field(description="A region by its integer id.")
    async def region(self, info: GraphInfo, region_id: int) -> Region:
        return await lists.by_natural_key(info.context, REGION, region_id)

    @strawberry.field(description="Catalog entries within a cone, nearest first.")
    async def catalog_sources(
        self,
        info: GraphInfo,
        ra_deg: float,
        dec_deg: float,
        radius_arcsec: float,
        catalog: str | None = None,
        min_flux_jy: float | None = None,
        limit: int = 1000,
    ) -> list[CatalogMatch]:
        entries = await science.cone_search(
            info.context, ra_deg, dec_deg, radius_arcsec, catalog, min_flux_jy, limit
        )
        return catalog_matches(entries)

    @strawberry.field(description="Objects from SIMBAD, NED or Gaia around a position (UNAVAILABLE offline).")
    async def external_catalog(
        self,
        info: GraphInfo,
        service: ExternalService,
        ra_deg: float,
        dec_deg: float,
        radius_arcsec: float = 30.0,
    ) -> ExternalCatalogResult:
        result = await science.external_catalog(info.context, service.value, ra_deg, dec_deg, radius_arcsec)
        return external_result(result)


@strawberry.type
class ScienceMutation(EseMutation):
    @strawberry.mutation(
        description="Draw a region on an image (operator); `createdBy` is the caller's identity.",
        extensions=[requires(Role.OPERATOR)],
    )
    async def create_region(self, info: GraphInfo, image_id: int, name: str, shape: JSON) -> Region:
        ctx = info.context
        pk = await region_store.create_region(ctx.engine, image_id, name, shape, ctx.identity.author)
        return await lists.by_natural_key(ctx, REGION, pk)

    @strawberry.mutation(
        description="Rename a region or change its shape (operator).", extensions=[requires(Role.OPERATOR)]
    )
    async def update_region(
        self, info: GraphInfo, region_id: int, name: str | None = None, shape: JSON | None = None
    ) -> Region:
        ctx = info.context
        await region_store.update_region(ctx.engine, region_id, name, shape)
        return await lists.by_natural_key(ctx, REGION, region_id)

    @strawberry.mutation(
        description="Delete a region; true when it existed (operator).", extensions=[requires(Role.OPERATOR)]
    )
    async def delete_region(self, info: GraphInfo, region_id: int) -> bool:
        await region_store.delete_region(info.context.engine, region_id)
        return True


def source_fit(fit: fitting.SourceFit) -> SourceFit:
    return SourceFit(**{**vars(fit), "model": FitModel(fit.model)})


def profile_of(result: profiles.Profile) -> Profile:
    return Profile(
        result=result,
        kind=result.kind,
        unit=result.unit,
        points=[ProfilePoint(**vars(p)) for p in result.points],
    )


def profile_fit_of(fit: profile_fit.ProfileFit) -> ProfileFit:
    """The domain fit under unit-named fields: its width is sigma or alpha, by model."""
    is_moffat = fit.model == "moffat"
    return ProfileFit(
        model=FitModel(fit.model),
        amplitude=fit.amplitude,
        amplitude_err=fit.amplitude_err,
        center_arcsec=fit.center,
        center_err_arcsec=fit.center_err,
        fwhm_arcsec=fit.fwhm,
        fwhm_err_arcsec=fit.fwhm_err,
        sigma_arcsec=None if is_moffat else fit.width,
        sigma_err_arcsec=None if is_moffat else fit.width_err,
        alpha_arcsec=fit.width if is_moffat else None,
        alpha_err_arcsec=fit.width_err if is_moffat else None,
        beta=fit.beta,
        beta_err=fit.beta_err,
        background=fit.background,
        background_err=fit.background_err,
        chi2=fit.chi2,
        reduced_chi2=fit.reduced_chi2,
        r_squared=fit.r_squared,
        n_points=fit.n_points,
        weighted=fit.weighted,
        model_values=fit.model_values,
    )
