"""The Query root: each core type by natural key and by global id, and as a filtered list."""

from __future__ import annotations

import strawberry

from dsa110.db.enums import OrderDirection
from dsa110.db.filters import (
    DataProductFilter,
    DataProductOrderField,
    GroupFilter,
    GroupOrderField,
    ImageFilter,
    ImageOrderField,
    JobFilter,
    JobOrderField,
    MosaicFilter,
    MosaicOrderField,
    SourceFilter,
    SourceOrderField,
)
from loaders.entities import GROUP, IMAGE, IMAGE_GROUP, IMAGE_MS, JOB, MOSAIC, PRODUCT, SOURCE
from resolvers import lists
from resolvers import science as science_resolvers
from resolvers.errors import NotFound
from schema import inputs  # noqa: F401  (registers the inputs and enums)
from schema.base import GraphInfo, Node
from schema.entity_types import NODE_ENTITIES
from schema.job_types import DataProduct, Job
from schema.lists import list_root
from schema.types import Group, Image, Mosaic, Source

ASC, DESC = OrderDirection.ASC, OrderDirection.DESC


@strawberry.type
class CoreQuery:
    """Roots for the core graph; other modules contribute their own Query parts."""

    sources = list_root(
        SOURCE,
        Source,
        SourceFilter,
        SourceOrderField,
        SourceOrderField.SOURCE_ID,
        ASC,
        "Sources, filtered and ordered.",
    )
    images = list_root(
        IMAGE,
        Image,
        ImageFilter,
        ImageOrderField,
        ImageOrderField.MJD,
        DESC,
        "Images, newest first.",
        links={"measurementSet": IMAGE_MS, "group": IMAGE_GROUP},
    )
    groups = list_root(
        GROUP,
        Group,
        GroupFilter,
        GroupOrderField,
        GroupOrderField.GROUP_ID,
        DESC,
        "Observation groups, newest first.",
    )
    mosaics = list_root(
        MOSAIC,
        Mosaic,
        MosaicFilter,
        MosaicOrderField,
        MosaicOrderField.START_MJD,
        DESC,
        "Mosaics, newest first.",
    )
    jobs = list_root(
        JOB, Job, JobFilter, JobOrderField, JobOrderField.CREATED_AT, DESC, "Jobs, newest first."
    )
    data_products = list_root(
        PRODUCT,
        DataProduct,
        DataProductFilter,
        DataProductOrderField,
        DataProductOrderField.CREATED_AT,
        DESC,
        "Data products, newest first.",
    )

    @strawberry.field(description="Any object by its global id.")
    async def node(self, info: GraphInfo, id: strawberry.ID) -> Node:
        node = await lists.by_global_id(info.context, id, NODE_ENTITIES)
        if not isinstance(node, Node):  # unreachable while NODE_ENTITIES is derived from Node types
            raise NotFound("no node with this id", id=id[:128])
        return node

    @strawberry.field(description="A source by catalog name, e.g. `NVSS J123456.7+420312`.")
    async def source(self, info: GraphInfo, source_id: str) -> Source:
        return await lists.by_natural_key(info.context, SOURCE, source_id)

    @strawberry.field(description="An image by its integer id, or by its exact file path: give one of them.")
    async def image(self, info: GraphInfo, image_id: int | None = None, path: str | None = None) -> Image:
        return await science_resolvers.image_by_id_or_path(info.context, image_id, path)

    @strawberry.field(description="An observation group by its timestamp id `YYYY-MM-DDTHH:MM:SS`.")
    async def group(self, info: GraphInfo, group_id: str) -> Group:
        return await lists.by_natural_key(info.context, GROUP, group_id)

    @strawberry.field(description="A mosaic by its integer id.")
    async def mosaic(self, info: GraphInfo, mosaic_id: int) -> Mosaic:
        return await lists.by_natural_key(info.context, MOSAIC, mosaic_id)

    @strawberry.field(description="A job by its integer id.")
    async def job(self, info: GraphInfo, job_id: int) -> Job:
        return await lists.by_natural_key(info.context, JOB, job_id)

    @strawberry.field(description="A data product by its `dataId`.")
    async def data_product(self, info: GraphInfo, data_id: str) -> DataProduct:
        return await lists.by_natural_key(info.context, PRODUCT, data_id)
