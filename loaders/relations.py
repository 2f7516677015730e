"""How each parent -> children link is stored: the child table, the column holding the
parent's key (on the child or on a link table), and the default order of children."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table

from dsa110.db import tables as t


@dataclass(frozen=True)
class Relation:
    entity: str  # the wrapped type of each child
    child: Table
    parent_key: ColumnElement[Any]  # evaluates to the parent's pk for each child row
    order: tuple[Any, ...]  # ascending order of children; offsets count along it
    link: Table | None = None
    link_on: ColumnElement[bool] | None = None
    link_where: ColumnElement[bool] | None = None


def _m(*cols: Any) -> tuple[Any, ...]:
    return tuple(cols)


def _job_products(role: str) -> Relation:
    """Products a job read (``input``) or made (``output``)."""
    return Relation(
        "product",
        t.data_products,
        t.job_products.c.job_pk,
        _m(t.data_products.c.id),
        link=t.job_products,
        link_on=t.job_products.c.product_pk == t.data_products.c.id,
        link_where=t.job_products.c.role == role,
    )


def _lineage(this_end: Any, other_end: Any) -> Relation:
    """Products at ``other_end`` of lineage edges whose ``this_end`` is the parent product."""
    return Relation(
        "product",
        t.data_products,
        this_end,
        _m(t.data_products.c.id),
        link=t.data_lineage,
        link_on=other_end == t.data_products.c.id,
    )


def _artifacts(parent_key: ColumnElement[Any]) -> Relation:
    """QA artefacts of a group, an MS, an image or a calibration table, oldest first."""
    return Relation(
        "qa_artifact", t.qa_artifacts, parent_key, _m(t.qa_artifacts.c.created_at, t.qa_artifacts.c.id)
    )


RELATIONS: dict[str, Relation] = {
    "source.measurements": Relation(
        "measurement",
        t.measurements,
        t.measurements.c.source_pk,
        _m(t.measurements.c.mjd, t.measurements.c.id),
    ),
    "image.measurements": Relation(
        "measurement", t.measurements, t.measurements.c.image_pk, _m(t.measurements.c.source_pk)
    ),
    "source.images": Relation(
        "image",
        t.images,
        t.measurements.c.source_pk,
        _m(t.images.c.mid_mjd, t.images.c.id),
        link=t.measurements,
        link_on=t.measurements.c.image_pk == t.images.c.id,
    ),
    "mosaic.images": Relation(
        "image",
        t.images,
        t.mosaic_images.c.mosaic_pk,
        _m(t.images.c.mid_mjd, t.images.c.id),
        link=t.mosaic_images,
        link_on=t.mosaic_images.c.image_pk == t.images.c.id,
    ),
    "image.mosaics": Relation(
        "mosaic",
        t.mosaics,
        t.mosaic_images.c.image_pk,
        _m(t.mosaics.c.start_mjd, t.mosaics.c.id),
        link=t.mosaic_images,
        link_on=t.mosaic_images.c.mosaic_pk == t.mosaics.c.id,
    ),
    "group.images": Relation("image", t.images, t.images.c.group_pk, _m(t.images.c.id)),
    "group.jobs": Relation("job", t.jobs, t.jobs.c.group_pk, _m(t.jobs.c.created_at, t.jobs.c.id)),
    "group.subbands": Relation(
        "subband", t.subband_files, t.subband_files.c.group_pk, _m(t.subband_files.c.subband_idx)
    ),
    "group.measurement_sets": Relation(
        "ms", t.measurement_sets, t.measurement_sets.c.group_pk, _m(t.measurement_sets.c.id)
    ),
    "ms.images": Relation("image", t.images, t.images.c.ms_pk, _m(t.images.c.id)),
    "ms.cal_tables": Relation(
        "caltable",
        t.cal_tables,
        t.cal_tables.c.source_ms_pk,
        _m(t.cal_tables.c.order_index, t.cal_tables.c.id),
    ),
    "group.qa_artifacts": _artifacts(t.qa_artifacts.c.group_pk),
    "ms.qa_artifacts": _artifacts(t.qa_artifacts.c.ms_pk),
    "image.qa_artifacts": _artifacts(t.qa_artifacts.c.image_pk),
    "caltable.qa_artifacts": _artifacts(t.qa_artifacts.c.caltable_pk),
    "ms.products": Relation("product", t.data_products, t.data_products.c.ms_pk, _m(t.data_products.c.id)),
    "caltable.products": Relation(
        "product", t.data_products, t.data_products.c.caltable_pk, _m(t.data_products.c.id)
    ),
    "job.outputs": _job_products("output"),
    "job.inputs": _job_products("input"),
    "job.logs": Relation("job_log", t.job_logs, t.job_logs.c.job_pk, _m(t.job_logs.c.id)),
    "product.parents": _lineage(t.data_lineage.c.child_pk, t.data_lineage.c.parent_pk),
    "product.children": _lineage(t.data_lineage.c.parent_pk, t.data_lineage.c.child_pk),
    "product.jobs": Relation(
        "job",
        t.jobs,
        t.job_products.c.product_pk,
        _m(t.jobs.c.id),
        link=t.job_products,
        link_on=t.job_products.c.job_pk == t.jobs.c.id,
    ),
    "source.candidates": Relation(
        "candidate",
        t.ese_candidates,
        t.ese_candidates.c.source_pk,
        _m(t.ese_candidates.c.flagged_at, t.ese_candidates.c.id),
    ),
    "image.regions": Relation("region", t.regions, t.regions.c.image_pk, _m(t.regions.c.id)),
    "source.alerts": Relation(
        "alert", t.alerts, t.alerts.c.source_pk, _m(t.alerts.c.triggered_at, t.alerts.c.id)
    ),
    "source.cross_matches": Relation(
        "cross_match", t.cross_matches, t.cross_matches.c.source_pk, _m(t.cross_matches.c.separation_arcsec)
    ),
    "candidate.alerts": Relation(
        "alert", t.alerts, t.alerts.c.candidate_pk, _m(t.alerts.c.triggered_at, t.alerts.c.id)
    ),
    "candidate.status_changes": Relation(
        "status_change",
        t.ese_status_changes,
        t.ese_status_changes.c.candidate_pk,
        _m(t.ese_status_changes.c.changed_at, t.ese_status_changes.c.id),
    ),
}
