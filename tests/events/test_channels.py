"""Channels are names typed by their payload: publishing through one sends a plain name and dict."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dsa110.events import ALL_CHANNELS, JOB_LOG, JOB_STATE, Event, MemoryEventBus
from dsa110.events.channels import Channel, JobLogPayload, Signal


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, channel: str, payload: dict[str, Any]) -> None:
        self.sent.append((channel, payload))


def test_a_channel_is_its_name() -> None:
    assert JOB_STATE == "job.state"
    assert {JOB_STATE: 1}["job.state"] == 1
    assert all(isinstance(c, Channel) and isinstance(c, str) for c in ALL_CHANNELS)


async def test_publish_sends_a_plain_name_and_a_dict() -> None:
    send = Recorder()
    payload: JobLogPayload = {"job_id": 3, "first_line_id": 10, "last_line_id": 12, "n_lines": 3}
    await JOB_LOG.publish(send, payload)
    ((channel, sent),) = send.sent
    assert type(channel) is str and channel == "job.log"
    assert type(sent) is dict and sent == payload
    assert JOB_LOG.signal(payload) == Signal("job.log", dict(payload))


async def test_a_published_event_reads_back_as_its_payload() -> None:
    bus = MemoryEventBus()
    await bus.start()
    try:
        async with bus.subscribe(JOB_LOG) as events:
            await JOB_LOG.publish(
                bus.publish, {"job_id": 1, "first_line_id": 2, "last_line_id": 2, "n_lines": 1}
            )
            event = await anext(aiter(events))
        assert event.channel == JOB_LOG and type(event.channel) is str
        assert JOB_LOG.payload(event).get("first_line_id") == 2
    finally:
        await bus.close()


def test_payload_reads_do_not_copy() -> None:
    event = Event(channel="job.state", payload={"job_id": 1}, published_at=datetime.now(UTC), origin="x")
    assert JOB_STATE.payload(event) is event.payload
