"""``/api/events/*`` and ``/api/cache/*``: the recent-events log and this process's caches.

Not in the API document; the legacy frontend's Events and Cache pages call them
(legacy-pipeline-facts §6, §2.1: the legacy server mounted them at ``/api/events`` and
``/api/cache``). Events are our bus's recent events, kept in a capped table
(``dsa110.events.log``); an event type is a bus channel. Caches are the server process's
own (parsed and validated documents, subscription documents, rendered plots, external
catalog answers), with real hit and miss counts. The legacy cache was a key-value store
(Redis) whose keys could be listed, read and deleted; nothing here is such a store, so
``GET /cache/keys`` lists no keys (the Cache page's Keys tab shows an empty table, not an
error: a 501 there was shown as "Failed to load cache keys"), and ``/cache/keys/{key}``
(GET and DELETE) answer 501 ``NOT_IMPLEMENTED``.
``DELETE /cache/clear`` empties the caches (or one, ``?cache=<name>``): an operator's write,
audited as the ``clearCaches`` mutation it runs.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, NoReturn

from compat_rest.errors import ApiError
from compat_rest.graph import GraphCall
from compat_rest.params import Args, Float, Int, PathStr, Str
from compat_rest.routing import RestRoute, graphql_route, multi_query_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, null, obj
from dsa110.auth.identity import Role
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
STATS_PAGE = """
query RestEventStatsPage($since: Float) {
  eventLogStats(sinceMinutes: $since) {
    since total retainedMax oldestAt channels { channel description count lastAt }
  }
  retained: eventLogStats { total }
  lastMinute: eventLogStats(sinceMinutes: 1) { total }
  lastHour: eventLogStats(sinceMinutes: 60) { total }
}
"""
CACHES = """
query RestCaches { caches { name description hits misses hitRate entries maxEntries sizeBytes maxBytes } }
"""
CLEAR = """
mutation RestClearCaches($names: [String!]) { clearCaches(names: $names) { name removed clearable } }
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
    by_type = {c["channel"]: c["count"] for c in s["channels"]}
    return {
        "total_events": s["total"],
        # The Events page's statistics (it formats each count: none may be missing).
        "events_in_history": data["retained"]["total"],
        "events_last_minute": data["lastMinute"]["total"],
        "events_last_hour": data["lastHour"]["total"],
        "events_per_type": by_type,
        "subscribers": {},  # the bus keeps no subscriber count per event type
        "events_by_type": by_type,
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
    asked, entries = hits + misses, sum(c["entries"] for c in found)
    return {
        "backend": "in-process",
        "total_hits": hits,
        "total_misses": misses,
        "total_keys": entries,
        # The legacy statistics the Cache page formats (every one a number; rates in percent,
        # as the legacy cache service gave them; each cache's own `hit_rate` is a fraction).
        # The caches here are read-through, so each miss stores an entry (`sets`); those no
        # longer held were evicted or cleared (`deletes`).
        "backend_type": "in-process",
        "active_keys": entries,
        "hits": hits,
        "misses": misses,
        "sets": misses,
        "deletes": max(0, misses - entries),
        "total_requests": asked,
        "hit_rate": 100.0 * hits / asked if asked else 0.0,
        "miss_rate": 100.0 * misses / asked if asked else 0.0,
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


async def _no_keys(_call: GraphCall, _args: Args) -> dict[str, Any]:
    return {}


def no_keys(_data: dict[str, Any], args: Args) -> dict[str, Any]:
    """The legacy ``CacheKeysResponse`` with no keys: there is no key-value cache here."""
    return {"keys": [], "total": 0, "pattern": args["pattern"], "limit": args["limit"]}


def cleared(data: dict[str, Any], args: Args) -> dict[str, Any]:
    found = data["clearCaches"]
    removed = sum(c["removed"] for c in found)
    which = args["cache"] or "all caches"
    return {
        "success": True,
        "message": f"cleared {which}: {removed} entries removed",
        "cleared": [{"name": c["name"], "removed": c["removed"], "clearable": c["clearable"]} for c in found],
        "total_removed": removed,
        "timestamp": time.time(),
    }


def routes(settings: Settings) -> list[RestRoute]:
    key = PathStr("key", "A cache key", max_length=256)
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
            STATS_PAGE,
            stats,
            variables=lambda a: {"since": a["since_minutes"]},
            params=[SINCE],
            response=obj(
                total_events=INT,
                events_in_history=INT,
                events_last_minute=INT,
                events_last_hour=INT,
                events_per_type={"type": "object", "additionalProperties": INT},
                subscribers={"type": "object", "additionalProperties": INT},
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
            _no_keys,
            no_keys,
            params=[
                Str("pattern", description="Key pattern (`*` wildcards)"),
                Int("limit", 100, ge=1, le=1000),
            ],
            response=obj(keys=arr(ANY), total=INT, pattern=null(STR), limit=INT),
            tag="cache",
            summary="No keys: there is no key-value cache here (see /cache/stats for the caches there are)",
        ),
        multi_query_route(
            "GET",
            "/cache/keys/{key}",
            [],
            _no_key_store,
            lambda data, _a: data,
            params=[key],
            response=ANY,
            tag="cache",
            summary="Not implemented: there is no key-value cache to read",
            errors=(501,),
        ),
        multi_query_route(
            "DELETE",
            "/cache/keys/{key}",
            [],
            _no_key_store,
            lambda data, _a: data,
            params=[key],
            response=ANY,
            tag="cache",
            summary="Not implemented: there is no key-value cache to delete from (see DELETE /cache/clear)",
            errors=(501,),
            role=Role.OPERATOR,
        ),
        graphql_route(
            "DELETE",
            "/cache/clear",
            CLEAR,
            cleared,
            variables=lambda a: {"names": [a["cache"]] if a["cache"] else None},
            params=[Str("cache", max_length=64, description="One cache by name (default: all)")],
            response=obj(
                success=BOOL,
                message=STR,
                cleared=arr(obj(name=STR, removed=INT, clearable=BOOL)),
                total_removed=INT,
                timestamp=NUM,
            ),
            tag="cache",
            summary="Empty this server process's caches and the stored external-catalog answers",
            errors=(404, 422),
            role=Role.OPERATOR,
        ),
    ]
