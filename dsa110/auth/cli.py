"""``dsa110-graph keys create|list|revoke``: API keys from the command line.

``create`` prints the new key's secret once (it is stored only as a hash); keep it in a
secret store. The database is migrated first, so keys can be made before the first
``serve``. ``revoke`` tells the running servers on the shared event bus (Redis or
PostgreSQL, ``DSA110_EVENTS_URL``), so they refuse the key at once rather than when their
key cache ages out (``dsa110.auth.key_events``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

from dsa110.auth import keys
from dsa110.auth.identity import Role
from dsa110.auth.key_events import announce
from dsa110.db.engine import create_engine
from dsa110.db.migrate import upgrade
from dsa110.errors import PublicError
from dsa110.events import EventBusError, create_event_bus
from dsa110.settings import Settings


def add_keys_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["create", "list", "revoke"])
    parser.add_argument("--name", help="the key's name (create, revoke): letters, digits, `. _ + : @ -`")
    parser.add_argument(
        "--role", choices=[r.value for r in Role], default=Role.VIEWER.value, help="create: the key's role"
    )


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def _tell_servers(settings: Settings, info: keys.KeyInfo) -> None:
    """Publish the revocation on the shared bus; servers on ``memory://`` cannot hear it."""
    if not settings.events_shared:
        return
    bus = create_event_bus(settings.events_url, namespace=settings.events_namespace)
    try:
        await bus.start()
        await announce(None, bus.publish, info)
    except EventBusError as exc:
        print(
            f"keys revoke: the event bus is unreachable ({exc}); servers refuse the key "
            "within DSA110_API_KEY_CACHE_S",
            file=sys.stderr,
        )
    finally:
        await bus.close()


async def run_keys(args: argparse.Namespace, settings: Settings) -> int:
    """Run the action; returns the exit status (2 for a refused request, with the reason on stderr)."""
    if args.action in ("create", "revoke") and not args.name:
        print(f"keys {args.action}: --name is required", file=sys.stderr)
        return 2
    engine = create_engine(settings.resolved_database_url)
    try:
        await upgrade(engine)
        if args.action == "create":
            made = await keys.create_key(engine, args.name, args.role)
            print(f"created key {made.info.name!r} with role {made.info.role}; its secret (shown once):")
            print(made.secret)
        elif args.action == "revoke":
            info = await keys.revoke_key(engine, args.name)
            await _tell_servers(settings, info)
            print(f"revoked key {info.name!r} (at {_when(info.revoked_at)})")
        else:
            print(f"{'name':<24} {'role':<9} {'prefix':<13} {'created':<21} revoked")
            for info in await keys.list_keys(engine):
                created, revoked = _when(info.created_at), _when(info.revoked_at)
                print(f"{info.name:<24} {info.role.value:<9} {info.prefix:<13} {created:<21} {revoked}")
    except PublicError as exc:
        print(f"keys {args.action}: {exc.message}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    return 0


def keys_main(args: argparse.Namespace, settings: Settings) -> None:
    raise SystemExit(asyncio.run(run_keys(args, settings)))
