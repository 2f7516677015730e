"""ESE results: candidates, the detector's per-source running state, status changes, alerts.

Kept apart from :mod:`dsa110.db.tables` (which imports this module at its end and
re-exports the tables, so they share its ``metadata`` and old imports keep working).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text

from dsa110.db.tables import metadata
from dsa110.db.types import UtcDateTime

ese_candidates = Table(
    "ese_candidates",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_pk", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("significance", Float, nullable=False),
    Column("start_mjd", Float, nullable=False),
    Column("end_mjd", Float, nullable=False),
    Column("depth", Float, nullable=False),
    Column("baseline_flux_jy", Float, nullable=False),
    Column("min_flux_jy", Float, nullable=False),
    Column("detector_version", String(32), nullable=False),
    Column("flagged_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("changed_by", String(64)),
    Column("notes", Text),
    Column("phase", String(16)),  # ongoing | confirmed | rejected (ese-drw-3.0 on; else NULL)
    Column("kind", String(16)),  # dip | ongoing | egress
    Column("false_alarm_probability", Float),  # per steady source-year (dsa110.science.ese_far)
    # The DRW rms (fraction of the baseline) fitted with the dip modelled: the live
    # false-alarm stratum of a dip with its depth (ese_far.live_key: quiet < 1 %, strong
    # >= 4.5 %, between them deep at >= 15 rms, else red); NULL before 0020.
    Column("red_rms", Float),
    Index(None, "source_pk"),
    Index(None, "status"),
    Index(None, "phase"),
    Index(None, "false_alarm_probability"),
    Index(None, "score"),
    Index(None, "flagged_at"),
    Index(None, "significance"),
    Index(None, "depth"),
    Index(None, "updated_at"),
)

ese_source_state = Table(
    "ese_source_state",
    metadata,
    Column("source_pk", Integer, ForeignKey("sources.id", ondelete="CASCADE"), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("mean", Float, nullable=False),
    Column("var", Float, nullable=False),
    Column("cusum", Float, nullable=False),
    Column("last_measurement_pk", Integer, nullable=False),
    Column("last_test_mjd", Float),
    Column("last_test_n", Integer, nullable=False),
    Column("backoff_days", Float, nullable=False),
    Column("watch_until_mjd", Float),
    Column("recheck_mjd", Float),
    Column("last_look", Text),  # ese_tracker.LookMemo as JSON: the next look's earlier search
    Column("last_error", Text),
    Column("error_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
)

ese_status_changes = Table(
    "ese_status_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("candidate_pk", Integer, ForeignKey("ese_candidates.id", ondelete="CASCADE"), nullable=False),
    Column("from_status", String(16), nullable=False),
    Column("to_status", String(16), nullable=False),
    Column("changed_by", String(64), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    Column("notes", Text),
    Index(None, "candidate_pk"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_pk", Integer, ForeignKey("sources.id", ondelete="CASCADE")),
    Column("candidate_pk", Integer, ForeignKey("ese_candidates.id", ondelete="SET NULL")),
    Column("alert_type", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("triggered_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime),
    Index(None, "source_pk"),
    Index(None, "triggered_at"),
    Index(None, "alert_type"),
    Index(None, "severity"),
    Index(None, "resolved_at"),
)
