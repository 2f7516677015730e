"""The Query root: each core type by natural key and by global id, and as a filtered list."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from dsa110.db.filters import (
    DataProductOrderField,
    GroupOrderField,
    ImageOrderField,
    JobOrderField,
    MosaicOrderField,
    Ordering,
    SourceOrderField,
)
from resolvers import lists
from schema import inputs
from schema.base import After, Before, Connection, First, GraphInfo, Last, Node, connection, page_args
from schema.types import DataProduct, Group, Image, Job, Mosaic, Source

Direction = Annotated[inputs.OrderDirection, strawberry.argument(description="Sort direction.")]


async def _list(
    info: GraphInfo,
    entity: str,
    filter: Any,
    order_by: Any,
    direction: Any,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
) -> Connection[Any]:
    ctx = info.context
    ordering = Ordering(order_by.value, direction)
    page = await lists.list_page(ctx, entity, filter, ordering, page_args(first, after, last, before))
    return connection(page, lists.list_counter(ctx, entity, filter))


@strawberry.type
class CoreQuery:
    """Roots for the core graph; other modules contribute their own Query parts."""

    @strawberry.field(description="Any object by its global id.")
    async def node(self, info: GraphInfo, id: strawberry.ID) -> Node:
        return await lists.by_global_id(info.context, id)  # type: ignore[no-any-return]

    @strawberry.field(description="A source by catalog name, e.g. `NVSS J123456.7+420312`.")
    async def source(self, info: GraphInfo, source_id: str) -> Source:
        return await lists.by_natural_key(info.context, "source", "source_id", source_id, "source")  # type: ignore[no-any-return]

    @strawberry.field(description="Sources, filtered and ordered.")
    async def sources(
        self,
        info: GraphInfo,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: inputs.SourceFilter | None = None,
        order_by: inputs.SourceOrderField = SourceOrderField.SOURCE_ID,
        direction: Direction = inputs.OrderDirection.ASC,
    ) -> Connection[Source]:
        return await _list(info, "source", filter, order_by, direction, first, after, last, before)

    @strawberry.field(description="An image by its integer id.")
    async def image(self, info: GraphInfo, image_id: int) -> Image:
        return await lists.by_natural_key(info.context, "image", "id", image_id, "image")  # type: ignore[no-any-return]

    @strawberry.field(description="Images, filtered and ordered.")
    async def images(
        self,
        info: GraphInfo,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: inputs.ImageFilter | None = None,
        order_by: inputs.ImageOrderField = ImageOrderField.MJD,
        direction: Direction = inputs.OrderDirection.DESC,
    ) -> Connection[Image]:
        return await _list(info, "image", filter, order_by, direction, first, after, last, before)

    @strawberry.field(description="An observation group by its timestamp id `YYYY-MM-DDTHH:MM:SS`.")
    async def group(self, info: GraphInfo, group_id: str) -> Group:
        return await lists.by_natural_key(info.context, "group", "group_id", group_id, "group")  # type: ignore[no-any-return]

    @strawberry.field(description="Observation groups, filtered and ordered.")
    async def groups(
        self,
        info: GraphInfo,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: inputs.GroupFilter | None = None,
        order_by: inputs.GroupOrderField = GroupOrderField.GROUP_ID,
        direction: Direction = inputs.OrderDirection.DESC,
    ) -> Connection[Group]:
        return await _list(info, "group", filter, order_by, direction, first, after, last, before)

    @strawberry.field(description="A mosaic by its integer id.")
    async def mosaic(self, info: GraphInfo, mosaic_id: int) -> Mosaic:
        return await lists.by_natural_key(info.context, "mosaic", "id", mosaic_id, "mosaic")  # type: ignore[no-any-return]

    @strawberry.field(description="Mosaics, filtered and ordered.")
    async def mosaics(
        self,
        info: GraphInfo,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: inputs.MosaicFilter | None = None,
        order_by: inputs.MosaicOrderField = MosaicOrderField.START_MJD,
        direction: Direction = inputs.OrderDirection.DESC,
    ) -> Connection[Mosaic]:
        return await _list(info, "mosaic", filter, order_by, direction, first, after, last, before)

    @strawberry.field(description="A job by its integer id.")
    async def job(self, info: GraphInfo, job_id: int) -> Job:
        return await lists.by_natural_key(info.context, "job", "id", job_id, "job")  # type: ignore[no-any-return]

    @strawberry.field(description="Jobs, filtered and ordered (newest first by default).")
    async def jobs(
        self,
        info: GraphInfo,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: inputs.JobFilter | None = None,
        order_by: inputs.JobOrderField = JobOrderField.CREATED_AT,
        direction: Direction = inputs.OrderDirection.DESC,
    ) -> Connection[Job]:
        return await _list(info, "job", filter, order_by, direction, first, after, last, before)

    @strawberry.field(description="A data product by its `dataId`.")
    async def data_product(self, info: GraphInfo, data_id: str) -> DataProduct:
        return await lists.by_natural_key(info.context, "product", "data_id", data_id, "data product")  # type: ignore[no-any-return]

    @strawberry.field(description="Data products, filtered and ordered.")
    async def data_products(
        self,
        info: GraphInfo,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
        filter: inputs.DataProductFilter | None = None,
        order_by: inputs.DataProductOrderField = DataProductOrderField.CREATED_AT,
        direction: Direction = inputs.OrderDirection.DESC,
    ) -> Connection[DataProduct]:
        return await _list(info, "product", filter, order_by, direction, first, after, last, before)
