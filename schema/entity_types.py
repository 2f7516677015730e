"""Which GraphQL type each entity's rows become, and which types ``node(id:)`` answers.

``loaders.entities`` declares each entity (table, key, links) with its GraphQL type as a
type parameter; ``bind`` pairs it with the class at run time, and mypy rejects a pair
whose class is not the declared type. ``WRAP`` (what the loaders build rows into) and
``NODE_ENTITIES`` (global id type name -> entity) are derived from these pairs only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from loaders import Wrap
from loaders import entities as e
from loaders.relations import Entity
from schema import auth, ese, files, job_types, qa, science, types
from schema.base import Node, row_factory

T = TypeVar("T")


@dataclass(frozen=True)
class Binding(Generic[T]):
    entity: Entity[T]
    cls: type[T]


def bind(entity: Entity[T], cls: type[T]) -> Binding[T]:
    return Binding(entity, cls)


BINDINGS: tuple[Binding[Any], ...] = (
    bind(e.SOURCE, types.Source),
    bind(e.MEASUREMENT, types.Measurement),
    bind(e.IMAGE, types.Image),
    bind(e.GROUP, types.Group),
    bind(e.SUBBAND, types.Subband),
    bind(e.MOSAIC, types.Mosaic),
    bind(e.JOB, job_types.Job),
    bind(e.JOB_LOG, job_types.JobLogLine),
    bind(e.PRODUCT, job_types.DataProduct),
    bind(e.MS, files.MeasurementSet),
    bind(e.CALTABLE, files.CalTable),
    bind(e.QA_ARTIFACT, qa.QaArtifact),
    bind(e.CANDIDATE, ese.EseCandidate),
    bind(e.STATUS_CHANGE, ese.EseStatusChange),
    bind(e.ALERT, ese.Alert),
    bind(e.REGION, science.Region),
    bind(e.CROSS_MATCH, science.CrossMatch),
    bind(e.CATALOG_SOURCE, science.CatalogSource),
    bind(e.AUDIT, auth.AuditEntry),
)

WRAP: dict[Entity[Any], Wrap] = {b.entity: row_factory(b.cls) for b in BINDINGS}

NODE_ENTITIES: dict[str, Entity[Any]] = {
    b.cls.__name__: b.entity for b in BINDINGS if issubclass(b.cls, Node)
}
"""GraphQL type name (the first part of a global id) -> the entity ``node(id:)`` loads."""
