"""The legacy live job log: ``GET /api/jobs/id/{job_id}/logs`` as Server-Sent Events.

Served from the graph's own ``jobLogs`` subscription (through the shared producers, so
every client of one job costs one execution per log event), reshaped the legacy way
(legacy-pipeline-facts §5): default events ``data: {"logs": "<new text>"}`` (the log so far
first), then on the job's end ``event: complete`` with ``data: {"status": "done"|"failed"|
"cancelled"}``; an unknown job: ``event: error`` with ``data: {"message": "Job not found"}``.
The legacy server polled its log column every second; this follows the log's events.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from compat_rest.errors import ApiError
from compat_rest.jobs import JOB_ID
from compat_rest.live_channels import event_stream

PATH: Final = "/api/jobs/id/{job_id}/logs"  # any text: a bad id is a 422, as on /api/jobs/id/{job_id}
LOGS = """subscription LegacyJobLogs($jobId: Int!) {
  jobLogs(jobId: $jobId) { state finished lines { lineId line } }
}"""


@dataclass
class _Carrier:
    """What SharedSubscriptions reads the request from."""

    request: Request


def _event(data: dict[str, Any], name: str | None = None) -> str:
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n"


def routes(streams: Any) -> list[Route]:
    """``streams``: the server's shared (and budgeted) subscriptions, as the transports use them."""

    async def job_logs(request: Request) -> Response:
        try:
            job_id = JOB_ID.from_text(request.path_params["job_id"])
        except ApiError as refused:
            return refused.response()

        async def stream() -> AsyncIterator[str]:
            results = await streams.subscribe(LOGS, {"jobId": job_id}, _Carrier(request))
            last_id = 0
            async with contextlib.aclosing(results):
                async for result in results:
                    errors = getattr(result, "errors", None)
                    data = getattr(result, "data", None)
                    if errors or not data:
                        codes = {(e.extensions or {}).get("code") for e in errors or []}
                        message = "Job not found" if "NOT_FOUND" in codes else "the log is unavailable"
                        yield _event({"message": message}, "error")
                        return
                    batch = data["jobLogs"]
                    fresh = [line for line in batch["lines"] if line["lineId"] > last_id]
                    if fresh:
                        last_id = fresh[-1]["lineId"]
                        yield _event({"logs": "\n".join(line["line"] for line in fresh) + "\n"})
                    if batch["finished"]:
                        yield _event({"status": str(batch["state"]).lower()}, "complete")
                        return

        return event_stream(request, stream)

    return [Route(PATH, job_logs, methods=["GET"])]
