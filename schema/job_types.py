"""Jobs and the data products they make: ``Job`` (with its log lines) and ``DataProduct``
(with its lineage). The sky and observation types they link to are ``schema.types``.

Scalar fields are plain attributes read from the row (see ``base.row_factory``); links
return loader futures.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from loaders import entities as ent
from resolvers import lineage, links
from schema import products
from schema.base import GraphInfo, Loaded, Node, page_args
from schema.files import CalTable, MeasurementSet
from schema.inputs import JobState, JobType, ProductStatus, ProductType
from schema.types import Group, Image, Mosaic


@strawberry.type(description="A line of a job's log.")
class JobLogLine:
    logged_at: datetime
    line: str


@strawberry.type(
    description="A pipeline job (calibrate, image, mosaic, ...). States: PENDING (queued) -> RUNNING -> "
    "DONE (succeeded) | FAILED | CANCELLED."
)
class Job(Node):
    group_pk: strawberry.Private[int | None]
    batch_id: strawberry.Private[int | None]
    type: JobType
    state: JobState
    params: JSON
    ms_path: str | None
    created_at: datetime
    started_at: datetime | None = strawberry.field(description="When the latest attempt started.")
    finished_at: datetime | None
    error: str | None
    attempts: int = strawberry.field(description="Attempts started so far (a lost worker's job is retried).")
    max_attempts: int = strawberry.field(description="Attempts allowed before a lost job fails.")
    progress: float | None = strawberry.field(description="0-1, as the job reports it (`@@progress`).")
    progress_message: str | None = strawberry.field(description="What the job said it is doing.")
    result: JSON | None = strawberry.field(description="What the job reported it made (`@@result`).")
    exit_code: int | None = strawberry.field(description="Exit status of the latest attempt's process.")
    created_by: str | None = strawberry.field(description="Who queued it (`key:<name>`, `oidc:<subject>`).")
    worker: str | None = strawberry.field(description="The worker of the latest attempt.")
    executor: str | None = strawberry.field(description="`local` or `dask`.")
    lease_expires_at: datetime | None = strawberry.field(
        description="While running: when the job counts as lost unless its worker renews the lease."
    )
    heartbeat_at: datetime | None
    not_before: datetime | None = strawberry.field(description="A retried job waits until then.")
    cancel_requested_at: datetime | None
    cancel_requested_by: str | None
    batch_item: str | None = strawberry.field(description="The item of its batch this job works on.")

    @strawberry.field(description="Integer key of the job (REST `/jobs/id/{id}`).")
    def job_id(self) -> int:
        return self.pk

    @strawberry.field(name="batchId", description="The batch this job belongs to, if any.")
    def batch_key(self) -> int | None:
        return self.batch_id

    @strawberry.field
    def group(self, info: GraphInfo) -> Loaded[Group | None]:
        return links.one(info.context, ent.GROUP, self.group_pk)

    @strawberry.field(description="Data products this job made.")
    async def outputs(self, info: GraphInfo) -> list[DataProduct]:
        return await links.all_of(info.context, ent.JOB_OUTPUTS, self.pk)

    @strawberry.field(description="Data products this job read.")
    async def inputs(self, info: GraphInfo) -> list[DataProduct]:
        return await links.all_of(info.context, ent.JOB_INPUTS, self.pk)

    @strawberry.field(description="The job's log, oldest line first.")
    async def logs(self, info: GraphInfo, last: int = 200) -> list[JobLogLine]:
        page = await links.page_of(info.context, ent.JOB_LOGS, self.pk, page_args(None, None, last, None))
        return page.items


@strawberry.type(description="A data product from staging to publication, with its lineage.")
class DataProduct(Node):
    image_pk: strawberry.Private[int | None]
    mosaic_pk: strawberry.Private[int | None]
    ms_pk: strawberry.Private[int | None]
    caltable_pk: strawberry.Private[int | None]
    data_id: str
    data_type: ProductType = strawberry.field(name="type")
    status: ProductStatus
    stage_path: str
    published_path: str | None
    created_at: datetime
    staged_at: datetime
    published_at: datetime | None
    publish_mode: str | None
    qa_status: str | None
    validation_status: str | None
    finalization_status: str
    auto_publish: bool
    publish_attempts: int
    publish_error: str | None
    publish_failed_at: datetime | None = strawberry.field(
        description="When the last publish attempt failed (with `publishError`)."
    )
    finalized_by: str | None = strawberry.field(
        description="Who finalized it: the caller's identity (`key:<name>`, `oidc:<subject>`)."
    )
    published_by: str | None = strawberry.field(
        description="Whose request published it (manually, or automatically on finalize or retry)."
    )
    metadata: JSON | None

    @strawberry.field(description="Products this one was derived from.")
    async def parents(self, info: GraphInfo) -> list[DataProduct]:
        return await links.all_of(info.context, ent.PRODUCT_PARENTS, self.pk)

    @strawberry.field(description="Products derived from this one.")
    async def children(self, info: GraphInfo) -> list[DataProduct]:
        return await links.all_of(info.context, ent.PRODUCT_CHILDREN, self.pk)

    @strawberry.field(description="Direct parents (`upstream`) or children as {relationship: [dataId]}.")
    async def lineage_by_relationship(self, info: GraphInfo, upstream: bool = True) -> JSON:
        return JSON(await lineage.by_relationship(info.context, self.pk, upstream))

    @strawberry.field(description="Jobs that made or read this product.")
    async def jobs(self, info: GraphInfo) -> list[Job]:
        return await links.all_of(info.context, ent.PRODUCT_JOBS, self.pk)

    @strawberry.field
    def image(self, info: GraphInfo) -> Loaded[Image | None]:
        return links.one(info.context, ent.IMAGE, self.image_pk)

    @strawberry.field
    def mosaic(self, info: GraphInfo) -> Loaded[Mosaic | None]:
        return links.one(info.context, ent.MOSAIC, self.mosaic_pk)

    @strawberry.field
    def measurement_set(self, info: GraphInfo) -> Loaded[MeasurementSet | None]:
        return links.one(info.context, ent.MS, self.ms_pk)

    @strawberry.field
    def cal_table(self, info: GraphInfo) -> Loaded[CalTable | None]:
        return links.one(info.context, ent.CALTABLE, self.caltable_pk)

    @strawberry.field(description="Whether automatic publishing would take this product now, and why not.")
    def auto_publish_criteria(self) -> products.AutoPublishCriteria:
        return products.auto_publish_criteria(self.__dict__)

    @strawberry.field(
        description="Every product this one comes from, level by level (raw -> MS -> tables -> image ...)."
    )
    async def ancestors(self, info: GraphInfo, depth: int = 8) -> list[DataProduct]:
        return await lineage.walk(info.context, self.pk, ent.PRODUCT_PARENTS, depth)

    @strawberry.field(description="Every product made from this one, level by level.")
    async def descendants(self, info: GraphInfo, depth: int = 8) -> list[DataProduct]:
        return await lineage.walk(info.context, self.pk, ent.PRODUCT_CHILDREN, depth)


__all__ = ["DataProduct", "Job", "JobLogLine"]
