"""Which HTTP requests are event streams, meant to last: the one rule both the request
deadline (``server.deadline``) and the per-client request limit (``server.concurrency``)
leave them out by.

A path is a stream either always (the legacy ``/api/sse/status`` channel, and a job's log,
which answers a GET by SSE whatever it accepts: ``curl`` sends ``*/*``) or when the client
asks for ``text/event-stream`` on a path that serves one as well as plain answers
(``/graphql``). The
``Accept`` header alone must not take a request out of its bounds: on any other path (a REST
light curve, say) it is an ordinary request whatever it accepts.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.routing import compile_path
from starlette.types import Scope

EVENT_STREAM = "text/event-stream"


class EventStreamPaths:
    """``always``: Starlette path templates that are always streams; ``negotiated``: those
    that are streams when the client accepts ``text/event-stream``."""

    def __init__(self, always: Collection[str] = (), negotiated: Collection[str] = ()) -> None:
        self.always = [compile_path(template)[0] for template in always]
        self.negotiated = [compile_path(template)[0] for template in negotiated]

    def match(self, scope: Scope) -> bool:
        path: str = scope["path"]
        if any(pattern.match(path) for pattern in self.always):
            return True
        return _accepts_event_stream(Headers(scope=scope).get("accept", "")) and any(
            pattern.match(path) for pattern in self.negotiated
        )


def _accepts_event_stream(accept: str) -> bool:
    """Does ``accept`` name ``text/event-stream`` as one of its media types? The test strawberry
    makes to answer by SSE (``SSETransport.accepts``): a header that only holds the text
    (``text/event-streams``) is answered as plain JSON, so it must not escape the bounds."""
    return any(part.split(";", 1)[0].strip().lower() == EVENT_STREAM for part in accept.split(","))
