"""Value sets stored in the database; each value is the string kept in its column."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class GroupState(StrEnum):
    COLLECTING = "collecting"
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobType(StrEnum):
    CALIBRATE = "calibrate"
    APPLY = "apply"
    IMAGE = "image"
    CONVERT = "convert"
    WORKFLOW = "workflow"
    ESE_DETECT = "ese-detect"
    MOSAIC = "mosaic"
    PHOTOMETRY = "photometry"
    PUBLISH = "publish"
    DB_MAINTAIN = "db-maintain"  # VACUUM (ANALYZE) after bulk ingest (dsa110.ops.maintenance)
    # Diagnostic kinds (dsa110.ops.queue.kinds): check the workers of a deployment end to end.
    NOOP = "noop"
    SLEEP = "sleep"
    FAIL = "fail"


class ProductType(StrEnum):
    RAW = "raw"  # the UVH5 subband files of one observation group
    MS = "ms"
    CALIB_MS = "calib_ms"
    CALTABLE = "caltable"
    IMAGE = "image"
    MOSAIC = "mosaic"
    CATALOG = "catalog"
    QA = "qa"
    METADATA = "metadata"


class ProductStatus(StrEnum):
    STAGING = "staging"
    PUBLISHING = "publishing"
    PUBLISHED = "published"


class MosaicStatus(StrEnum):
    PLANNED = "planned"
    BUILDING = "building"
    COMPLETED = "completed"
    FAILED = "failed"


class CandidateStatus(StrEnum):
    ACTIVE = "active"
    INVESTIGATED = "investigated"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"
    DISMISSED = "dismissed"


ESE_CANDIDATE_STATUSES: Final = tuple(s.value for s in CandidateStatus)
"""``ese_candidates.status``: a candidate's review by an astronomer (its phase is the detector's)."""
OPEN_ESE_CANDIDATE_STATUSES: Final = frozenset(
    {CandidateStatus.ACTIVE.value, CandidateStatus.INVESTIGATED.value}
)
"""Statuses whose candidates the ``ese-detect`` job still moves; a closed one is left as its
reviewer left it, and no new candidate is opened over its window."""


class EsePhase(StrEnum):
    """Where a detector-found ESE candidate is (``dsa110.science.ese_tracker``)."""

    ONGOING = "ongoing"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class EseKind(StrEnum):
    """What part of a dip the detector saw (``dsa110.science.ese``, ``ese_edge``)."""

    DIP = "dip"
    ONGOING = "ongoing"
    EGRESS = "egress"


class OrderDirection(StrEnum):
    ASC = "asc"
    DESC = "desc"


class AlertType(StrEnum):
    """``alerts.alert_type`` of the ESE detector (``dsa110.ops.ese_detect``): a new
    candidate, and a candidate that changed phase (``dsa110.science.ese_tracker``: ongoing ->
    confirmed | rejected, confirmed -> rejected). Webhook event kinds are these same names
    (``dsa110.webhooks.outbox.EVENT_KINDS``), so a subscriber hears of exactly what was written."""

    ESE_CANDIDATE = "ese_candidate"
    ESE_CONFIRMED = "ese_confirmed"
    ESE_REJECTED = "ese_rejected"

    @classmethod
    def for_candidate(cls, new_phase: str | None) -> AlertType:
        """A new candidate's (``new_phase`` None), or a candidate's that moved to ``new_phase``."""
        return cls.ESE_CANDIDATE if new_phase is None else cls(f"ese_{new_phase}")
