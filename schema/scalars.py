"""Scalars: UTC timestamps always end in ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry
from strawberry.types.scalar import ScalarDefinition


def serialize_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("DateTime must be an ISO 8601 string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("DateTime needs a timezone: use ...Z for UTC")
    return parsed.astimezone(UTC)


UtcDateTime = strawberry.scalar(
    name="DateTime",
    description="A UTC timestamp in ISO 8601 with a trailing Z, e.g. `2025-10-24T14:00:00Z`.",
    serialize=serialize_datetime,
    parse_value=_parse,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {datetime: UtcDateTime}
