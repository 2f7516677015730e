"""Every entity the graph reads, declared once: its table, its natural key, the GraphQL type
its rows become (the type parameter), and its links to other entities.

Everything else is derived from here: ``ENTITIES`` and ``RELATIONS`` below, the loaders'
SQL (``loaders.registry``), and, in the schema layer, which class wraps each entity's rows
and which types ``node(id:)`` answers (``schema.entity_types``, checked against these
declarations by mypy). To add a linked type, see docs/CONTRIBUTING.md.

The GraphQL types are imported for the type checker only: at run time this layer never
imports the schema (imports point downward).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement

from dsa110.db import tables as t
from loaders.relations import Entity, Relation, Row, ToOne

if TYPE_CHECKING:
    from schema.auth import AuditEntry
    from schema.ese import Alert, EseCandidate, EseStatusChange
    from schema.files import CalTable, MeasurementSet
    from schema.job_types import DataProduct, Job, JobLogLine
    from schema.qa import QaArtifact
    from schema.science import CatalogSource, CrossMatch, Region
    from schema.types import Group, Image, Measurement, Mosaic, Source, Subband

# --- entities --------------------------------------------------------------------------------

SOURCE: Entity[Source] = Entity("source", t.sources, "source", key="source_id")
MEASUREMENT: Entity[Measurement] = Entity("measurement", t.measurements, "measurement")
IMAGE: Entity[Image] = Entity("image", t.images, "image")
GROUP: Entity[Group] = Entity("group", t.groups, "group", key="group_id")
SUBBAND: Entity[Subband] = Entity("subband", t.subband_files, "subband file")
MOSAIC: Entity[Mosaic] = Entity("mosaic", t.mosaics, "mosaic")
JOB: Entity[Job] = Entity("job", t.jobs, "job")
JOB_LOG: Entity[JobLogLine] = Entity("job_log", t.job_logs, "job log line")
PRODUCT: Entity[DataProduct] = Entity("product", t.data_products, "data product", key="data_id")
MS: Entity[MeasurementSet] = Entity("ms", t.measurement_sets, "measurement set")
CALTABLE: Entity[CalTable] = Entity("caltable", t.cal_tables, "calibration table")
QA_ARTIFACT: Entity[QaArtifact] = Entity("qa_artifact", t.qa_artifacts, "QA artefact")
CANDIDATE: Entity[EseCandidate] = Entity("candidate", t.ese_candidates, "ESE candidate")
STATUS_CHANGE: Entity[EseStatusChange] = Entity("status_change", t.ese_status_changes, "status change")
ALERT: Entity[Alert] = Entity("alert", t.alerts, "alert")
REGION: Entity[Region] = Entity("region", t.regions, "region")
CROSS_MATCH: Entity[CrossMatch] = Entity("cross_match", t.cross_matches, "cross-match")
CATALOG_SOURCE: Entity[CatalogSource] = Entity("catalog_source", t.catalog_sources, "catalog entry")
AUDIT: Entity[AuditEntry] = Entity("audit", t.audit_log, "audit entry")

# --- links -----------------------------------------------------------------------------------
# ``_order`` is the children's ascending order; ties end on the child's id so offsets are stable.


def _order(*cols: Any) -> tuple[Any, ...]:
    return tuple(cols)


def _artifacts(parent: Entity[Any], parent_key: ColumnElement[Any]) -> Relation[QaArtifact]:
    """QA artefacts of a group, an MS, an image or a calibration table, oldest first."""
    a = t.qa_artifacts.c
    return Relation(parent, "qa_artifacts", QA_ARTIFACT, parent_key, _order(a.created_at, a.id))


def _job_products(name: str, role: str) -> Relation[DataProduct]:
    """Products a job read (``input``) or made (``output``)."""
    jp = t.job_products
    return Relation(
        JOB,
        name,
        PRODUCT,
        jp.c.job_pk,
        _order(t.data_products.c.id),
        link=jp,
        link_on=jp.c.product_pk == t.data_products.c.id,
        link_where=jp.c.role == role,
    )


def _lineage(name: str, this_end: Any, other_end: Any) -> Relation[DataProduct]:
    """Products at ``other_end`` of lineage edges whose ``this_end`` is the parent product."""
    return Relation(
        PRODUCT,
        name,
        PRODUCT,
        this_end,
        _order(t.data_products.c.id),
        link=t.data_lineage,
        link_on=other_end == t.data_products.c.id,
    )


_m, _i, _mi = t.measurements.c, t.images.c, t.mosaic_images.c

SOURCE_MEASUREMENTS: Relation[Measurement] = Relation(
    SOURCE, "measurements", MEASUREMENT, _m.source_pk, _order(_m.mjd, _m.id)
)
SOURCE_IMAGES: Relation[Image] = Relation(
    SOURCE,
    "images",
    IMAGE,
    _m.source_pk,
    _order(_i.mid_mjd, _i.id),
    link=t.measurements,
    link_on=_m.image_pk == _i.id,
)
SOURCE_CANDIDATES: Relation[EseCandidate] = Relation(
    SOURCE,
    "candidates",
    CANDIDATE,
    t.ese_candidates.c.source_pk,
    _order(t.ese_candidates.c.flagged_at, t.ese_candidates.c.id),
)
SOURCE_ALERTS: Relation[Alert] = Relation(
    SOURCE, "alerts", ALERT, t.alerts.c.source_pk, _order(t.alerts.c.triggered_at, t.alerts.c.id)
)
SOURCE_CROSS_MATCHES: Relation[CrossMatch] = Relation(
    SOURCE,
    "cross_matches",
    CROSS_MATCH,
    t.cross_matches.c.source_pk,
    _order(t.cross_matches.c.separation_arcsec),
)

IMAGE_MEASUREMENTS: Relation[Measurement] = Relation(
    IMAGE, "measurements", MEASUREMENT, _m.image_pk, _order(_m.source_pk)
)
IMAGE_MOSAICS: Relation[Mosaic] = Relation(
    IMAGE,
    "mosaics",
    MOSAIC,
    _mi.image_pk,
    _order(t.mosaics.c.start_mjd, t.mosaics.c.id),
    link=t.mosaic_images,
    link_on=_mi.mosaic_pk == t.mosaics.c.id,
)
IMAGE_REGIONS: Relation[Region] = Relation(
    IMAGE, "regions", REGION, t.regions.c.image_pk, _order(t.regions.c.id)
)
IMAGE_QA_ARTIFACTS = _artifacts(IMAGE, t.qa_artifacts.c.image_pk)

MOSAIC_IMAGES: Relation[Image] = Relation(
    MOSAIC,
    "images",
    IMAGE,
    _mi.mosaic_pk,
    _order(_i.mid_mjd, _i.id),
    link=t.mosaic_images,
    link_on=_mi.image_pk == _i.id,
)

GROUP_IMAGES: Relation[Image] = Relation(GROUP, "images", IMAGE, _i.group_pk, _order(_i.id))
GROUP_JOBS: Relation[Job] = Relation(
    GROUP, "jobs", JOB, t.jobs.c.group_pk, _order(t.jobs.c.created_at, t.jobs.c.id)
)
GROUP_SUBBANDS: Relation[Subband] = Relation(
    GROUP, "subbands", SUBBAND, t.subband_files.c.group_pk, _order(t.subband_files.c.subband_idx)
)
GROUP_MEASUREMENT_SETS: Relation[MeasurementSet] = Relation(
    GROUP, "measurement_sets", MS, t.measurement_sets.c.group_pk, _order(t.measurement_sets.c.id)
)
GROUP_QA_ARTIFACTS = _artifacts(GROUP, t.qa_artifacts.c.group_pk)

MS_IMAGES: Relation[Image] = Relation(MS, "images", IMAGE, _i.ms_pk, _order(_i.id))
MS_CAL_TABLES: Relation[CalTable] = Relation(
    MS,
    "cal_tables",
    CALTABLE,
    t.cal_tables.c.source_ms_pk,
    _order(t.cal_tables.c.order_index, t.cal_tables.c.id),
)
MS_PRODUCTS: Relation[DataProduct] = Relation(
    MS, "products", PRODUCT, t.data_products.c.ms_pk, _order(t.data_products.c.id)
)
MS_QA_ARTIFACTS = _artifacts(MS, t.qa_artifacts.c.ms_pk)

CALTABLE_PRODUCTS: Relation[DataProduct] = Relation(
    CALTABLE, "products", PRODUCT, t.data_products.c.caltable_pk, _order(t.data_products.c.id)
)
CALTABLE_QA_ARTIFACTS = _artifacts(CALTABLE, t.qa_artifacts.c.caltable_pk)

JOB_OUTPUTS = _job_products("outputs", "output")
JOB_INPUTS = _job_products("inputs", "input")
JOB_LOGS: Relation[JobLogLine] = Relation(JOB, "logs", JOB_LOG, t.job_logs.c.job_pk, _order(t.job_logs.c.id))

PRODUCT_PARENTS = _lineage("parents", t.data_lineage.c.child_pk, t.data_lineage.c.parent_pk)
PRODUCT_CHILDREN = _lineage("children", t.data_lineage.c.parent_pk, t.data_lineage.c.child_pk)
PRODUCT_JOBS: Relation[Job] = Relation(
    PRODUCT,
    "jobs",
    JOB,
    t.job_products.c.product_pk,
    _order(t.jobs.c.id),
    link=t.job_products,
    link_on=t.job_products.c.job_pk == t.jobs.c.id,
)

CANDIDATE_ALERTS: Relation[Alert] = Relation(
    CANDIDATE, "alerts", ALERT, t.alerts.c.candidate_pk, _order(t.alerts.c.triggered_at, t.alerts.c.id)
)
CANDIDATE_STATUS_CHANGES: Relation[EseStatusChange] = Relation(
    CANDIDATE,
    "status_changes",
    STATUS_CHANGE,
    t.ese_status_changes.c.candidate_pk,
    _order(t.ese_status_changes.c.changed_at, t.ese_status_changes.c.id),
)

# --- to-one links (foreign keys) that a list page may join instead of batching ------------------

IMAGE_MS: ToOne[MeasurementSet] = ToOne(MS, t.images.c.ms_pk)
IMAGE_GROUP: ToOne[Group] = ToOne(GROUP, t.images.c.group_pk)
CANDIDATE_SOURCE: ToOne[Source] = ToOne(SOURCE, t.ese_candidates.c.source_pk)
ALERT_SOURCE: ToOne[Source] = ToOne(SOURCE, t.alerts.c.source_pk)
ALERT_CANDIDATE: ToOne[EseCandidate] = ToOne(CANDIDATE, t.alerts.c.candidate_pk)

# --- derived -----------------------------------------------------------------------------------

ENTITIES: tuple[Entity[Any], ...] = tuple(v for v in list(globals().values()) if isinstance(v, Entity))
RELATIONS: tuple[Relation[Any], ...] = tuple(v for v in list(globals().values()) if isinstance(v, Relation))
ENTITY_TABLES = {e.name: e.table for e in ENTITIES}

__all__ = ["ENTITIES", "ENTITY_TABLES", "RELATIONS", "Entity", "Relation", "Row", "ToOne"]
