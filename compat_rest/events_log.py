"""``/api/events/*`` and ``/api/cache/*``: the recent-events log and this process's caches.

Not in the API document; the legacy frontend's Events and Cache pages call them
(legacy-pipeline-facts §6, §2.1: the legacy server mounted them at ``/api/events`` and
``/api/cache``). Events are our bus's recent events, kept in a capped table
(``dsa110.events.log``); an event type is a bus channel. Caches are the server process's
own (parsed and validated documents, subscription documents, rendered plots, external
catalog answers), with real hit and miss counts. The legacy cache was a key-value store
(Redis) whose keys could be listed, read and deleted; nothing here is such a store, so
``/cache/keys`` and ``/cache/keys/{key}`` answer 501 ``NOT_IMPLEMENTED``.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, NoReturn

from compat_rest.errors import ApiError
from compat_rest.graph import GraphCall
from compat_rest.params import Args, Float, Int, PathStr, Str
from compat_rest.routing import RestRoute, graphql_route, multi_query_route
from compat_rest.shapes import ANY, INT, NUM, STR, TIME, arr, null, obj
from dsa110.events.log import MAX_QUERY
from dsa110.settings import Settings

TAG = "events"
EVENTS = """
query RestEvents($channels: [String!], $since: Float, $limit: Int!) {
  recentEvents(channels: $channels, sinceMinutes: $since, limit: $limit) {
    eventId channel origin publishedAt payload
  }
}
"""
STATS = """
query RestEventStats($since: Float) {
  eventLogStats(sinceMinutes: $since) {
    since total retainedMax oldestAt channels { channel description count lastAt }
  }
}
"""
CACHES = """
query RestCaches { caches { name description hits misses hitRate entries maxEntries sizeBytes maxBytes } }
"""
SINCE = Float("since_minutes", ge=0.001, le=60 * 24 * 366, description="Only events of the last N minutes")
EVENT = obj(
    event_id=INT,
    event_type=STR,
    channel=STR,
    source=STR,
    timestamp=NUM,
    timestamp_iso=TIME,
    data=ANY,
)
CACHE = obj(
    name=STR,
    description=STR,
    hits=INT,
    misses=INT,
    hit_rate=null(NUM),
    entries=INT,
    max_entries=null(INT),
    size_bytes=null(INT),
    max_bytes=null(INT),
)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def event(node: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": node["eventId"],
        "event_type": node["channel"],
        "channel": node["channel"],
        "source": node["origin"],
        "timestamp": _epoch(node["publishedAt"]),
        "timestamp_iso": node["publishedAt"],
        "data": node["payload"],
    }


def stats(data: dict[str, Any], args: Args) -> dict[str, Any]:
    s = data["eventLogStats"]
    return {
        "total_events": s["total"],
        "events_by_type": {c["channel"]: c["count"] for c in s["channels"]},
        "last_event_by_type": {c["channel"]: c["lastAt"] for c in s["channels"]},
        "since_minutes": args["since_minutes"],
        "since": s["since"],
        "retained_max": s["retainedMax"],
        "oldest_event_at": s["oldestAt"],
        "timestamp": time.time(),
    }


def cache_stats(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    found = [
        {
            "name": c["name"],
            "description": c["description"],
            "hits": c["hits"],
            "misses": c["misses"],
            "hit_rate": c["hitRate"],
            "entries": c["entries"],
            "max_entries": c["maxEntries"],
            "size_bytes": c["sizeBytes"],
            "max_bytes": c["maxBytes"],
        }
        for c in data["caches"]
    ]
    hits, misses = sum(c["hits"] for c in found), sum(c["misses"] for c in found)
    return {
        "backend": "in-process",
        "total_hits": hits,
        "total_misses": misses,
        "hit_rate": hits / (hits + misses) if hits + misses else None,
        "total_keys": sum(c["entries"] for c in found),
        "caches": found,
        "timestamp": time.time(),
    }


async def _no_key_store(_call: GraphCall, _args: Args) -> NoReturn:
    raise ApiError(
        501,
        "NOT_IMPLEMENTED",
        "this server keeps no key-value cache whose keys could be listed or read; "
        "see /api/cache/stats for the caches it has",
    )


def routes(settings: Settings) -> list[RestRoute]:
    return [
        graphql_route(
            "GET",
            "/events/stream",
            EVENTS,
            lambda data, _a: [event(e) for e in data["recentEvents"]],
            variables=lambda a: {
                "channels": [a["event_type"]] if a["event_type"] else None,
                "since": a["since_minutes"],
                "limit": a["limit"],
            },
            params=[
                Str("event_type", max_length=48, description="One channel, e.g. `job.state`"),
                Int("limit", 100, ge=1, le=MAX_QUERY),
                SINCE,
            ],
            response=arr(EVENT),
            tag=TAG,
            summary="Recent events of the bus, newest first",
        ),
        graphql_route(
            "GET",
            "/events/types",
            STATS,
            lambda data, _a: {
                "event_types": [
                    {
                        "value": c["channel"],
                        "name": c["channel"].upper().replace(".", "_"),
                        "description": c["description"],
                    }
                    for c in data["eventLogStats"]["channels"]
                ]
            },
            variables=lambda _a: {"since": None},
            response=obj(event_types=arr(obj(value=STR, name=STR, description=STR))),
            tag=TAG,
            summary="The kinds of event (bus channels)",
        ),
        graphql_route(
            "GET",
            "/events/stats",
            STATS,
            stats,
            variables=lambda a: {"since": a["since_minutes"]},
            params=[SINCE],
            response=obj(
                total_events=INT,
                events_by_type={"type": "object", "additionalProperties": INT},
                last_event_by_type=ANY,
                since_minutes=null(NUM),
                since=null(TIME),
                retained_max=INT,
                oldest_event_at=null(TIME),
                timestamp=NUM,
            ),
            tag=TAG,
            summary="Logged events by type (in a window)",
        ),
        graphql_route(
            "GET",
            "/cache/stats",
            CACHES,
            cache_stats,
            response=obj(
                backend=STR,
                total_hits=INT,
                total_misses=INT,
                hit_rate=null(NUM),
                total_keys=INT,
                caches=arr(CACHE),
                timestamp=NUM,
            ),
            tag="cache",
            summary="This server process's caches, with hit and miss counts since it started",
        ),
        graphql_route(
            "GET",
            "/cache/performance",
            CACHES,
            cache_stats,
            response=ANY,
            tag="cache",
            summary="The same as /cache/stats (hit rates per cache)",
        ),
        multi_query_route(
            "GET",
            "/cache/keys",
            [],
            _no_key_store,
            lambda data, _a: data,
            response=ANY,
            tag="cache",
            summary="Not implemented: there is no key-value cache to list",
            errors=(501,),
        ),
        multi_query_route(
            "GET",
            "/cache/keys/{key}",
            [],
            _no_key_store,
            lambda data, _a: data,
            params=[PathStr("key", "A cache key", max_length=256)],
            response=ANY,
            tag="cache",
            summary="Not implemented: there is no key-value cache to read",
            errors=(501,),
        ),
    ]
