"""Legacy column values into ours: times, paths, JSON, names. Each oddity is counted.

Conventions of the legacy files (legacy-pipeline-facts sections 0 and 1):

- ``*_at`` columns are Unix epoch seconds (``REAL``); some rows written by other tools
  hold ISO 8601 strings instead. Both become timezone-aware UTC datetimes; an ISO string
  without an offset is read as UTC (the pipeline's clocks run on UTC at the observatory).
- ``*_mjd`` columns and ``pointing_history.timestamp`` are MJD (UTC days).
- Paths are absolute, or relative to the pipeline's working directory (``state/...``);
  relative ones are resolved against the import's ``root`` (default: the directory
  holding the state directory, which is where the pipeline runs).
- ``params`` and ``*_json`` columns are JSON, except ``batch_jobs.params``, which the
  pipeline writes as a Python ``repr`` (section 1.3): read with ``ast.literal_eval``
  (literals only, nothing is executed).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Final

from dsa110.science.catalogs import iau_name
from dsa110.times import datetime_to_mjd, mjd_to_datetime

UNIX_EPOCH_MJD: Final = 40587.0
GROUP_ID_RE: Final = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})")
NEW_SOURCE_PREFIX: Final = "DSA110"
_MIN_EPOCH, _MAX_EPOCH = 0.0, 4102444800.0  # 1970 .. 2100: anything else is not a time


class Oddities:
    """Counts of what did not look as the facts say it should, by (table, what)."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def note(self, table: str, what: str, n: int = 1) -> None:
        if n:
            self.counts[(table, what)] += n


def as_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        out = float(value)
    elif isinstance(value, str | bytes):
        try:
            out = float(value)
        except ValueError:
            return None
    else:
        return None
    return out if math.isfinite(out) else None


def epoch_time(value: Any, odd: Oddities, table: str, column: str) -> datetime | None:
    """Epoch seconds (or an ISO string) as an aware UTC datetime; None when empty or unreadable."""
    if value is None or value == "":
        return None
    number = as_float(value)
    if number is not None:
        if _MIN_EPOCH < number < _MAX_EPOCH:
            if isinstance(value, str):
                odd.note(table, f"{column}: number stored as text")
            return datetime.fromtimestamp(number, UTC)
        odd.note(table, f"{column}: out of range, ignored")
        return None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            odd.note(table, f"{column}: unreadable time, ignored")
            return None
        odd.note(table, f"{column}: ISO string instead of epoch seconds")
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    odd.note(table, f"{column}: unreadable time, ignored")
    return None


def epoch_seconds(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def mjd_of(moment: datetime) -> float:
    return datetime_to_mjd(moment)


def time_of_mjd(mjd: float) -> datetime:
    return mjd_to_datetime(mjd)


def group_id_in(text: str | None) -> str | None:
    """The observation timestamp (a group id) inside a path or name, if any."""
    if not text:
        return None
    match = GROUP_ID_RE.search(text)
    return match.group(1) if match else None


def group_start(group_id: str) -> datetime | None:
    try:
        return datetime.strptime(group_id, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def resolve_path(value: Any, root: PurePosixPath, odd: Oddities, table: str) -> str | None:
    """An absolute path: relative ones are taken from the pipeline's working directory."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.startswith("/"):
        return text
    path = PurePosixPath(text)
    if path.is_absolute():
        return text
    odd.note(table, "relative path resolved against the pipeline root")
    return str(root / path)


def json_value(value: Any, odd: Oddities, table: str, column: str) -> Any:
    """JSON text, or a Python literal ``repr`` (batch params), else None (counted)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        odd.note(table, f"{column}: not text, ignored")
        return None
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        odd.note(table, f"{column}: neither JSON nor a Python literal, kept as text")
        return {"unparsed": value[:10_000]}
    odd.note(table, f"{column}: Python repr instead of JSON")
    return _jsonable(parsed)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def source_name_at(ra_deg: float, dec_deg: float) -> str:
    """A name for a position the pipeline measured without naming it (IAU style)."""
    return iau_name(NEW_SOURCE_PREFIX, ra_deg % 360.0, dec_deg)


def flag(value: Any) -> bool | None:
    if value is None:
        return None
    number = as_float(value)
    return None if number is None else number != 0


def text(value: Any, limit: int | None = None) -> str | None:
    if value is None:
        return None
    out = str(value)
    return out[:limit] if limit is not None else out
