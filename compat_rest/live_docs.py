"""The real-time channels in the OpenAPI document. They are served by their own routes
(``compat_rest/live_channels.py``: a WebSocket and an SSE stream, not request/response,
mounted by the server before this layer), so these entries describe them and build no
route here."""

from __future__ import annotations

from compat_rest.routing import RestRoute
from compat_rest.shapes import ANY, TIME, enum, obj
from dsa110.settings import Settings

TAG = "real-time"
MESSAGE = obj(
    type=enum("connected", "heartbeat", "status_update", "metrics_update", "ese_update"),
    timestamp=TIME,
    data=ANY,
)
DESCRIPTION = (
    "Messages are JSON objects with `type`, a UTC `timestamp` and `data`: `status_update` "
    "(`{pipeline_status, metrics, ese_candidates}`) on connect, after observation-group changes and "
    "at least every 10 s; `metrics_update` on each system-metrics sample; `ese_update` when an ESE "
    "candidate appears or changes. Driven by the event bus, not by polling."
)


def _described(path: str, summary: str, media_type: str, status: int, description: str) -> RestRoute:
    return RestRoute(
        path=path,
        method="GET",
        tag=TAG,
        summary=summary,
        shape=lambda data, _args: data,  # never called: the server answers these paths
        response=MESSAGE if media_type == "application/json" else {"type": "string"},
        media_type=media_type,
        status_code=status,
        errors=(),
        description=description,
        served_elsewhere=True,
    )


def routes(settings: Settings) -> list[RestRoute]:
    return [
        _described(
            "/sse/status",
            "Server-Sent Events: pipeline status, metrics and ESE updates",
            "text/event-stream",
            200,
            DESCRIPTION
            + " The stream starts with `{type: connected}` and sends `{type: heartbeat}` every 30 s; "
            "each event is a `data:` line holding one message.",
        ),
        _described(
            "/ws/status",
            "WebSocket: pipeline status, metrics and ESE updates",
            "application/json",
            101,
            DESCRIPTION + " Open with a WebSocket handshake (`ws://host/api/ws/status`); a text `ping` is "
            "answered `pong`.",
        ),
    ]
