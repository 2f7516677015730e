"""MJD <-> UTC datetime, without astropy's per-call overhead.

MJD 0 is 1858-11-17T00:00Z; UTC MJD days are 86400 s (leap seconds are not counted,
which is the usual convention for UTC-based MJD in radio pipelines).

A float MJD near 6e4 is exact to about 0.6 us (its unit in the last place is 7.3e-12 d),
and no epoch the pipeline records is finer than a millisecond, so MJD -> datetime rounds
to the millisecond: an instant stored as 19:17:30 reads back as 19:17:30, not as
19:17:29.999999, which is float noise, not data.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MJD_EPOCH = datetime(1858, 11, 17, tzinfo=UTC)


MS_PER_DAY = 86_400_000


def mjd_to_datetime(mjd: float) -> datetime:
    """The UTC instant of ``mjd``, rounded to the millisecond (see the module docstring)."""
    return MJD_EPOCH + timedelta(milliseconds=round(mjd * MS_PER_DAY))


def datetime_to_mjd(moment: datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("datetime_to_mjd needs a timezone-aware datetime")
    return (moment - MJD_EPOCH).total_seconds() / 86400.0
