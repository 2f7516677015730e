"""The measurement ingest path, ESE detection over the database, and candidate lifecycle.

``ingest_image_measurements`` is what the pipeline (and the GraphQL mutation) calls when an
image has been measured. In one transaction it inserts the image's measurements and folds
each into its source's running sums (``dsa110.science.variability``: O(1) per measurement
plus the +-10 d pair window read by an index range scan, and, only for a detection
back-filled before a source's first detection, one indexed ``min()`` for the new-source
state), then, after the commit, optionally queues ESE detection for the touched sources on
the pending ``ese-detect`` job (``dsa110.ops.ese_detect``: detection runs off the request
path, incrementally). ``detect_ese`` runs the full test on demand.

Detection reads each target's light curve, normalises it by differential photometry
against nearby bright references (``dsa110.science.lightcurve``), runs
``dsa110.science.ese_edge.detect_all`` and moves the source's candidates through their
phases (``ongoing`` -> ``confirmed`` | ``rejected``, ``dsa110.science.ese_tracker``); a
dip overlapping a candidate a person has closed is left alone (their decision stands).
New candidates and phase changes each write an ``alerts`` row.

Writers take the write lock before they read what they update
(``dsa110.db.writes.write_transaction``: SQLite ``BEGIN IMMEDIATE``; PostgreSQL row locks
on the touched sources, in id order), so concurrent ingests that share sources, in this
process or another, serialise instead of losing running-sum updates. A writer that cannot
get the lock within the budget is refused with ``BUSY`` and writes nothing.

``publish(channel, payload)`` is an optional async callable (the event bus); channels are
``MEASUREMENTS_ADDED`` (``dsa110.events.channels``, typed payloads), the queued detection
job's state, and ``ESE_CANDIDATE`` (detection). It is called after the commit, so a
subscriber never sees an event for data that was rolled back.
"""

from dsa110.ops.ingest.candidates import set_candidate_status
from dsa110.ops.ingest.common import (
    CHUNK,
    ESCALATION_FACTOR,
    GROUP_ORDER,
    MAX_REFERENCES,
    MAX_ROWS_PER_INGEST,
    MIN_REFERENCE_EPOCHS,
    MIN_REFERENCE_SNR,
    REFERENCE_RADIUS_DEG,
    TRANSITIONS,
    CandidateChangedError,
    CandidateStatusError,
    DetectionResult,
    IngestError,
    IngestResult,
    MeasurementIn,
    NormalisedLightCurve,
    NotFoundError,
    Publish,
)
from dsa110.ops.ingest.detection import detect_ese, severity_of
from dsa110.ops.ingest.lightcurves import normalised_light_curves
from dsa110.ops.ingest.running import recompute_source_metrics
from dsa110.ops.ingest.transaction import ingest_image_measurements, ingest_images_measurements

__all__ = [
    "CHUNK",
    "ESCALATION_FACTOR",
    "GROUP_ORDER",
    "MAX_REFERENCES",
    "MAX_ROWS_PER_INGEST",
    "MIN_REFERENCE_EPOCHS",
    "MIN_REFERENCE_SNR",
    "REFERENCE_RADIUS_DEG",
    "TRANSITIONS",
    "CandidateChangedError",
    "CandidateStatusError",
    "DetectionResult",
    "IngestError",
    "IngestResult",
    "MeasurementIn",
    "NormalisedLightCurve",
    "NotFoundError",
    "Publish",
    "detect_ese",
    "ingest_image_measurements",
    "ingest_images_measurements",
    "normalised_light_curves",
    "recompute_source_metrics",
    "set_candidate_status",
    "severity_of",
]
