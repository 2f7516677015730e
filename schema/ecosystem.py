"""Where other tools meet the graph: export and plot URLs at the root of the graph.

The per-object URLs live on their types (``Source.lightCurveExportUrl``,
``Source.lightCurvePlotUrl``, ``Image.measurementsExportUrl``, ...); these are the
lists: every source or candidate a filter selects, as a table, and the sky map.
"""

from __future__ import annotations

import strawberry

from dsa110.db.enums import OrderDirection
from dsa110.db.filters import EseCandidateFilter, EseCandidateOrderField, SourceFilter, SourceOrderField
from dsa110.vo.holdings import held_catalogs
from schema import (
    inputs,  # noqa: F401  (registers the inputs and enums)
    science,  # noqa: F401  (registers the ESE candidate filter and order enum)
)
from schema.base import GraphInfo
from schema.urls import PlotFormat, TableFormat, listing_export_url, sky_map_url


@strawberry.type(
    description="An external catalog the pipeline holds (cone-searchable at `/vo/catalogs/{name}/scs`)."
)
class HeldCatalog:
    name: str
    n_entries: int
    ra_deg: float = strawberry.field(description="Mean position of its entries (a test-query centre).")
    dec_deg: float


@strawberry.type
class EcosystemQuery:
    @strawberry.field(description="The external catalogs held (NVSS, FIRST, VLASS...), by name.")
    async def catalogs(self, info: GraphInfo) -> list[HeldCatalog]:
        return [HeldCatalog(**vars(c)) for c in await held_catalogs(info.context.engine)]

    @strawberry.field(
        description="A URL of every source the filter selects, as a table (streamed; same filter and "
        "order as `sources`)."
    )
    def sources_export_url(
        self,
        format: TableFormat = TableFormat.VOTABLE,
        filter: SourceFilter | None = None,
        order_by: SourceOrderField = SourceOrderField.SOURCE_ID,
        direction: OrderDirection = OrderDirection.ASC,
    ) -> str:
        return listing_export_url("sources", format, filter, order_by, direction)

    @strawberry.field(description="A URL of every ESE candidate the filter selects, as a table.")
    def ese_candidates_export_url(
        self,
        format: TableFormat = TableFormat.VOTABLE,
        filter: EseCandidateFilter | None = None,
        order_by: EseCandidateOrderField = EseCandidateOrderField.SCORE,
        direction: OrderDirection = OrderDirection.DESC,
    ) -> str:
        return listing_export_url("ese_candidates", format, filter, order_by, direction)

    @strawberry.field(
        description="A URL of a sky map of the monitored strip: sources, ESE candidates (coloured by "
        "significance) and sources with open alerts."
    )
    def ese_sky_map_url(self, format: PlotFormat = PlotFormat.PNG) -> str:
        return sky_map_url(format)
