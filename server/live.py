"""The legacy real-time channels: WebSocket ``/api/ws/status`` and SSE ``/api/sse/status``.

Messages (legacy-pipeline-facts §5, dashboard_backend_api "Real-Time Updates"), JSON with
a ``type``, a UTC ``timestamp`` and ``data``:

* ``status_update``: ``{pipeline_status, metrics, ese_candidates}`` - on connect, after
  group changes (coalesced) and at least every ``heartbeat_s`` (10 s) in any case;
* ``metrics_update``: the ``metrics`` part alone, on each stored system-metrics sample;
* ``ese_update``: the ``ese_candidates`` part alone, when a candidate appears or changes.

Shapes are the legacy WebSocket's, which differ from REST (``memory_percent``,
``load_avg_1min``, sizes in GB; ``ese_candidates`` has no ``total``). A text ``ping`` gets
the text ``pong``. The SSE stream starts with ``{"type":"connected"}`` and sends
``{"type":"heartbeat"}`` every 30 s, as the legacy one did, besides the messages above.

One hub per process turns bus events into these messages: each message is computed and
encoded once, whatever the number of clients, and each client has a bounded queue (a
client too slow to keep up is disconnected, it reconnects and gets a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from dsa110.events import ESE_CANDIDATE, GROUP_STATE, METRICS_SAMPLE, Event, EventBus
from dsa110.events.envelope import format_utc
from dsa110.events.mailbox import Mailbox
from dsa110.ops.metrics import SystemMetricsSample, latest_metrics, sample_system_metrics
from resolvers import status
from resolvers.live import next_within as _next_within

logger = logging.getLogger("dsa110.live.legacy")

WS_PATH: Final = "/api/ws/status"
SSE_PATH: Final = "/api/sse/status"
HEARTBEAT_S: Final = 10.0
SSE_HEARTBEAT_S: Final = 30.0
COALESCE_S: Final = 0.25
CLIENT_QUEUE_SIZE: Final = 64
MAX_CLIENT_MESSAGE_CHARS: Final = 4096
GB: Final = 1024.0**3
SSE_HEADERS: Final = {"Cache-Control": "no-cache", "Connection": "keep-alive", "X-Accel-Buffering": "no"}


# -- the legacy data shapes -------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else format_utc(moment)


def legacy_pipeline_status(data: status.PipelineStatusData) -> dict[str, Any]:
    q = data.queue
    return {
        "queue": {
            "total": q.total,
            "pending": q.pending,
            "in_progress": q.in_progress,
            "failed": q.failed,
            "completed": q.completed,
            "collecting": q.collecting,
        },
        "recent_groups": [
            {
                "group_id": g.group_id,
                "state": g.state,
                "received_at": _iso(g.received_at),
                "last_update": _iso(g.updated_at),
                "subbands_present": g.subbands_present,
                "expected_subbands": g.expected_subbands,
                "has_calibrator": g.has_calibrator,
                "matches": g.calibrators if isinstance(g.calibrators, list) else [],
            }
            for g in data.recent_groups
        ],
        "calibration_sets": [
            {"set_name": s.set_name, "tables": list(s.tables), "active": s.active, "total": s.total}
            for s in data.calibration_sets
        ],
        "matched_recent": data.matched_recent,
    }


def _main_disk(sample: SystemMetricsSample) -> Any:
    # The legacy figures mirror /stage (the pipeline's work area); else the root disk.
    by_mount = {d.mount: d for d in sample.disks}
    return by_mount.get("/stage") or by_mount.get("/") or (sample.disks[0] if sample.disks else None)


def legacy_metrics(sample: SystemMetricsSample) -> dict[str, Any]:
    main = _main_disk(sample)
    return {
        "cpu_percent": sample.cpu_percent,
        "memory_percent": sample.memory_percent,
        "memory_used_gb": round(sample.memory_used_bytes / GB, 3),
        "memory_total_gb": round(sample.memory_total_bytes / GB, 3),
        "load_avg_1min": sample.load_1,
        "timestamp": format_utc(sample.sampled_at),
        "disks": [
            {
                "mount_point": d.mount,
                "total_gb": round(d.total / GB, 3),
                "used_gb": round(d.used / GB, 3),
                "free_gb": round(d.free / GB, 3),
                "percent": d.percent,
            }
            for d in sample.disks
        ],
        "disk_percent": main.percent if main else None,
        "disk_free_gb": round(main.free / GB, 3) if main else None,
        "disk_total_gb": round(main.total / GB, 3) if main else None,
    }


def legacy_candidate(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "source_id": row["source_id"],
        "ra_deg": row["ra_deg"],
        "dec_deg": row["dec_deg"],
        "first_detection_at": _iso(row["flagged_at"]),
        "last_detection_at": _iso(row["updated_at"]),
        "max_sigma_dev": row["significance"],
        "current_flux_jy": row["current_flux_jy"],
        "baseline_flux_jy": row["baseline_flux_jy"],
        "status": row["status"],
        "notes": row["notes"],
    }


def encode_message(kind: str, data: Any) -> str:
    return json.dumps(
        {"type": kind, "timestamp": format_utc(datetime.now(UTC)), "data": data},
        separators=(",", ":"),
        allow_nan=False,
    )


# -- the hub ----------------------------------------------------------------------------


class _Client(Mailbox[str]):
    """A legacy client's queue of encoded messages; a client too slow is dropped and reconnects."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(CLIENT_QUEUE_SIZE)


class LegacyStatusHub:
    """One producer per process for every legacy status client; runs while any is connected."""

    def __init__(
        self,
        engine: AsyncEngine,
        bus: EventBus,
        *,
        heartbeat_s: float = HEARTBEAT_S,
        coalesce_s: float = COALESCE_S,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.heartbeat_s = heartbeat_s
        self.coalesce_s = coalesce_s
        self.clients: set[_Client] = set()
        self.messages_built = 0
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def join(self) -> _Client:
        """A new client, already queued a fresh ``status_update``."""
        client = _Client()
        self.clients.add(client)
        if not self.running:
            self._listening = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="legacy-status-hub")
        # Listen first, then snapshot: nothing committed in between is missed.
        await self._listening.wait()
        client.push(await self.status_message())
        return client

    async def leave(self, client: _Client) -> None:
        client.end()
        self.clients.discard(client)
        if not self.clients:
            await self.stop()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _broadcast(self, text: str) -> None:
        for client in list(self.clients):
            client.push(text)

    async def status_message(self) -> str:
        data = {
            "pipeline_status": legacy_pipeline_status(await status.pipeline_status(self.engine)),
            "metrics": await self._metrics(),
            "ese_candidates": await self._candidates(),
        }
        self.messages_built += 1
        return encode_message("status_update", data)

    async def _metrics(self) -> dict[str, Any]:
        sample = await latest_metrics(self.engine)
        if sample is None:  # before the sampler's first sample: measure now (non-blocking CPU read)
            sample = await asyncio.to_thread(sample_system_metrics, cpu_interval_s=None)
        return legacy_metrics(sample)

    async def _candidates(self) -> dict[str, Any]:
        rows = await status.ese_candidate_rows(self.engine)
        return {"candidates": [legacy_candidate(r) for r in rows]}

    async def _run(self) -> None:
        try:
            async with self.bus.subscribe(GROUP_STATE, METRICS_SAMPLE, ESE_CANDIDATE) as events:
                self._listening.set()
                await self._serve(events)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("legacy status hub failed; disconnecting its clients")
        finally:
            self._listening.set()
            for client in list(self.clients):
                client.end()

    async def _serve(self, events: Any) -> None:
        loop = asyncio.get_running_loop()
        stream = aiter(events)
        next_status = loop.time() + self.heartbeat_s
        while True:
            first: Event | None
            try:
                first = await _next_within(stream, max(0.0, next_status - loop.time()))
            except TimeoutError:
                first = None
            except StopAsyncIteration:
                return
            channels = set()
            if first is not None:
                channels.add("resync" if first.resync else first.channel)
                # A burst of writes becomes one message of each kind.
                deadline = loop.time() + self.coalesce_s
                while (remaining := deadline - loop.time()) > 0:
                    try:
                        more = await _next_within(stream, remaining)
                    except TimeoutError:
                        break
                    except StopAsyncIteration:
                        return
                    channels.add("resync" if more.resync else more.channel)
            if first is None or channels & {GROUP_STATE, "resync"}:
                self._broadcast(await self.status_message())
                next_status = loop.time() + self.heartbeat_s
                continue
            if METRICS_SAMPLE in channels:
                self._broadcast(encode_message("metrics_update", await self._metrics()))
            if ESE_CANDIDATE in channels:
                self._broadcast(encode_message("ese_update", await self._candidates()))
            self.messages_built += len(channels)


# -- endpoints --------------------------------------------------------------------------


def routes(hub: LegacyStatusHub) -> list[Route | WebSocketRoute]:
    """The two legacy channels; mount them before the REST compatibility layer."""

    async def ws_status(websocket: WebSocket) -> None:
        await websocket.accept()
        client = await hub.join()

        async def read() -> None:
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    text = message.get("text")
                    if text is None or len(text) > MAX_CLIENT_MESSAGE_CHARS:
                        continue  # the legacy channel only understands "ping"
                    if text.strip() == "ping":
                        client.push("pong")
            finally:
                client.end()

        reader = asyncio.create_task(read(), name="legacy-ws-reader")
        try:
            async for text in client.items():
                await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away mid-send
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            await hub.leave(client)
            with contextlib.suppress(Exception):
                await websocket.close()

    async def sse_status(request: Request) -> StreamingResponse:
        async def stream() -> AsyncIterator[str]:
            yield _sse(encode_event("connected"))
            client = await hub.join()
            heartbeat = asyncio.create_task(_heartbeats(client), name="legacy-sse-heartbeat")
            try:
                async for text in client.items():
                    yield _sse(text)
            finally:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
                await hub.leave(client)

        return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)

    return [WebSocketRoute(WS_PATH, ws_status), Route(SSE_PATH, sse_status, methods=["GET"])]


def encode_event(kind: str) -> str:
    return json.dumps({"type": kind, "timestamp": format_utc(datetime.now(UTC))}, separators=(",", ":"))


def _sse(text: str) -> str:
    return f"data: {text}\n\n"


async def _heartbeats(client: _Client) -> None:
    while True:
        await asyncio.sleep(SSE_HEARTBEAT_S)
        client.push(encode_event("heartbeat"))
