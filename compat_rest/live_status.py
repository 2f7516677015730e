"""The legacy status channel's message parts, built from the REST routes' own documents and shapes.

The dashboard stores ``/api/ws/status`` messages in the same caches as ``GET /api/status``,
``/api/metrics/system`` and ``/api/ese/candidates``: a live message whose names or values
differ from the REST answer replaces good data with missing tiles or flipped values. So
every part is the REST answer itself (same document, same shaping function), and the
metrics part also carries the names the legacy WebSocket used (``memory_percent``,
``load_avg_1min``, ``timestamp``, sizes in GiB), so clients written against either read it.
"""

from __future__ import annotations

from typing import Any, Final

from compat_rest import core, ese
from compat_rest.graph import GraphRunner
from dsa110.auth.identity import Identity, Role

GIB: Final = 1024.0**3
HUB_IDENTITY: Final = Identity("system", "system:legacy-status", Role.VIEWER, None)
"""Who the shared producer reads as: each client was admitted (as a viewer) when it connected."""

CANDIDATE_ARGS: Final[dict[str, Any]] = {
    "limit": 100,
    "status": "active",
    "min_sigma": None,
    "all_candidates": False,
}
"""``GET /api/ese/candidates`` with its defaults (what the dashboard asks for)."""


def _gib(value: int | float) -> float:
    return round(value / GIB, 3)


def websocket_metric_names(rest: dict[str, Any]) -> dict[str, Any]:
    """The legacy WebSocket's names for a REST ``SystemMetrics`` answer (same sample)."""
    main = next((d for d in rest["disks"] if d["total"] == rest["disk_total"]), None)
    return {
        "memory_percent": rest["mem_percent"],
        "memory_used_gb": _gib(rest["mem_used"]),
        "memory_total_gb": _gib(rest["mem_total"]),
        "load_avg_1min": rest["load_1"],
        "timestamp": rest["ts"],
        "disk_percent": main["percent"] if main else None,
        "disk_free_gb": _gib(rest["disk_free"]) if rest["disk_free"] is not None else None,
        "disk_total_gb": _gib(rest["disk_total"]) if rest["disk_total"] is not None else None,
    }


def union_metrics(rest: dict[str, Any]) -> dict[str, Any]:
    """The REST answer plus the WebSocket names; each disk carries bytes and GiB."""
    disks = [
        {**d, "total_gb": _gib(d["total"]), "used_gb": _gib(d["used"]), "free_gb": _gib(d["free"])}
        for d in rest["disks"]
    ]
    return {**rest, **websocket_metric_names(rest), "disks": disks}


class LegacyStatusParts:
    """Builds each part of a legacy status message by running the REST route's document."""

    def __init__(self, runner: GraphRunner) -> None:
        self.runner = runner
        self.settings = runner.settings

    async def _run(self, document: str, variables: dict[str, Any]) -> Any:
        return await self.runner(document, variables, identity=HUB_IDENTITY)

    async def pipeline_status(self) -> dict[str, Any]:
        data = await self._run(core.STATUS, {})
        return core.shape_status(data, {"limit": core.RECENT_GROUPS})

    async def metrics(self) -> dict[str, Any] | None:
        data = await self._run(core.METRICS, core.metrics_variables(self.settings))
        node = data["systemMetrics"]
        return None if node is None else union_metrics(core.metrics_sample(node, self.settings.data_dir))

    async def ese_candidates(self) -> dict[str, Any]:
        data = await self._run(
            ese.CANDIDATES, ese.candidate_variables(self.settings.ese_operating_point)(CANDIDATE_ARGS)
        )
        return ese.shape_candidates(data, CANDIDATE_ARGS)

    async def status(self) -> dict[str, Any]:
        return {
            "pipeline_status": await self.pipeline_status(),
            "metrics": await self.metrics(),
            "ese_candidates": await self.ese_candidates(),
        }
