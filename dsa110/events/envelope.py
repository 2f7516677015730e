"""The event envelope and its wire format (compact JSON, ASCII only).

Wire shape: ``{"channel": str, "payload": {...}, "published_at": "2025-10-24T14:30:00.000000Z",
"origin": str}``. Every backend carries the same bytes, so the size limit is the strictest
backend's: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. ASCII-only encoding
makes the byte count equal to the character count whatever the server encoding.
Events are signals ("group X changed"), not data: send ids, let the reader query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from dsa110.events.channels import validate_channel

MAX_EVENT_BYTES: Final = 7999
"""Largest encoded envelope accepted on publish and on receipt (PostgreSQL NOTIFY limit)."""
MAX_ORIGIN_LENGTH: Final = 200


class InvalidEvent(ValueError):
    """A payload that cannot be published: not a JSON object, or not JSON-encodable."""


class EventTooLarge(InvalidEvent):
    """The encoded event exceeds ``MAX_EVENT_BYTES``; publish ids instead of rows."""


class MalformedEvent(ValueError):
    """Bytes received from the wire that are not a valid envelope (dropped and counted)."""


@dataclass(frozen=True, slots=True)
class Event:
    """One event as a subscriber sees it.

    ``resync`` events never travel on the wire: the bus makes them locally after its
    connection to Redis/PostgreSQL was re-established, to say "events may have been lost
    on this channel; reload what you show". Their payload is empty and their origin is the
    local bus. Treat ``payload`` as read-only: all local subscribers share one decoded copy.
    """

    channel: str
    payload: dict[str, Any]
    published_at: datetime
    origin: str
    resync: bool = field(default=False)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready envelope (the shape on the wire)."""
        return {
            "channel": self.channel,
            "payload": self.payload,
            "published_at": format_utc(self.published_at),
            "origin": self.origin,
        }


def format_utc(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds and a ``Z`` suffix."""
    if moment.tzinfo is None:
        raise ValueError("event timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def encode_event(event: Event) -> str:
    """Encode ``event`` for the wire, or raise ``InvalidEvent`` / ``EventTooLarge``."""
    if not isinstance(event.payload, dict):
        raise InvalidEvent(f"event payload must be a JSON object (dict), not {type(event.payload).__name__}")
    try:
        text = json.dumps(event.to_wire(), ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEvent(f"event payload on {event.channel!r} is not JSON-encodable: {exc}") from exc
    if len(text) > MAX_EVENT_BYTES:
        raise EventTooLarge(
            f"event on {event.channel!r} encodes to {len(text)} bytes; the limit is {MAX_EVENT_BYTES} "
            "(PostgreSQL NOTIFY). Publish ids and let subscribers query the rows."
        )
    return text


def decode_event(data: str | bytes, expected_channel: str) -> Event:
    """Decode wire bytes received on ``expected_channel``; raise ``MalformedEvent`` if invalid.

    Anything a stranger could write to the channel is checked: size, encoding, JSON syntax
    and nesting, the exact envelope keys and their types, and that the envelope names the
    channel it arrived on.
    """
    if len(data) > MAX_EVENT_BYTES:
        raise MalformedEvent(f"{len(data)} bytes exceeds the {MAX_EVENT_BYTES}-byte limit")
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        raw = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedEvent(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict) or set(raw) != {"channel", "payload", "published_at", "origin"}:
        raise MalformedEvent("not an event envelope {channel, payload, published_at, origin}")
    channel, payload, published_at, origin = (
        raw["channel"],
        raw["payload"],
        raw["published_at"],
        raw["origin"],
    )
    if channel != expected_channel:
        raise MalformedEvent(f"envelope names channel {channel!r} but arrived on {expected_channel!r}")
    if not isinstance(payload, dict):
        raise MalformedEvent("payload is not a JSON object")
    if not isinstance(origin, str) or not origin or len(origin) > MAX_ORIGIN_LENGTH:
        raise MalformedEvent("origin is not a non-empty short string")
    if not isinstance(published_at, str):
        raise MalformedEvent("published_at is not a string")
    try:
        moment = datetime.fromisoformat(published_at)
    except ValueError as exc:
        raise MalformedEvent(f"published_at is not ISO 8601: {exc}") from exc
    if moment.tzinfo is None:
        raise MalformedEvent("published_at has no timezone")
    try:
        validate_channel(channel)
    except ValueError as exc:
        raise MalformedEvent(str(exc)) from exc
    return Event(channel=channel, payload=payload, published_at=moment.astimezone(UTC), origin=origin)
