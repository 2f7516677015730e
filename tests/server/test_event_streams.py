"""An ``Accept: text/event-stream`` header makes a request a stream (no deadline, not counted
against its client's requests in flight) only on a path that serves one.

Before, the header alone exempted any request: ``GET /api/sources/{id}/lightcurve`` sent
with it ran past the request deadline, and a client could hold any number of ordinary
requests at once by adding it.
"""

from __future__ import annotations

from typing import Any

from compat_rest.live_channels import SSE_PATH as LEGACY_SSE_PATH
from server.concurrency import ConcurrencyLimitMiddleware, InFlight
from server.deadline import DeadlineMiddleware
from server.event_streams import EventStreamPaths
from server.graphql_view import GRAPHQL_PATH
from server.job_logs import PATH as JOB_LOGS_PATH

STREAMS = EventStreamPaths(always=(LEGACY_SSE_PATH,), negotiated=(GRAPHQL_PATH, JOB_LOGS_PATH))


def _scope(path: str, accept: str | None = None) -> dict[str, Any]:
    headers = [(b"host", b"testserver")]
    if accept is not None:
        headers.append((b"accept", accept.encode()))
    return {"type": "http", "path": path, "headers": headers}


def test_the_header_makes_a_stream_only_where_one_is_served() -> None:
    sse = "text/event-stream"
    assert STREAMS.match(_scope(LEGACY_SSE_PATH))  # always, whatever it accepts
    assert STREAMS.match(_scope(GRAPHQL_PATH, sse))
    assert STREAMS.match(_scope(JOB_LOGS_PATH.replace("{job_id}", "42"), f"application/json, {sse}"))
    assert not STREAMS.match(_scope(GRAPHQL_PATH))
    assert not STREAMS.match(_scope(GRAPHQL_PATH, "application/json"))
    assert not STREAMS.match(_scope("/api/sources/NVSS J000001+000001/lightcurve", sse))
    assert not STREAMS.match(_scope(f"{GRAPHQL_PATH}/static/graphiql.js", sse))


async def _unused_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


def test_both_bounds_use_the_one_rule() -> None:
    deadline = DeadlineMiddleware(_unused_app, deadline_s=30.0, streams=STREAMS)
    limit = ConcurrencyLimitMiddleware(_unused_app, InFlight(16), exempt_paths=("/healthz",), streams=STREAMS)
    for path, accept, stream in (
        (GRAPHQL_PATH, "text/event-stream", True),
        ("/api/sources", "text/event-stream", False),
        ("/api/sources", None, False),
    ):
        scope = _scope(path, accept)
        assert deadline.streams.match(scope) is stream
        assert limit._exempt(scope) is stream
    assert limit._exempt(_scope("/healthz"))
