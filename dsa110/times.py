"""MJD <-> UTC datetime, without astropy's per-call overhead.

MJD 0 is 1858-11-17T00:00Z; UTC MJD days are 86400 s (leap seconds are not counted,
which is the usual convention for UTC-based MJD in radio pipelines).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)


def mjd_to_datetime(mjd: float) -> datetime:
    return MJD_EPOCH + timedelta(days=mjd)


def datetime_to_mjd(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("datetime_to_mjd needs a timezone-aware datetime")
    return (moment - MJD_EPOCH).total_seconds() / 86400.0
