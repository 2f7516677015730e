"""An ``Accept: text/event-stream`` header makes a request a stream (no deadline, not counted
against its client's requests in flight) only on a path that serves one.

Before, the header alone exempted any request: ``GET /api/sources/{id}/lightcurve`` sent
with it ran past the request deadline, and a client could hold any number of ordinary
requests at once by adding it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from compat_rest.live_channels import SSE_PATH as LEGACY_SSE_PATH
from dsa110.settings import Settings
from server.app import create_app
from server.concurrency import ConcurrencyLimitMiddleware
from server.deadline import DeadlineMiddleware
from server.event_streams import EventStreamPaths
from server.graphql_view import GRAPHQL_PATH
from server.job_logs import PATH as JOB_LOGS_PATH

STREAMS = EventStreamPaths(always=(LEGACY_SSE_PATH, JOB_LOGS_PATH), negotiated=(GRAPHQL_PATH,))


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
    # a job's log answers by SSE whatever is accepted (curl's */*): a stream either way
    assert STREAMS.match(_scope(JOB_LOGS_PATH.replace("{job_id}", "42")))
    assert STREAMS.match(_scope(JOB_LOGS_PATH.replace("{job_id}", "42"), "*/*"))
    assert not STREAMS.match(_scope("/api/jobs/id/42", sse))
    assert not STREAMS.match(_scope(GRAPHQL_PATH))
    assert not STREAMS.match(_scope(GRAPHQL_PATH, "application/json"))
    assert not STREAMS.match(_scope("/api/sources/NVSS J000001+000001/lightcurve", sse))
    assert not STREAMS.match(_scope(f"{GRAPHQL_PATH}/static/graphiql.js", sse))


def test_the_header_must_name_the_media_type_as_strawberry_reads_it() -> None:
    # /graphql answers by SSE only when a media type of the header is text/event-stream
    # (strawberry's SSETransport.accepts); anything else is a plain JSON request, in bounds.
    for accept in ("text/event-streams", "application/json; x=text/event-stream", "text/event-stream-x"):
        assert not STREAMS.match(_scope(GRAPHQL_PATH, accept)), accept
    for accept in ("Text/Event-Stream", "application/json, text/event-stream;q=0.5"):
        assert STREAMS.match(_scope(GRAPHQL_PATH, accept)), accept


def test_the_app_gives_both_bounds_the_one_rule(tmp_path: Path) -> None:
    # What create_app wires: the deadline and the per-client request limit share one rule.
    app = create_app(Settings(data_dir=tmp_path), migrate=False)
    kwargs = {m.cls: m.kwargs for m in app.user_middleware}
    streams = kwargs[DeadlineMiddleware]["streams"]
    assert kwargs[ConcurrencyLimitMiddleware]["streams"] is streams
    for path, accept, stream in (
        (LEGACY_SSE_PATH, None, True),
        (GRAPHQL_PATH, "text/event-stream", True),
        (JOB_LOGS_PATH.replace("{job_id}", "7"), "text/event-stream", True),
        (JOB_LOGS_PATH.replace("{job_id}", "7"), None, True),  # curl: SSE all the same
        ("/api/sources", "text/event-stream", False),
        ("/api/sources/NVSS J000001+000001/lightcurve", "text/event-stream", False),
        (GRAPHQL_PATH, None, False),
    ):
        assert streams.match(_scope(path, accept)) is stream, (path, accept)
