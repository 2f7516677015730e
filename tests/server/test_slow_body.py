"""A client that does not finish sending its body by the deadline hears that the delay was its own.

Before, a POST whose body stalled after its first bytes (a trickling or stalled client) was
answered ``504 DEADLINE_EXCEEDED`` when the deadline passed, the server's timeout code,
as if the server had been too slow; it is ``408 REQUEST_TIMEOUT`` with the connection
closed (the rest of the body may still arrive). A request that did arrive and then ran
too long is still 504.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from dsa110.settings import Settings
from tests.server.test_work_limits import HeldRequest, app_factory, settings

__all__ = ["app_factory", "settings"]  # the fixtures, shared with that module


async def test_a_body_not_received_by_the_deadline_is_a_coded_408(
    settings: Settings, app_factory: Any
) -> None:
    app = app_factory(settings, request_deadline_s=0.2)
    stalled = HeldRequest(app, "10.0.0.7")  # sends its first bytes, then nothing
    await asyncio.wait_for(stalled.task, 30)
    assert stalled.status == 408
    headers = dict(stalled.sent[0]["headers"])
    assert headers[b"connection"] == b"close"
    body = json.loads(stalled.sent[1]["body"])
    assert body["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
    stalled.release.set()
