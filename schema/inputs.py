"""GraphQL inputs and enums, registered from the domain's own dataclasses and enums.

The filters are defined once, in ``dsa110.db.filters`` (where they become SQL); this
module only names them for the graph and copies each field's ``doc`` metadata into its
GraphQL description, so astronomers see units and meanings in GraphiQL.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import strawberry

from dsa110.db import enums, filters

C = TypeVar("C")


def _input(cls: type[C], name: str) -> type[C]:
    docs = {f.name: f.metadata.get("doc") for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    registered = strawberry.input(cls, name=name, description=(cls.__doc__ or "").strip() or None)
    for field in registered.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        field.description = docs.get(field.python_name)
    return registered


def _enum(cls: Any, name: str, description: str) -> Any:
    return strawberry.enum(cls, name=name, description=description)


GroupState = _enum(enums.GroupState, "GroupState", "Where an observation group is in the ingest queue.")
JobState = _enum(enums.JobState, "JobState", "Lifecycle of a pipeline job.")
JobType = _enum(enums.JobType, "JobType", "What a job does.")
ProductType = _enum(enums.ProductType, "DataProductType", "Kind of data product.")
ProductStatus = _enum(enums.ProductStatus, "DataProductStatus", "Staging -> publishing -> published.")
MosaicStatus = _enum(enums.MosaicStatus, "MosaicStatus", "Build state of a mosaic.")
CandidateStatus = _enum(enums.CandidateStatus, "EseCandidateStatus", "Review state of an ESE candidate.")
OrderDirection = _enum(enums.OrderDirection, "OrderDirection", "Sort direction.")
SourceOrderField = _enum(filters.SourceOrderField, "SourceOrderField", "Columns sources can be sorted by.")
ImageOrderField = _enum(filters.ImageOrderField, "ImageOrderField", "Columns images can be sorted by.")
GroupOrderField = _enum(filters.GroupOrderField, "GroupOrderField", "Columns groups can be sorted by.")
MosaicOrderField = _enum(filters.MosaicOrderField, "MosaicOrderField", "Columns mosaics can be sorted by.")
JobOrderField = _enum(filters.JobOrderField, "JobOrderField", "Columns jobs can be sorted by.")
DataProductOrderField = _enum(
    filters.DataProductOrderField, "DataProductOrderField", "Columns data products can be sorted by."
)

ConeFilter = _input(filters.ConeFilter, "ConeFilter")
SourceFilter = _input(filters.SourceFilter, "SourceFilter")
MeasurementFilter = _input(filters.MeasurementFilter, "MeasurementFilter")
ImageFilter = _input(filters.ImageFilter, "ImageFilter")
GroupFilter = _input(filters.GroupFilter, "GroupFilter")
MosaicFilter = _input(filters.MosaicFilter, "MosaicFilter")
JobFilter = _input(filters.JobFilter, "JobFilter")
DataProductFilter = _input(filters.DataProductFilter, "DataProductFilter")
