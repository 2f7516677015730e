"""GraphQL inputs and enums, registered from the domain's own dataclasses and enums.

The filters are defined once, in ``dsa110.db.filters`` (where they become SQL); this
module only names them for the graph and copies each field's ``doc`` metadata into its
GraphQL description, so astronomers see units and meanings in GraphiQL.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import TYPE_CHECKING, TypeVar

import strawberry
from strawberry.types.base import get_object_definition

from dsa110.db import enums, filters

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

C = TypeVar("C", bound="DataclassInstance")
E = TypeVar("E", bound=Enum)


def _input(cls: type[C], name: str) -> type[C]:
    docs = {f.name: f.metadata.get("doc") for f in dataclasses.fields(cls)}
    registered = strawberry.input(cls, name=name, description=(cls.__doc__ or "").strip() or None)
    for field in get_object_definition(registered, strict=True).fields:
        field.description = docs.get(field.python_name)
    return registered


def _enum(cls: type[E], name: str, description: str) -> type[E]:
    return strawberry.enum(cls, name=name, description=description)


# strawberry.enum/strawberry.input register a class in place and return it, so the names
# below are the domain classes themselves (what type checkers and resolvers see).
GroupState = enums.GroupState
JobState = enums.JobState
JobType = enums.JobType
ProductType = enums.ProductType
ProductStatus = enums.ProductStatus
MosaicStatus = enums.MosaicStatus
CandidateStatus = enums.CandidateStatus
EsePhase = enums.EsePhase
EseKind = enums.EseKind
OrderDirection = enums.OrderDirection
SourceOrderField = filters.SourceOrderField
ImageOrderField = filters.ImageOrderField
MeasurementOrderField = filters.MeasurementOrderField
GroupOrderField = filters.GroupOrderField
MosaicOrderField = filters.MosaicOrderField
JobOrderField = filters.JobOrderField
DataProductOrderField = filters.DataProductOrderField
ConeFilter = filters.ConeFilter
SourceFilter = filters.SourceFilter
MeasurementFilter = filters.MeasurementFilter
ImageFilter = filters.ImageFilter
GroupFilter = filters.GroupFilter
MosaicFilter = filters.MosaicFilter
JobFilter = filters.JobFilter
DataProductFilter = filters.DataProductFilter

_enum(GroupState, "GroupState", "Where an observation group is in the ingest queue.")
_enum(JobState, "JobState", "Lifecycle of a pipeline job.")
_enum(JobType, "JobType", "What a job does.")
_enum(ProductType, "DataProductType", "Kind of data product.")
_enum(ProductStatus, "DataProductStatus", "Staging -> publishing -> published.")
_enum(MosaicStatus, "MosaicStatus", "Build state of a mosaic.")
_enum(CandidateStatus, "EseCandidateStatus", "Review state of an ESE candidate.")
_enum(EsePhase, "EsePhase", "Detector phase: ongoing (no recovery yet), confirmed, rejected.")
_enum(
    EseKind, "EseKind", "What part of the dip was seen: dip (both sides), ongoing (no recovery yet), egress."
)
_enum(OrderDirection, "OrderDirection", "Sort direction.")
_enum(SourceOrderField, "SourceOrderField", "Columns sources can be sorted by.")
_enum(ImageOrderField, "ImageOrderField", "Columns images can be sorted by.")
_enum(
    MeasurementOrderField,
    "MeasurementOrderField",
    "Columns a source's or an image's measurements can be sorted by (missing values last).",
)
_enum(GroupOrderField, "GroupOrderField", "Columns groups can be sorted by.")
_enum(MosaicOrderField, "MosaicOrderField", "Columns mosaics can be sorted by.")
_enum(JobOrderField, "JobOrderField", "Columns jobs can be sorted by.")
_enum(DataProductOrderField, "DataProductOrderField", "Columns data products can be sorted by.")
_input(ConeFilter, "ConeFilter")
_input(SourceFilter, "SourceFilter")
_input(MeasurementFilter, "MeasurementFilter")
_input(ImageFilter, "ImageFilter")
_input(GroupFilter, "GroupFilter")
_input(MosaicFilter, "MosaicFilter")
_input(JobFilter, "JobFilter")
_input(DataProductFilter, "DataProductFilter")
