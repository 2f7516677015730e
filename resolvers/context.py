"""What every resolver receives: the engine, settings, the event bus, per-request loaders, the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth.authenticator import Authenticator
from dsa110.auth.identity import Identity, anonymous
from dsa110.settings import Settings
from loaders import Loaders


@dataclass
class GraphContext:
    engine: AsyncEngine
    settings: Settings
    loaders: Loaders
    bus: Any = None
    request: Any = None
    response: Any = None
    extras: dict[str, Any] = field(default_factory=dict)
    identity: Identity = field(default_factory=anonymous)
    """Who asked: audit fields (``changedBy``, ``createdBy``) come from here, never from arguments."""
    connection_params: Any = None
    """A WebSocket's ``connection_init`` payload (strawberry fills it; credentials may ride in it)."""
    authenticator: Authenticator | None = None
    """This process's credential checker, whose key cache a key change must reach at once
    (``dsa110.auth.key_events``); None where no key can change (the REST routes' runner)."""
