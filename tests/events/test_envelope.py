"""The wire envelope: what is accepted on publish, what is refused on receipt."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dsa110.events import (
    ALL_CHANNELS,
    GROUP_STATE,
    MAX_EVENT_BYTES,
    Event,
    EventTooLarge,
    InvalidEvent,
    MalformedEvent,
    decode_event,
    encode_event,
    validate_channel,
)

MOMENT = datetime(2025, 10, 24, 14, 30, 0, 123456, tzinfo=UTC)


def make_event(payload: object, channel: str = GROUP_STATE) -> Event:
    return Event(channel=channel, payload=payload, published_at=MOMENT, origin="host:1:abc")  # type: ignore[arg-type]


def wire(**overrides: object) -> str:
    envelope: dict[str, object] = {
        "channel": GROUP_STATE,
        "payload": {"group_id": "2025-10-24T14:00:00"},
        "published_at": "2025-10-24T14:30:00.123456Z",
        "origin": "host:1:abc",
    }
    envelope.update(overrides)
    return json.dumps(envelope)


def test_round_trip_keeps_every_field_and_uses_utc_z() -> None:
    event = make_event({"group_id": "2025-10-24T14:00:00", "n": 16, "ok": True, "ids": [1, 2]})
    text = encode_event(event)
    assert json.loads(text)["published_at"] == "2025-10-24T14:30:00.123456Z"
    assert set(json.loads(text)) == {"channel", "payload", "published_at", "origin"}
    assert decode_event(text, GROUP_STATE) == event
    assert decode_event(text.encode(), GROUP_STATE) == event


def test_non_utc_timestamps_are_normalised_to_utc() -> None:
    decoded = decode_event(wire(published_at="2025-10-24T07:30:00-07:00"), GROUP_STATE)
    assert decoded.published_at == datetime(2025, 10, 24, 14, 30, tzinfo=UTC)
    local = Event(GROUP_STATE, {}, MOMENT.astimezone(timezone(timedelta(hours=5))), "o")
    assert json.loads(encode_event(local))["published_at"] == "2025-10-24T14:30:00.123456Z"


def test_non_ascii_payload_is_escaped_so_bytes_equal_characters() -> None:
    text = encode_event(make_event({"name": "Ωmega ☃"}))
    assert text.isascii()
    assert decode_event(text, GROUP_STATE).payload == {"name": "Ωmega ☃"}


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param([1, 2], id="list"),
        pytest.param("text", id="string"),
        pytest.param(None, id="none"),
        pytest.param({"x": float("nan")}, id="nan"),
        pytest.param({"x": float("inf")}, id="infinity"),
        pytest.param({"x": object()}, id="object"),
        pytest.param({"x": datetime.now(UTC)}, id="datetime"),
    ],
)
def test_payloads_that_are_not_json_objects_are_refused(payload: object) -> None:
    with pytest.raises(InvalidEvent):
        encode_event(make_event(payload))


def test_oversized_payload_is_refused_with_a_clear_message() -> None:
    with pytest.raises(EventTooLarge, match="limit is 7999"):
        encode_event(make_event({"blob": "x" * MAX_EVENT_BYTES}))


def test_the_largest_payload_that_fits_is_accepted() -> None:
    overhead = len(encode_event(make_event({"blob": ""})))
    text = encode_event(make_event({"blob": "x" * (MAX_EVENT_BYTES - overhead)}))
    assert len(text) == MAX_EVENT_BYTES
    with pytest.raises(EventTooLarge):
        encode_event(make_event({"blob": "x" * (MAX_EVENT_BYTES - overhead + 1)}))


def test_a_non_ascii_payload_counts_its_escaped_size() -> None:
    # 2000 snowmen are 2000 characters but 12000 escaped bytes: over the limit.
    with pytest.raises(EventTooLarge):
        encode_event(make_event({"s": "☃" * 2000}))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"garbage", id="not-json"),
        pytest.param(b"\xff\xfe\x00", id="not-utf8"),
        pytest.param(b"[1,2,3]", id="array"),
        pytest.param(b"null", id="null"),
        pytest.param(b"{" * 5000, id="truncated-nesting"),
        pytest.param(b"[" * 7000 + b"]" * 7000, id="too-large-nesting"),
        pytest.param(("[" * 3900 + "]" * 3900).encode(), id="deep-nesting"),
        pytest.param(b" " * (MAX_EVENT_BYTES + 1), id="oversized"),
        pytest.param(wire(extra=1).encode(), id="extra-key"),
        pytest.param(json.dumps({"channel": GROUP_STATE, "payload": {}}).encode(), id="missing-keys"),
        pytest.param(wire(channel="job.state").encode(), id="wrong-channel"),
        pytest.param(wire(payload=[1]).encode(), id="payload-list"),
        pytest.param(wire(origin="").encode(), id="empty-origin"),
        pytest.param(wire(origin=7).encode(), id="origin-number"),
        pytest.param(wire(origin="o" * 500).encode(), id="origin-long"),
        pytest.param(wire(published_at="yesterday").encode(), id="bad-time"),
        pytest.param(wire(published_at="2025-10-24T14:30:00").encode(), id="naive-time"),
        pytest.param(wire(published_at=1761316200).encode(), id="numeric-time"),
    ],
)
def test_malformed_wire_messages_raise_malformed_event(data: bytes) -> None:
    with pytest.raises(MalformedEvent):
        decode_event(data, GROUP_STATE)


def test_project_channels_are_valid_and_distinct() -> None:
    assert len(set(ALL_CHANNELS)) == len(ALL_CHANNELS) == 10
    for channel in ALL_CHANNELS:
        assert validate_channel(channel) == channel


@pytest.mark.parametrize("channel", ["", "Group.State", "group state", "a" * 49, ".x", "x.", "x..y", 3, "é"])
def test_bad_channel_names_are_refused(channel: object) -> None:
    with pytest.raises(ValueError, match="invalid event channel"):
        validate_channel(channel)
